"""The project's own ``paste.server_runner`` around waitress (SPEC §1).

``pserve INI http_port=N`` passes ``http_port`` in ``global_conf``; no ini file
mentions it (a value there would win over the command line, and a bare
``%(http_port)s`` would crash ``pserve INI``).
"""

import logging
import signal
import sys

import waitress

log = logging.getLogger(__name__)


def serve(app, global_conf, **kw):
    port = int(global_conf.get("http_port", "6543"))
    registry = getattr(app, "registry", None)

    def stop(signum, _frame):
        log.info("signal %s: flushing and stopping", signum)
        if registry is not None:
            from . import shutdown

            shutdown(registry)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kw.setdefault("ident", "tecken-pyramid")
    waitress.serve(app, port=port, **kw)
