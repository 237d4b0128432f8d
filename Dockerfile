# The service on PostgreSQL (set DATABASE_URL) or the embedded SQLite under /app/data.
# Production mode by default: set AUTH_TOKENS (service tokens), JWT_JWKS_URL or JWT_SECRET, or it refuses to start.
# gunicorn runs WEB_CONCURRENCY uvicorn workers (deploy/gunicorn.conf.py): JSON logs, Prometheus metrics summed
# over the workers (PROMETHEUS_MULTIPROC_DIR), and on SIGTERM requests in flight finish (GRACEFUL_TIMEOUT, 30 s).
# Build with `--build-arg DRG_COMMIT=$(git rev-parse HEAD)` so /version names the commit.
FROM python:3.11-slim

ARG DRG_COMMIT=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production LOG_FORMAT=json WEB_CONCURRENCY=2 PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/drg-metrics DRG_COMMIT=${DRG_COMMIT}
WORKDIR /app

COPY pyproject.toml README.md ./
COPY generator ./generator
COPY schemas ./schemas
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py
COPY wsgi.py ./
# Editable install: the package reads its vendored JSON Schemas from /app/schemas.
RUN pip install -e . \
    && useradd --create-home --uid 10001 drg \
    && mkdir -p /app/data /app/static \
    && chown -R drg /app/data /app/static

USER 10001
EXPOSE 8000
# Liveness; /ready (HEALTHCHECK_URL) would also ask the database. In production the check sends the first of
# AUTH_TOKENS (every route requires credentials unless PUBLIC_PROBES=true).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["python", "-m", "generator.healthcheck"]
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "wsgi:app"]
