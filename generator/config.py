"""All settings in one dataclass, read from the environment once; defaults live here and nowhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("development", "test", "production")
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """What the service needs to start. Build with `from_env()`, or directly in tests."""

    app_env: str = "development"
    database_url: str = ""
    data_dir: Path = Path("data")  # relative paths are relative to the working directory, as for any service
    storage_type: str = "LOCAL"
    payload_path: Path = Path("static") / "data_resource_generation_payload.json"
    auth_tokens: tuple[str, ...] = ()
    default_page_size: int = 100
    max_page_size: int = 1000
    lock_timeout_ms: int = 5000
    poll_seconds: float = 1.0  # how often a process checks for a generation recorded by another; 0: never
    # Request limits: answered with 413/400 before any parsing, so one request cannot stall a worker.
    max_body_bytes: int = 10 * 1024 * 1024  # data routes: a 10 MiB JSON body parses in well under a second
    max_generation_bytes: int = 64 * 1024 * 1024  # /generator: payloads of hundreds of tables are large
    max_query_parameters: int = 100
    max_error_items: int = 100  # an error list longer than this is cut, saying how many there were
    rest_prefix: str = "/rest"  # the PostgREST-compatible surface (generator/api/postgrest.py)

    def __post_init__(self) -> None:
        if self.app_env not in ENVIRONMENTS:
            raise ValueError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.app_env!r}")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'drg.sqlite3'}")

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        data_dir = Path(env["DATA_DIR"]) if env.get("DATA_DIR") else defaults.data_dir
        return cls(
            app_env=env.get("APP_ENV", defaults.app_env).lower(),
            database_url=env.get("DATABASE_URL", ""),
            data_dir=data_dir,
            storage_type=env.get("SCHEMA_STORAGE_TYPE", defaults.storage_type).upper(),
            payload_path=Path(env["PAYLOAD_PATH"]) if env.get("PAYLOAD_PATH") else defaults.payload_path,
            auth_tokens=tuple(t for t in env.get("AUTH_TOKENS", "").split(",") if t.strip()),
            default_page_size=int(env.get("DEFAULT_PAGE_SIZE", defaults.default_page_size)),
            max_page_size=int(env.get("MAX_PAGE_SIZE", defaults.max_page_size)),
            lock_timeout_ms=int(env.get("DDL_LOCK_TIMEOUT_MS", defaults.lock_timeout_ms)),
            poll_seconds=float(env.get("GENERATION_POLL_SECONDS", defaults.poll_seconds)),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_generation_bytes=int(env.get("MAX_GENERATION_BYTES", defaults.max_generation_bytes)),
            max_query_parameters=int(env.get("MAX_QUERY_PARAMETERS", defaults.max_query_parameters)),
            max_error_items=int(env.get("MAX_ERROR_ITEMS", defaults.max_error_items)),
            rest_prefix=env.get("REST_PREFIX", defaults.rest_prefix),
        )
