"""The audit trail of a dataset: one line per change ("11/19/2020, 17:07:28 - Created dataset <id>
(CreatedBy: x)"), kept twice: in the CloudWatch log group `/spinup/<org>/<group>` (stream: the dataset id), as
the seed does, and in `drg_dataset_logs`, so the lines survive without AWS. Writing to CloudWatch is best
effort (a failure is logged, never fails the change); the table row is written in every case."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Engine, insert, select

from generator.datasets.aws import code_of
from generator.datasets.tables import dataset_logs, now, utc
from generator.models.engine import for_writes, reading

log = logging.getLogger("generator.datasets")
TIME = "%m/%d/%Y, %H:%M:%S"


def group_name(org: str, group: str) -> str:
    return f"/spinup/{org}/{group}"


def line(at: datetime, message: str) -> str:
    return f"{utc(at).strftime(TIME)} - {message}"


def record(engine: Engine, logs: Any, org: str, group: str, dataset_id: str, actor: str, message: str) -> None:
    at = now()
    with for_writes(engine).begin() as connection:
        connection.execute(insert(dataset_logs).values(dataset=dataset_id, at=at, actor=actor, message=message))
    try:
        _put(logs, group_name(org, group), dataset_id, org, int(at.timestamp() * 1000), message)
    except (ClientError, BotoCoreError) as error:
        log.warning("audit line for dataset %s not sent to CloudWatch: %s", dataset_id,
                    code_of(error) if isinstance(error, ClientError) else type(error).__name__)


def lines(engine: Engine, logs: Any, org: str, group: str, dataset_id: str) -> list[str]:
    """From CloudWatch when it answers and holds the stream, else from the table."""
    try:
        events = _events(logs, group_name(org, group), dataset_id)
        if events:
            return [line(datetime.fromtimestamp(e["timestamp"] / 1000, UTC), e["message"]) for e in events]
    except (ClientError, BotoCoreError) as error:
        log.warning("audit lines of dataset %s read from the database: CloudWatch answered %s", dataset_id,
                    code_of(error) if isinstance(error, ClientError) else type(error).__name__)
    return stored(engine, dataset_id)


def stored(engine: Engine, dataset_id: str) -> list[str]:
    query = select(dataset_logs.c.at, dataset_logs.c.message).where(
        dataset_logs.c.dataset == dataset_id).order_by(dataset_logs.c.id)
    return reading(engine, lambda c: [line(r.at, r.message) for r in c.execute(query)])


def _put(logs: Any, group: str, stream: str, org: str, millis: int, message: str) -> None:
    for make in (lambda: logs.create_log_group(logGroupName=group, tags={"spinup:org": org}),
                 lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream)):
        try:
            make()
        except ClientError as error:
            if code_of(error) != "ResourceAlreadyExistsException":
                raise
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": millis, "message": message}])


def _events(logs: Any, group: str, stream: str) -> list[dict[str, Any]]:
    try:
        found: list[dict[str, Any]] = []
        token = None
        while True:
            options = {"nextToken": token} if token else {}
            page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, **options)
            found += page["events"]
            if not page["events"] or page.get("nextForwardToken") in (None, token):
                return found
            token = page["nextForwardToken"]
    except ClientError as error:
        if code_of(error) == "ResourceNotFoundException":
            return []
        raise
