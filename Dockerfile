# The service on PostgreSQL (set DATABASE_URL) or the embedded SQLite under /app/data.
# Production mode by default: set AUTH_TOKENS (service tokens), JWT_JWKS_URL or JWT_SECRET, or it refuses to start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production
WORKDIR /app

COPY pyproject.toml README.md ./
COPY generator ./generator
COPY schemas ./schemas
COPY wsgi.py ./
# Editable install: the package reads its vendored JSON Schemas from /app/schemas.
RUN pip install -e . \
    && useradd --create-home --uid 10001 drg \
    && mkdir -p /app/data /app/static \
    && chown -R drg /app/data /app/static

USER drg
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["python", "-m", "generator.healthcheck"]
CMD ["uvicorn", "wsgi:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-access-log"]
