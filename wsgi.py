"""The ASGI entry point: `uvicorn wsgi:app` (or gunicorn with uvicorn workers: deploy/gunicorn.conf.py).

Named wsgi.py for the layout operators expect; the object is an ASGI app."""

import logging
import sys

from generator.app import create_app
from generator.errors import StartupError
from generator.operations import logs

# Our own handler, JSON lines in production (LOG_FORMAT): uvicorn configures logging before importing us, so
# basicConfig would be a no-op in workers.
try:
    logs.configure()
except ValueError as error:
    sys.exit(f"Cannot start: {error}")
_log = logging.getLogger("generator")

try:
    app = create_app()
except StartupError as error:
    _log.critical("Cannot start: %s", error)
    sys.exit(1)
