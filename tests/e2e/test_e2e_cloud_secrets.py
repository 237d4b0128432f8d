"""The service as a real process with its database credentials in AWS Secrets Manager (or RDS IAM tokens)
and its payload in S3, against moto's server and the test PostgreSQL: the password, tokens and AWS keys
appear in nothing it prints and in no response, on the happy path, on errors, and when it refuses to start."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
from sqlalchemy import create_engine, text

from tests.e2e.helpers import client, run_until_exit, server_environment
from tests.support.live_server import StartLiveServer
from tests.support.moto_server import MotoServer
from tests.support.postgres import PostgresServer
from tests.test_cloud_credentials import PASSWORD, Role, create_role, put_secret

Payload = Any
# moto accepts any key; a recognisable one lets the test look for it in the output.
AWS_SECRET_KEY = "wJalrXUtnFEMI-drg-e2e-secret-access-key"
TOKEN_MARKS = ("X-Amz-Signature", "Action=connect", "X-Amz-Credential")



def cloud_env(aws: MotoServer, **settings: str) -> dict[str, str]:
    return {**aws.env, "AWS_SECRET_ACCESS_KEY": AWS_SECRET_KEY, **settings}


def exchanges(http: httpx.Client, calls: list[tuple[str, str, Any]]) -> list[httpx.Response]:
    """Run `calls` (method, path, JSON body or None) and return every response."""
    return [http.request(method, path, json=body) for method, path, body in calls]


def assert_nothing_secret(*texts: str) -> None:
    for shown in texts:
        for secret in (PASSWORD, AWS_SECRET_KEY, *TOKEN_MARKS):
            assert secret not in shown, f"{secret!r} shown:\n{shown[-3000:]}"


def everything_said(responses: list[httpx.Response]) -> str:
    return "\n".join(f"{r.status_code} {dict(r.headers)} {r.text}" for r in responses)


def test_a_service_on_secrets_manager_credentials_never_shows_them(
    aws: MotoServer, postgres_server: PostgresServer, postgres_url: str, live_server: StartLiveServer,
    load_payload: Payload, tmp_path: Path,
) -> None:
    role: Role = create_role(postgres_server, postgres_url)
    bucket = f"drg-e2e-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    env = cloud_env(aws, DATABASE_URL="", AWS_SM_ENABLED="true", AWS_SM_NAME=put_secret(role.secret()),
                    AWS_SM_REGION="us-east-1", SCHEMA_STORAGE_TYPE="S3", AWS_S3_STORAGE_BUCKET_NAME=bucket)
    server = live_server("", tmp_path, env)
    with client(server) as http:
        responses = exchanges(http, [
            ("POST", "/generator", load_payload("default.json")),
            ("POST", "/people", {"name": "Ann"}),
            ("GET", "/people", None),
            ("GET", "/people/999", None),  # 404 problem
            ("POST", "/people", {"name": 5}),  # 400 problem
            ("POST", "/generator", {"data_resource_schema": {}}),  # 400 problem
            ("GET", "/health", None),
            ("GET", "/ready", None),
            ("GET", "/version", None),
            ("GET", "/metrics", None),
            ("GET", "/generator", None),
            ("GET", "/openapi.json", None),
            ("GET", "/admin/openapi.json", None),
        ])
        assert [r.status_code for r in responses[:6]] == [201, 201, 200, 404, 400, 400], everything_said(responses)
        assert responses[2].json()["people"] == [{"id": 1, "name": "Ann"}]

        # The database refuses the secret's user: requests that need a new connection fail, and say so.
        with _admin(postgres_url) as admin:
            admin.execute(text(f"ALTER ROLE {role.name} NOLOGIN"))
            admin.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role.name}'"))
        refused = exchanges(http, [("GET", "/people", None), ("POST", "/people", {"name": "Bea"})])
        assert all(r.status_code >= 500 for r in refused), everything_said(refused)
        with _admin(postgres_url) as admin:
            admin.execute(text(f"ALTER ROLE {role.name} LOGIN"))

    with _admin(postgres_url) as connection:  # the tables belong to the secret's user
        owner = connection.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'people'")).scalar()
    assert owner == role.name
    head = boto3.client("s3").head_object(Bucket=bucket, Key="data_resource_generation_payload.json")
    assert head["Metadata"] == {"generation": "1"}
    server.stop()
    assert_nothing_secret(server.log_text(), everything_said(responses + refused))


def test_a_bad_secret_stops_the_process_naming_the_secret_and_member(
    aws: MotoServer, postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    role = create_role(postgres_server, postgres_url)
    name = put_secret(role.secret(host=None))
    env = server_environment(tmp_path, "", **cloud_env(aws, AWS_SM_ENABLED="true", AWS_SM_NAME=name))
    (tmp_path / "data").mkdir()
    done = run_until_exit(env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"Cannot start: The AWS Secrets Manager secret {name!r} (AWS_SM_NAME) has no 'host' member" in output
    assert "Traceback" not in output
    assert_nothing_secret(output)


def test_rds_iam_tokens_never_show(
    aws: MotoServer, postgres_server: PostgresServer, postgres_url: str, live_server: StartLiveServer,
    load_payload: Payload, tmp_path: Path,
) -> None:
    """Tokens are passwords for 15 minutes: none in the log or a response. (The test server accepts any
    password and has no TLS, hence sslmode=disable, which the service warns about.)"""
    role = create_role(postgres_server, postgres_url, checked=False)  # only RDS can check a token
    url = f"postgresql://{role.name}@{role.host}:{role.port}/{role.database}?sslmode=disable"
    server = live_server(url, tmp_path, cloud_env(aws, AWS_DB_USE_IAM_ROLE="true",
                                                  AWS_DB_REGION_IAM_ROLE="us-east-1"))
    with client(server) as http:
        responses = exchanges(http, [
            ("POST", "/generator", load_payload("default.json")),
            ("POST", "/people", {"name": "Ann"}),
            ("GET", "/people/999", None),
            ("GET", "/health", None),
        ])
    assert [r.status_code for r in responses] == [201, 201, 404, 200], everything_said(responses)
    server.stop()
    log = server.log_text()
    assert "AWS_DB_USE_IAM_ROLE with sslmode=disable: RDS accepts IAM tokens only over TLS" in log
    assert_nothing_secret(log, everything_said(responses))


class _admin:
    """A superuser connection to the test database (autocommit), as a context manager."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url, isolation_level="AUTOCOMMIT")

    def __enter__(self) -> Any:
        self.connection = self.engine.connect()
        return self.connection

    def __exit__(self, *_: object) -> None:
        self.connection.close()
        self.engine.dispose()
