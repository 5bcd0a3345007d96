"""The path-shape tween (SPEC §2): runs before traversal normalises the path.

1. Re-encodes ``PATH_INFO`` so that bytes that are not UTF-8 are kept as their
   ``%XX`` text: such a name then runs through the rules like any other instead
   of making Pyramid raise (a 500).
2. Decides the shape of the raw path: reserved first segments and ``/`` go on to
   routing; any other path must be a download path, or it answers the JSON 404.
"""

import codecs

from .resources import RESERVED, download_shape
from .views.errors import json_not_found


def _percent_escape(error):
    bad = error.object[error.start : error.end]
    return "".join(f"%{b:02X}" for b in bad), error.end


codecs.register_error("tecken-percent", _percent_escape)


def decoded_path(environ):
    """The percent-decoded path as text, undecodable bytes as ``%XX``; rewrites PATH_INFO."""
    raw = environ.get("PATH_INFO", "")
    try:
        data = raw.encode("latin-1")
    except UnicodeEncodeError:  # already text beyond latin-1 (not from a WSGI server)
        return raw
    text = data.decode("utf-8", "tecken-percent")
    fixed = text.encode("utf-8").decode("latin-1")
    if fixed != raw:
        environ["PATH_INFO"] = fixed
    return text


def path_shape_tween_factory(handler, registry):
    def path_shape_tween(request):
        path = decoded_path(request.environ)
        segments = path.split("/")[1:]
        if path == "/" or (segments and segments[0] in RESERVED):
            return handler(request)
        if not download_shape(segments):
            return json_not_found(path)
        return handler(request)

    return path_shape_tween


def includeme(config):
    # Over the router (INGRESS side), so it runs before traversal.
    config.add_tween("tecken_pyramid.tweens.path_shape_tween_factory")
