"""The ASGI entry point: `uvicorn wsgi:app` (or gunicorn with uvicorn workers).

Named wsgi.py for the layout operators expect; the object is an ASGI app."""

import logging
import sys

from generator.app import create_app
from generator.errors import StartupError

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

try:
    app = create_app()
except StartupError as error:
    logging.getLogger("generator").critical("Cannot start: %s", error)
    sys.exit(1)
