"""Database credentials from an AWS Secrets Manager secret, in the JSON RDS writes for a database user
(`host`, `port`, `username`, `password`, and optionally `engine` and `dbname`).

The secret is read when the engine is created, and again when the database refuses a new connection's
password (a rotation; see `models/engine.py`). Errors name the secret and the member, never a value."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from generator.aws.clients import client
from generator.aws.errors import AWS_FAILURES, error_code, reason
from generator.errors import StartupError

POSTGRES_ENGINES = ("postgres", "postgresql", "aurora-postgresql")


@dataclass(frozen=True)
class DatabaseSecret:
    host: str
    port: int
    username: str
    dbname: str
    password: str = field(default="", repr=False)  # repr=False: a logged or printed secret shows no password


def read_database_secret(name: str, region: str = "", dbname: str = "", password_required: bool = True
                         ) -> DatabaseSecret:
    """The secret `name`'s connection details; `dbname` (AWS_SM_DBNAME) wins over the secret's own.

    With RDS IAM authentication the password is not needed (`password_required=False`)."""
    label = f"The AWS Secrets Manager secret {name!r} (AWS_SM_NAME)"
    values = _secret_object(name, region, label)
    required = ("host", "port", "username") + (("password",) if password_required else ())
    for member in required:
        if values.get(member) in (None, ""):
            raise StartupError(f"{label} has no {member!r} member. It must hold the JSON RDS writes for a "
                               "database user: host, port, username, password (and optionally engine, dbname).")
    engine = str(values.get("engine") or "postgres")
    if engine not in POSTGRES_ENGINES:
        raise StartupError(f"{label} is for engine {engine!r}; this service runs on PostgreSQL only")
    try:
        port = int(values["port"])
    except (TypeError, ValueError):
        raise StartupError(f"{label}: member 'port' is not a port number") from None
    database = dbname or str(values.get("dbname") or "")
    if not database:
        raise StartupError(f"{label} names no database: set AWS_SM_DBNAME or add a 'dbname' member to the secret")
    return DatabaseSecret(host=str(values["host"]), port=port, username=str(values["username"]),
                          dbname=database, password=str(values.get("password") or ""))


def _secret_object(name: str, region: str, label: str) -> dict[str, Any]:
    try:
        response = client("secretsmanager", region).get_secret_value(SecretId=name)
    except AWS_FAILURES as exc:
        if error_code(exc) == "ResourceNotFoundException":
            where = f"region {region!r}" if region else "the default region"
            raise StartupError(f"{label} does not exist in {where}: check AWS_SM_NAME and AWS_SM_REGION") from None
        raise StartupError(f"{label} cannot be read: {reason(exc)}") from None
    text = response.get("SecretString")
    if text is None:
        raise StartupError(f"{label} holds binary data; store the credentials as a JSON string")
    try:
        values = json.loads(text)
    except ValueError:
        # No parser message: it can quote the text around the error, which may be the password.
        raise StartupError(f"{label} is not valid JSON; store the JSON RDS writes for a database user") from None
    if not isinstance(values, dict):
        raise StartupError(f"{label} is not a JSON object; store the JSON RDS writes for a database user")
    return values
