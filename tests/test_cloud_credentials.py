"""Database credentials from AWS: a Secrets Manager secret (AWS_SM_*) and RDS IAM tokens (AWS_DB_*), against
moto's real HTTP server and the test PostgreSQL. That server trusts local connections, so it accepts any
password: these tests show which user, database and password the service sends, not that PostgreSQL checks it."""

from __future__ import annotations

import ast
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from generator.config import Settings
from generator.errors import StartupError
from generator.models.engine import create_database_engine, new_connection
from tests.support.moto_server import MotoServer
from tests.support.postgres import PostgresServer

PASSWORD = "s3cr3t-Pa55word-never-shown"


@dataclass(frozen=True)
class Role:
    """A PostgreSQL login role with a password, allowed to create tables in one database."""

    name: str
    password: str
    host: str
    port: int
    database: str
    checked: bool  # PostgreSQL checks its password (otherwise trusts it, as the test server does by default)

    def secret(self, **changes: Any) -> dict[str, Any]:
        """The JSON RDS writes for this user; `changes` with a None value drop that member."""
        values = {"engine": "postgres", "host": self.host, "port": self.port, "username": self.name,
                  "password": self.password, "dbname": self.database, "dbInstanceIdentifier": "drg-test"}
        values.update(changes)
        return {key: value for key, value in values.items() if value is not None}


CHECKED = "drg_password_checked"  # roles in this group log in with their password (pg_hba), not by trust


def create_role(server: PostgresServer, database_url: str, checked: bool = True) -> Role:
    """A role of its own with PASSWORD, owner of the public schema of `database_url`'s database. The test
    server trusts local users; a `checked` role must send its password, as on RDS. The tests that need it
    assert it: a borrowed TEST_POSTGRES_URL server whose pg_hba is not writable fails them, saying why."""
    url = make_url(database_url)
    name = f"drg_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'"))
            connection.execute(text(f"ALTER SCHEMA public OWNER TO {name}"))
            checked = checked and _check_passwords(connection)
            if checked:
                connection.execute(text(f"GRANT {CHECKED} TO {name}"))
    finally:
        admin.dispose()
    return Role(name, PASSWORD, str(url.host), int(url.port or 5432), str(url.database), checked)


def _check_passwords(connection: Any) -> bool:
    """Make members of CHECKED authenticate with scram-sha-256 over TCP; False where pg_hba is not ours."""
    if connection.execute(text(f"SELECT 1 FROM pg_roles WHERE rolname = '{CHECKED}'")).scalar():
        return True
    hba = Path(connection.execute(text("SHOW hba_file")).scalar())
    if not hba.is_file() or not os.access(hba, os.W_OK):
        return False
    connection.execute(text(f"CREATE ROLE {CHECKED} NOLOGIN"))
    rule = f"host all +{CHECKED} 127.0.0.1/32 scram-sha-256\n"  # first match wins: before the trust lines
    hba.write_text(rule + hba.read_text())
    connection.execute(text("SELECT pg_reload_conf()"))
    time.sleep(0.3)  # the postmaster reloads asynchronously
    return True


def put_secret(values: dict[str, Any] | str | bytes, region: str = "us-east-1") -> str:
    """A Secrets Manager secret of this test's own; returns its name."""
    name = f"drg/test/{uuid.uuid4().hex[:10]}"
    body: dict[str, Any]
    if isinstance(values, bytes):
        body = {"SecretBinary": values}
    else:
        body = {"SecretString": values if isinstance(values, str) else json.dumps(values)}
    boto3.client("secretsmanager", region_name=region).create_secret(Name=name, **body)
    return name


@pytest.fixture
def role(postgres_server: PostgresServer, postgres_url: str) -> Role:
    return create_role(postgres_server, postgres_url)


@pytest.fixture
def iam_role(postgres_server: PostgresServer, postgres_url: str) -> Role:
    """A role the test server trusts: it cannot check an IAM token, which only RDS can."""
    return create_role(postgres_server, postgres_url, checked=False)


@pytest.fixture
def engines() -> Iterator[list[Any]]:
    """Engines a test made, disposed at the end."""
    made: list[Any] = []
    yield made
    for engine in made:
        engine.dispose()


def test_the_secret_names_the_user_and_database(aws: MotoServer, role: Role, engines: list[Any]) -> None:
    settings = Settings(aws_sm_enabled=True, aws_sm_name=put_secret(role.secret()), aws_sm_region="us-east-1")
    engine = create_database_engine(settings)
    engines.append(engine)
    with engine.connect() as connection:
        who = connection.execute(text("SELECT current_user, current_database()")).one()
        connection.execute(text("CREATE TABLE made_by_the_secret_user (id integer)"))  # the secret's rights
    assert tuple(who) == (role.name, role.database)
    assert engine.url.password == PASSWORD
    assert PASSWORD not in repr(engine) and PASSWORD not in str(engine.url)


def test_aws_sm_dbname_wins_over_the_secret(aws: MotoServer, role: Role, engines: list[Any]) -> None:
    name = put_secret(role.secret(dbname="not_this_one"))
    engine = create_database_engine(Settings(aws_sm_enabled=True, aws_sm_name=name, aws_sm_dbname=role.database))
    engines.append(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT current_database()")).scalar() == role.database


def test_a_wrong_password_in_the_secret_is_refused_without_showing_it(
    aws: MotoServer, role: Role, engines: list[Any]
) -> None:
    assert role.checked, "the test PostgreSQL must check this role's password (pg_hba rule of _check_passwords)"
    wrong = "not-the-Pa55word-either"
    engine = create_database_engine(Settings(aws_sm_enabled=True, aws_sm_name=put_secret(role.secret(password=wrong))))
    engines.append(engine)
    with pytest.raises(OperationalError, match=f'password authentication failed for user "{role.name}"') as refused:
        engine.connect()
    assert wrong not in str(refused.value) and PASSWORD not in str(refused.value)


def test_a_rotated_password_is_read_again_from_the_secret(
    aws: MotoServer, role: Role, engines: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Rotation changes the password in the database and the secret under a running service: the next
    new connection that is refused re-reads the secret once; connections after it use the new password."""
    assert role.checked, "the test PostgreSQL must check this role's password (pg_hba rule of _check_passwords)"
    name = put_secret(role.secret())
    engine = create_database_engine(Settings(aws_sm_enabled=True, aws_sm_name=name))
    engines.append(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT current_user")).scalar() == role.name
    rotated = "r0tated-Pa55word"
    with engine.connect() as connection:  # as the rotation function does, then it updates the secret
        connection.execute(text(f"ALTER ROLE {role.name} PASSWORD '{rotated}'"))
        connection.commit()
    boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString=json.dumps(
        role.secret(password=rotated)))
    engine.dispose()  # every connection from here on is new

    with caplog.at_level(logging.WARNING, logger="generator"), engine.connect() as first, engine.connect() as second:
        assert first.execute(text("SELECT 1")).scalar() == second.execute(text("SELECT 1")).scalar() == 1
    rereads = [r.getMessage() for r in caplog.records if "re-read" in r.getMessage()]
    assert rereads == [f"The database refused the password of secret {name!r}: re-read it (rotated?)"]
    assert rotated not in caplog.text and PASSWORD not in caplog.text


@pytest.mark.parametrize(("secret", "message"), [
    # no such secret in this region
    (None, "does not exist in region 'us-east-1': check AWS_SM_NAME and AWS_SM_REGION"),
    # not JSON: the parser's message could quote the password, so none is given
    (f'{{"username": "app", "password": "{PASSWORD}", ', "is not valid JSON"),
    # JSON, but not an object
    (f'["{PASSWORD}"]', "is not a JSON object"),
    # binary secrets are not what RDS writes
    (PASSWORD.encode(), "holds binary data"),
    # each required member, named
    ({"host": None}, "has no 'host' member"),
    ({"port": None}, "has no 'port' member"),
    ({"username": None}, "has no 'username' member"),
    ({"password": ""}, "has no 'password' member"),
    ({"port": "five"}, "member 'port' is not a port number"),
    # another engine's secret
    ({"engine": "mysql"}, "is for engine 'mysql'; this service runs on PostgreSQL only"),
    # nowhere to connect: neither AWS_SM_DBNAME nor dbname
    ({"dbname": None}, "names no database: set AWS_SM_DBNAME or add a 'dbname' member"),
])
def test_a_bad_secret_stops_the_start_up_naming_secret_and_member(
    aws: MotoServer, role: Role, secret: Any, message: str
) -> None:
    if secret is None:
        name = f"drg/test/missing-{uuid.uuid4().hex[:8]}"
    elif isinstance(secret, dict):
        name = put_secret(role.secret(**secret))
    else:
        name = put_secret(secret)
    with pytest.raises(StartupError) as raised:
        create_database_engine(Settings(aws_sm_enabled=True, aws_sm_name=name, aws_sm_region="us-east-1"))
    assert f"The AWS Secrets Manager secret {name!r} (AWS_SM_NAME)" in str(raised.value)
    assert message in str(raised.value)
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(("settings", "message"), [
    # the secret's name is missing
    ({"aws_sm_enabled": True}, "AWS_SM_ENABLED is on but AWS_SM_NAME is empty"),
    # two sources of the database: which one was meant?
    ({"aws_sm_enabled": True, "aws_sm_name": "x", "database_url": "postgresql://db/app"},
     "Set DATABASE_URL or AWS_SM_ENABLED, not both"),
    # IAM tokens are for RDS PostgreSQL
    ({"aws_db_use_iam_role": True, "database_url": "sqlite:///:memory:"},
     "AWS_DB_USE_IAM_ROLE needs a PostgreSQL (RDS) database, not sqlite"),
])
def test_contradictory_database_settings_stop_the_start_up(aws: MotoServer, settings: dict[str, Any],
                                                           message: str) -> None:
    with pytest.raises(StartupError) as raised:
        create_database_engine(Settings(**settings))
    assert message in str(raised.value)


def test_each_new_connection_gets_a_fresh_iam_token(aws: MotoServer, iam_role: Role, engines: list[Any]) -> None:
    role = iam_role
    url = make_url(f"postgresql+psycopg://{role.name}@{role.host}:{role.port}/{role.database}?sslmode=disable")
    settings = Settings(database_url=url.render_as_string(), aws_db_use_iam_role=True,
                        aws_db_region_iam_role="eu-west-2")
    engine = create_database_engine(settings)
    engines.append(engine)
    sent: list[str] = []
    event.listen(engine, "do_connect", lambda _d, _r, _a, cparams: sent.append(cparams["password"]))
    assert sent == []  # nothing made before a connection is

    with engine.connect() as first, engine.connect() as second, engine.connect() as third:
        for connection in (first, second, third):
            assert connection.execute(text("SELECT current_user")).scalar() == role.name
    with engine.connect():
        pass  # a pooled connection is reused: no new token
    assert len(sent) == 3
    for token in sent:
        assert token.startswith(f"{role.host}:{role.port}/?Action=connect&DBUser={role.name}&"), token
        assert "X-Amz-Signature=" in token and "%2Feu-west-2%2Frds-db%2Faws4_request" in token

    time.sleep(1.1)  # tokens are signed to the second
    engine.dispose()  # say, after a failover: every connection is new
    with engine.connect():
        pass
    assert len(sent) == 4 and sent[3] not in sent[:3]
    # A connection outside the pool (the generation feed's LISTEN) gets one the same way.
    own = new_connection(engine, autocommit=True)
    try:
        assert own.autocommit and own.execute("SELECT current_user").fetchone() == (role.name,)
    finally:
        own.close()
    assert len(sent) == 5 and sent[4].startswith(f"{role.host}:{role.port}/?Action=connect&")


def test_iam_tokens_require_tls_unless_the_url_says_otherwise(
    aws: MotoServer, iam_role: Role, engines: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    plain = f"postgresql://{iam_role.name}@{iam_role.host}:{iam_role.port}/{iam_role.database}"
    engine = create_database_engine(Settings(database_url=plain, aws_db_use_iam_role=True))
    engines.append(engine)
    assert engine.url.query == {"sslmode": "require"}
    with pytest.raises(OperationalError, match="SSL"), engine.connect():
        pass  # the test server has no TLS: refused, rather than a token sent in plain text

    with caplog.at_level(logging.WARNING, logger="generator"):
        engines.append(create_database_engine(Settings(database_url=f"{plain}?sslmode=prefer",
                                                       aws_db_use_iam_role=True)))
    assert "AWS_DB_USE_IAM_ROLE with sslmode=prefer: RDS accepts IAM tokens only over TLS" in caplog.text


def test_iam_with_a_secret_needs_no_password_in_it(aws: MotoServer, iam_role: Role, engines: list[Any]) -> None:
    name = put_secret(iam_role.secret(password=None))
    engine = create_database_engine(Settings(aws_sm_enabled=True, aws_sm_name=name, aws_db_use_iam_role=True))
    engines.append(engine)
    assert (engine.url.username, engine.url.host, engine.url.database) == (
        iam_role.name, iam_role.host, iam_role.database)
    assert engine.url.password is None and engine.url.query == {"sslmode": "require"}


def test_iam_without_aws_credentials_stops_the_start_up(aws: MotoServer, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StartupError, match=r"AWS_DB_USE_IAM_ROLE\) cannot sign tokens: Unable to locate credentials"):
        create_database_engine(Settings(database_url="postgresql://app@db.example/app", aws_db_use_iam_role=True))


def test_cloud_database_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"AWS_SM_ENABLED": "true", "AWS_SM_NAME": "prod/drg", "AWS_SM_REGION": "us-west-2",
                                  "AWS_SM_DBNAME": "drg", "AWS_DB_USE_IAM_ROLE": "1",
                                  "AWS_DB_REGION_IAM_ROLE": "us-west-2"})
    assert (settings.aws_sm_enabled, settings.aws_sm_name, settings.aws_sm_region, settings.aws_sm_dbname) == (
        True, "prod/drg", "us-west-2", "drg")
    assert (settings.aws_db_use_iam_role, settings.aws_db_region_iam_role) == (True, "us-west-2")
    assert settings.database_url == ""  # the secret names the database, not a default SQLite file
    defaults = Settings.from_env({})
    assert not defaults.aws_sm_enabled and not defaults.aws_db_use_iam_role
    assert defaults.database_url.startswith("sqlite:///")


def test_the_aws_package_keeps_its_layer_rules() -> None:
    """generator/aws/README.md: boto3 and generator.errors only; no SQLAlchemy, Flask, Connexion or layers."""
    allowed = ("boto3", "botocore", "generator.aws", "generator.errors")
    package = Path(__file__).resolve().parents[1] / "generator" / "aws"
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text())
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0]
        third_party = [name for name in names if name.split(".")[0] not in sys.stdlib_module_names
                       and name != "__future__"]
        assert all(name.startswith(allowed) for name in third_party), (module.name, third_party)
