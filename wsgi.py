"""The ASGI entry point: `uvicorn wsgi:app` (or gunicorn with uvicorn workers).

Named wsgi.py for the layout operators expect; the object is an ASGI app."""

import logging
import sys

from generator.app import create_app
from generator.errors import StartupError

# Our own handler: uvicorn configures logging before importing us, so basicConfig would be a no-op in workers.
_log = logging.getLogger("generator")
if not _log.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)
    _log.propagate = False

try:
    app = create_app()
except StartupError as error:
    _log.critical("Cannot start: %s", error)
    sys.exit(1)
