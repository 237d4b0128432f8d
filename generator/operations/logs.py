"""Log lines as JSON objects (one per line), each carrying the id of the request it was written for.

The dispatcher sets `REQUEST_ID` for the duration of a request (`requests.py`); every line logged while it
runs, on the event loop or in a worker thread the request handed work to (Starlette's and a2wsgi's thread
pools copy the context), carries it. `configure()` is called once per process by `wsgi.py`, before the app is
built, so start-up lines are formatted too."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("drg_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# What every LogRecord has; anything else on a record came from `extra=` and is written as a field of its own.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "color_message"}  # uvicorn's copy of the message with terminal colours
# Loggers the servers configure before importing the app; in JSON mode their lines become JSON too.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access")


class RequestIdFilter(logging.Filter):
    """Puts the current request id on the record (`-` outside a request), for `%(request_id)s`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, pid, request_id when the
    line was written for a request, `extra=` fields, and the formatted exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None)
        request_id = REQUEST_ID.get() if request_id in (None, "-") else request_id
        if request_id:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def log_format(environ: Mapping[str, str]) -> str:
    """`LOG_FORMAT` (`json` or `text`); JSON by default in production, text elsewhere."""
    chosen = environ.get("LOG_FORMAT", "").strip().lower()
    if chosen:
        if chosen not in ("json", "text"):
            raise ValueError(f"LOG_FORMAT must be json or text, not {chosen!r}")
        return chosen
    return "json" if environ.get("APP_ENV", "").strip().lower() == "production" else "text"


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def configure(environ: Mapping[str, str] | None = None) -> str:
    """The `generator` loggers write to stderr in the chosen format, with request ids; in JSON mode the
    servers' own loggers (uvicorn's, gunicorn's) and the root logger (libraries, at their own levels) write
    JSON as well, so every line parses.
    Returns the format. Idempotent: a second call changes only the formatter."""
    env = os.environ if environ is None else environ
    kind = log_format(env)
    ours = logging.getLogger("generator")
    handler = next((h for h in ours.handlers if getattr(h, "drg_operations", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.drg_operations = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        ours.addHandler(handler)
    handler.setFormatter(formatter(kind))
    ours.setLevel(env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO")
    ours.propagate = False  # uvicorn configures the root logger its own way
    if kind == "json":
        for name in SERVER_LOGGERS:
            for server_handler in logging.getLogger(name).handlers:
                server_handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        if not root.handlers:  # libraries' warnings (Connexion's, SQLAlchemy's) would print as plain text
            root.addHandler(handler)
    return kind


def formatter_config(kind: str, access: bool = False) -> dict[str, object]:
    """A `logging.config.dictConfig` for servers configured by file (gunicorn's `logconfig_dict`): their
    loggers write to stderr in the chosen format; access lines (one per request, which uvicorn workers send
    through `gunicorn.access`) only with `access`."""
    text = TEXT_FORMAT.replace(" [%(request_id)s]", "")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": {"()": f"{__name__}.JsonFormatter"} if kind == "json" else {"format": text}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"] if access else [], "propagate": False},
        },
    }
