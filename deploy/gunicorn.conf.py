"""gunicorn settings for the image: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Several uvicorn workers (WEB_CONCURRENCY, default 2), graceful shutdown (SIGTERM: stop accepting, finish the
requests in flight for up to GRACEFUL_TIMEOUT seconds, then run the app's shutdown), JSON logs from gunicorn
and uvicorn as from the app (LOG_FORMAT), and Prometheus multiprocess mode when PROMETHEUS_MULTIPROC_DIR is
set: the folder is emptied before the workers start, and a worker that exits has its live gauges dropped."""

import os
import shutil

from generator.operations.logs import formatter_config, log_format

bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "30"))
timeout = int(os.environ.get("WORKER_TIMEOUT", "60"))  # a worker whose event loop stalls this long is replaced
keepalive = int(os.environ.get("KEEPALIVE", "5"))  # longer than a proxy's idle timeout would cut requests
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
ACCESS_LOG = os.environ.get("ACCESS_LOG", "").strip().lower() in ("1", "true", "yes", "on")
accesslog = "-" if ACCESS_LOG else None  # one line per request (with its request id) when ACCESS_LOG=true
errorlog = "-"
logconfig_dict = formatter_config(log_format(os.environ), access=ACCESS_LOG)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server: object) -> None:
    """Counters of a previous run must not add to this one's."""
    if MULTIPROC_DIR:
        shutil.rmtree(MULTIPROC_DIR, ignore_errors=True)
        os.makedirs(MULTIPROC_DIR, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    """A worker that crashed did not drop its own live gauges (`Metrics.close` does on a clean exit)."""
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, MULTIPROC_DIR)  # type: ignore[attr-defined]
