"""Engines for the two supported databases, set up so generation DDL is all-or-nothing on both.

The URL is DATABASE_URL, or is built from an AWS Secrets Manager secret (AWS_SM_ENABLED); with RDS IAM
authentication (AWS_DB_USE_IAM_ROLE) every new connection gets a fresh token as its password.

With DATABASE_REPLICA_URLS, an engine per PostgreSQL read replica is made beside the primary's (same pool
options; a replica URL without a user name takes the primary's credentials, and the secret's or IAM logic
with them) and registered on the primary engine as a `ReplicaSet` (replicas.py): the data plane's executor
finds them with `replicas_of(engine)`, and nothing else uses them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from generator.codec import dumps_text, loads
from generator.config import Settings
from generator.errors import StartupError
from generator.models.replicas import ReplicaSet, register

WRITE_OPTION = "drg_write"
T = TypeVar("T")
WITHOUT_TLS = ("disable", "allow", "prefer")  # libpq sslmodes that may connect in plain text
REPLICA_CONNECT_TIMEOUT_S = 3  # unless a replica URL sets connect_timeout: an unreachable one is skipped soon
log = logging.getLogger(__name__)


def create_database_engine(source: str | Settings) -> Engine:
    """An engine for a URL, or for the settings, whose AWS options may supply the credentials."""
    if isinstance(source, str):
        return _engine(make_url(source))
    url = database_url(source)
    engine = _with_credentials(url, source, from_secret=source.aws_sm_enabled)
    if source.database_replica_urls:
        replicas = [_replica_engine(raw, url, source) for raw in source.database_replica_urls]
        register(engine, ReplicaSet(engine, replicas, max_lag_seconds=source.database_replica_max_lag_seconds,
                                    check_seconds=source.database_replica_check_seconds))
    return engine


def _with_credentials(url: URL, settings: Settings, *, from_secret: bool) -> Engine:
    """An engine whose connections authenticate as the settings say: an IAM token per connection, or the
    secret's password re-read when refused (`from_secret`), or the URL's own credentials."""
    if settings.aws_db_use_iam_role:
        from generator.aws.rds_iam import IamTokens  # boto3 loads only when a cloud option is on

        if url.get_backend_name() != "postgresql":
            raise StartupError(f"AWS_DB_USE_IAM_ROLE needs a PostgreSQL (RDS) database, not {url.get_backend_name()}")
        engine = _engine(_with_tls(url))
        _password_per_connection(engine, IamTokens(settings.aws_db_region_iam_role))
        return engine
    engine = _engine(url)
    if from_secret:
        _reread_secret_when_refused(engine, settings)
    return engine


def _replica_engine(raw: str, primary: URL, settings: Settings) -> Engine:
    """A read replica's engine. Without a user name in its URL it connects as the primary does (the
    secret's credentials, or IAM tokens); without a database name, to the primary's database."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StartupError("DATABASE_REPLICA_URLS holds a value that is not a database URL: give "
                           "comma-separated URLs such as postgresql://user:password@replica-host:5432/db") from None
    if primary.get_backend_name() != "postgresql":
        raise StartupError(f"DATABASE_REPLICA_URLS is set but the database is {primary.get_backend_name()}: read "
                           "replicas are PostgreSQL streaming replicas of a PostgreSQL DATABASE_URL")
    if url.get_backend_name() != "postgresql":
        raise StartupError(f"DATABASE_REPLICA_URLS names {url.render_as_string(hide_password=True)}: read "
                           "replicas are PostgreSQL streaming replicas (postgresql://user:password@host:port/db)")
    borrowed = url.username is None
    if borrowed:
        url = url.set(username=primary.username, password=primary.password)
    if not url.database:
        url = url.set(database=primary.database)
    if "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": str(REPLICA_CONNECT_TIMEOUT_S)})
    return _with_credentials(url, settings, from_secret=settings.aws_sm_enabled and borrowed)


def database_url(settings: Settings) -> URL:
    """DATABASE_URL, or a PostgreSQL URL from the Secrets Manager secret (read now)."""
    if not settings.aws_sm_enabled:
        return make_url(settings.database_url)
    if settings.database_url:
        raise StartupError("Set DATABASE_URL or AWS_SM_ENABLED, not both: with AWS_SM_ENABLED the secret "
                           "AWS_SM_NAME names the database")
    if not settings.aws_sm_name:
        raise StartupError("AWS_SM_ENABLED is on but AWS_SM_NAME is empty: name the secret that holds the "
                           "database credentials")
    secret = _read_secret(settings)
    return URL.create("postgresql+psycopg", username=secret.username, password=secret.password or None,
                      host=secret.host, port=secret.port, database=secret.dbname)


def new_connection(engine: Engine, **parameters: Any) -> Any:
    """A driver connection outside the pool (say, for LISTEN), made the way the pool makes its own: the
    `do_connect` listeners run, so it gets a fresh IAM token or the secret's current password.
    `parameters` are added to the driver's (e.g. `autocommit=True`)."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    cargs, cparams = list(cargs), {**cparams, **parameters}
    for listener in engine.dialect.dispatch.do_connect:
        connection = listener(engine.dialect, None, cargs, cparams)
        if connection is not None:
            return connection
    return engine.dialect.connect(*cargs, **cparams)


def _read_secret(settings: Settings) -> Any:
    from generator.aws.secrets import read_database_secret  # boto3 loads only when a cloud option is on

    return read_database_secret(settings.aws_sm_name, settings.aws_sm_region, settings.aws_sm_dbname,
                                password_required=not settings.aws_db_use_iam_role)


def _with_tls(url: URL) -> URL:
    """RDS refuses IAM tokens over plain connections: require TLS unless the URL chose an sslmode."""
    mode = url.query.get("sslmode")
    if mode is None:
        return url.update_query_dict({"sslmode": "require"})
    if mode in WITHOUT_TLS:
        log.warning("AWS_DB_USE_IAM_ROLE with sslmode=%s: RDS accepts IAM tokens only over TLS", mode)
    return url


def _password_per_connection(engine: Engine, tokens: Callable[[str, int, str], str]) -> None:
    """A token per new connection (pool growth, recycling, reconnects), never one kept from start-up:
    each lives 15 minutes and is signed with the credentials of the moment."""

    @event.listens_for(engine, "do_connect")
    def _token(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        host, port = str(cparams.get("host") or "localhost"), int(cparams.get("port") or 5432)
        cparams["password"] = tokens(host, port, str(cparams.get("user") or ""))


def _reread_secret_when_refused(engine: Engine, settings: Settings) -> None:
    """Secrets Manager rotation changes the password under a running service: a new connection refused
    for its password re-reads the secret once and retries, and later connections use the new password.
    Connections already open are not affected by a rotation."""
    current: dict[str, str] = {}

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        cparams.update(current)
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as refused:
            if "password authentication failed" not in str(refused):
                raise
            try:
                current["password"] = cparams["password"] = _read_secret(settings).password
            except StartupError as exc:
                log.error("The database refused the password and the secret cannot be re-read: %s", exc)
                raise refused from None
        log.warning("The database refused the password of secret %r: re-read it (rotated?)", settings.aws_sm_name)
        return dialect.connect(*cargs, **cparams)


def _engine(parsed: URL) -> Engine:
    """SQLite gets WAL, foreign keys and explicit BEGIN so DDL joins the transaction."""
    # hide_parameters: values never reach logs or error messages (they may be personal or, later, secret)
    options: dict[str, Any] = {"json_serializer": dumps_text, "json_deserializer": loads, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **options)
        _sqlite_setup(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "default", ""):
        parsed = parsed.set(drivername="postgresql+psycopg")
    # No pool_pre_ping: it costs a round trip per request. A dropped connection is handled where it
    # surfaces instead (`reading` retries once; writes answer 503), see `reading`.
    return create_engine(parsed, pool_size=10, max_overflow=20, pool_recycle=1800, **options)


def _sqlite_setup(engine: Engine) -> None:
    """SQLAlchemy's documented recipe: stop pysqlite's implicit BEGIN handling and emit our own, so DDL
    joins the transaction (pysqlite would otherwise commit before it)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        """Writes take the write lock up front; reads run without BEGIN: each of our reads is a single
        statement, atomic on its own, and a BEGIN/ROLLBACK pair would double its cost."""
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def reading(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run a read, retrying once on a connection the server dropped (pg_terminate_backend, a failover, a
    restart). SQLAlchemy invalidates the whole pool when it sees a disconnect, so the retry gets a fresh
    connection; a read has no effect to repeat. Cheaper than `pool_pre_ping`'s round trip per request."""
    try:
        with engine.connect() as connection:
            return work(connection)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with engine.connect() as connection:
        return work(connection)


def for_writes(engine: Engine) -> Engine:
    """The same engine (and pool) for transactions that will write.

    On SQLite a write transaction must take the write lock when it begins (BEGIN IMMEDIATE): a deferred
    transaction that reads and then writes fails at once with "database is locked" if another connection
    committed in between, since the busy timeout does not cover that upgrade. Elsewhere it changes nothing."""
    return engine.execution_options(**{WRITE_OPTION: True})

