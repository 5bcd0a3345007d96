"""Baselines for bench/download.py, served by waitress like the app.

    python bench/baseline_apps.py bare|pyramid PORT THREADS

``bare``: a WSGI callable returning a fixed 302 (the physical floor).
``pyramid``: a minimal Pyramid app using traversal (root -> a -> b -> leaf) whose
view returns the same fixed 302: what the framework alone costs.
"""

import sys

import waitress

LOCATION = "http://127.0.0.1:1/bucket/v1/xul.pdb/44E4EC8C2F41492B9369D6B9A059577C2/xul.sym"
HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", "0"),
    ("Location", LOCATION),
    ("X-Symbol-Lookup", "found"),
]


def bare_app(environ, start_response):
    start_response("302 Found", list(HEADERS))
    return [b""]


class Node:
    def __init__(self, name, parent, depth):
        self.__name__ = name
        self.__parent__ = parent
        self.depth = depth

    def __getitem__(self, name):
        if self.depth >= 3:
            raise KeyError(name)
        return Node(name, self, self.depth + 1)


class Leaf(Node):
    pass


def root_factory(request):
    return Node("", None, 0)


def pyramid_app():
    from pyramid.config import Configurator
    from pyramid.response import Response

    def redirect(context, request):
        return Response(status=302, body=b"", headerlist=list(HEADERS))

    config = Configurator(root_factory=root_factory)
    config.add_view(redirect, context=Node, request_method=("GET", "HEAD"))
    return config.make_wsgi_app()


def main():
    kind, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    app = bare_app if kind == "bare" else pyramid_app()
    waitress.serve(app, host="127.0.0.1", port=port, threads=threads, ident="baseline", _quiet=True)


if __name__ == "__main__":
    main()
