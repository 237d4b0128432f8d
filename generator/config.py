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
    # Read replicas (generator/models/replicas.py): PostgreSQL streaming standbys of DATABASE_URL that serve the
    # generated routes' reads; writes, generations and the control plane stay on the primary.
    database_replica_urls: tuple[str, ...] = ()  # DATABASE_REPLICA_URLS, comma-separated; empty: no replicas
    database_replica_max_lag_seconds: float = 5.0  # a replica further behind the primary is skipped
    database_replica_check_seconds: float = 1.0  # replicas' lag and reachability are checked this often, at most
    poll_seconds: float = 1.0  # how often a process checks for a generation recorded by another; 0: never
    generation_listen: bool = True  # PostgreSQL LISTEN/NOTIFY for generations (off behind PgBouncer transaction pools)
    # Request limits: answered with 413/400 before any parsing, so one request cannot stall a worker.
    max_body_bytes: int = 10 * 1024 * 1024  # data routes: a 10 MiB JSON body parses in well under a second
    max_generation_bytes: int = 64 * 1024 * 1024  # /generator: payloads of hundreds of tables are large
    max_query_parameters: int = 100
    max_error_items: int = 100  # an error list longer than this is cut, saying how many there were
    rest_prefix: str = "/rest"  # the PostgREST-compatible surface (generator/api/postgrest.py)
    # Identity (generator/identity/README.md): bearer JWTs, besides the static AUTH_TOKENS and team API keys.
    jwt_secret: str = ""  # HS256 (development); at least 32 bytes
    jwt_jwks_url: str = ""  # https (or http on loopback); fetched, cached, refetched on an unknown kid
    jwt_jwks_file: str = ""  # a JWKS document on disk, re-read on an unknown kid
    jwt_algorithms: tuple[str, ...] = ()  # empty: RS256,ES256 with a JWKS, plus HS256 with a secret
    jwt_audience: tuple[str, ...] = ()  # any of them; empty: the audience is not checked
    jwt_issuer: str = ""  # empty: the issuer is not checked
    jwt_leeway_seconds: int = 30  # clock skew allowed on exp, nbf and iat
    jwt_groups_claim: str = "groups"
    admin_group: str = "G_TEAM_PLATFORM_ADMIN"
    team_prefix: str = "G_TEAM_"  # group G_TEAM_PROVIDER: team PROVIDER
    orgs_claim: str = "orgs"
    tenants_claim: str = "tenantIds"
    tenant_groups_claim: str = "tenantGroupIds"
    jwt_jwks_min_refresh_seconds: float = 60.0  # an unknown kid refetches the JWKS at most this often
    jwt_jwks_cache_seconds: float = 300.0  # a key set older than this is refetched before use
    jwt_jwks_timeout_seconds: float = 3.0  # one JWKS fetch; a failure answers 503
    public_docs: bool = False  # production: /ui, /openapi.json, /admin/ui and /admin/openapi.json without credentials
    # Cloud (generator/aws/README.md). Regions left empty fall back to boto3's own (AWS_DEFAULT_REGION).
    s3_region: str = ""
    s3_bucket: str = ""  # required with storage_type S3
    s3_object_name: str = "data_resource_generation_payload.json"
    aws_sm_enabled: bool = False  # database credentials from a Secrets Manager secret instead of DATABASE_URL
    aws_sm_name: str = ""
    aws_sm_region: str = ""
    aws_sm_dbname: str = ""  # wins over the secret's own dbname
    aws_db_use_iam_role: bool = False  # a fresh RDS IAM token as the password of every new connection
    aws_db_region_iam_role: str = ""

    def __post_init__(self) -> None:
        if self.app_env not in ENVIRONMENTS:
            raise ValueError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.app_env!r}")
        if not self.database_url and not self.aws_sm_enabled:  # with a secret, the secret names the database
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'drg.sqlite3'}")
        if not self.jwt_algorithms:
            derived = (("RS256", "ES256") if self.jwt_jwks_url or self.jwt_jwks_file or not self.jwt_secret else ())
            object.__setattr__(self, "jwt_algorithms", derived + (("HS256",) if self.jwt_secret else ()))
        lag, check = self.database_replica_max_lag_seconds, self.database_replica_check_seconds
        if not 0 < check < lag:  # lag is measured in steps of one check: a longer step could never be within it
            raise ValueError("DATABASE_REPLICA_CHECK_SECONDS must be positive and less than "
                             f"DATABASE_REPLICA_MAX_LAG_SECONDS, not {check:g} and {lag:g}")

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
            database_replica_urls=_names(env.get("DATABASE_REPLICA_URLS", "")),
            database_replica_max_lag_seconds=float(env.get("DATABASE_REPLICA_MAX_LAG_SECONDS",
                                                           defaults.database_replica_max_lag_seconds)),
            database_replica_check_seconds=float(env.get("DATABASE_REPLICA_CHECK_SECONDS",
                                                         defaults.database_replica_check_seconds)),
            poll_seconds=float(env.get("GENERATION_POLL_SECONDS", defaults.poll_seconds)),
            generation_listen=env.get("GENERATION_LISTEN", "true").strip().lower() not in ("0", "false", "no", "off"),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_generation_bytes=int(env.get("MAX_GENERATION_BYTES", defaults.max_generation_bytes)),
            max_query_parameters=int(env.get("MAX_QUERY_PARAMETERS", defaults.max_query_parameters)),
            max_error_items=int(env.get("MAX_ERROR_ITEMS", defaults.max_error_items)),
            rest_prefix=env.get("REST_PREFIX", defaults.rest_prefix),
            jwt_secret=env.get("JWT_SECRET", ""),
            jwt_jwks_url=env.get("JWT_JWKS_URL", "").strip(),
            jwt_jwks_file=env.get("JWT_JWKS_FILE", "").strip(),
            jwt_algorithms=_names(env.get("JWT_ALGORITHMS", "")),
            jwt_audience=_names(env.get("JWT_AUDIENCE", "")),
            jwt_issuer=env.get("JWT_ISSUER", "").strip(),
            jwt_leeway_seconds=int(env.get("JWT_LEEWAY_SECONDS", defaults.jwt_leeway_seconds)),
            jwt_groups_claim=env.get("JWT_GROUPS_CLAIM", "").strip() or defaults.jwt_groups_claim,
            admin_group=env.get("ADMIN_GROUP", "").strip() or defaults.admin_group,
            team_prefix=env.get("TEAM_PREFIX", "").strip() or defaults.team_prefix,
            orgs_claim=env.get("ORGS_CLAIM", "").strip() or defaults.orgs_claim,
            tenants_claim=env.get("TENANTS_CLAIM", "").strip() or defaults.tenants_claim,
            tenant_groups_claim=env.get("TENANT_GROUPS_CLAIM", "").strip() or defaults.tenant_groups_claim,
            jwt_jwks_min_refresh_seconds=float(env.get("JWT_JWKS_MIN_REFRESH_SECONDS",
                                                       defaults.jwt_jwks_min_refresh_seconds)),
            jwt_jwks_cache_seconds=float(env.get("JWT_JWKS_CACHE_SECONDS", defaults.jwt_jwks_cache_seconds)),
            jwt_jwks_timeout_seconds=float(env.get("JWT_JWKS_TIMEOUT_SECONDS", defaults.jwt_jwks_timeout_seconds)),
            public_docs=env.get("PUBLIC_DOCS", "").strip().lower() in ("1", "true", "yes", "on"),
            s3_region=env.get("AWS_S3_REGION", "").strip(),
            s3_bucket=env.get("AWS_S3_STORAGE_BUCKET_NAME", "").strip(),
            s3_object_name=env.get("AWS_S3_STORAGE_OBJECT_NAME", "").strip() or defaults.s3_object_name,
            aws_sm_enabled=_flag(env.get("AWS_SM_ENABLED", "")),
            aws_sm_name=env.get("AWS_SM_NAME", "").strip(),
            aws_sm_region=env.get("AWS_SM_REGION", "").strip(),
            aws_sm_dbname=env.get("AWS_SM_DBNAME", "").strip(),
            aws_db_use_iam_role=_flag(env.get("AWS_DB_USE_IAM_ROLE", "")),
            aws_db_region_iam_role=env.get("AWS_DB_REGION_IAM_ROLE", "").strip(),
        )


def _names(value: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _flag(value: str) -> bool:
    """A yes/no setting: 1, true, yes or on (any case) mean yes."""
    return value.strip().lower() in ("1", "true", "yes", "on")
