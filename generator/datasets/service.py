"""What each route does, in order, on AWS (through `repository`, `access`, `logs`) and the platform database
(`store`). Blocking: the routes run these in worker threads.

Creation is all or nothing: each step that made something pushes its undo, and a failure at any later step
runs the undos in reverse (bucket, read policy, metadata object, index row) before the problem is answered."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from generator.datasets import access, bodies, logs, repository, store
from generator.datasets.aws import Clients, aws, code_of, problem_for
from generator.datasets.config import Account, DatasetsConfig
from generator.datasets.tables import now
from generator.errors import Issue, Problem, bad_request, conflict, not_found

log = logging.getLogger("generator.datasets")
INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
GROUP = re.compile(r"[A-Za-z0-9._-]{1,100}")  # part of metadata keys and CloudWatch log group names
UsedBy = Callable[[store.Row], list[str]]


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return str(uuid.uuid4())


class Datasets:
    def __init__(self, engine: Any, config: DatasetsConfig, clients: Clients | None = None,
                 used_by: UsedBy = lambda row: []) -> None:
        self.engine, self.config = engine, config
        self.clients = clients or Clients(config)
        self.used_by = used_by  # data products whose sources name a dataset (deleting it is then a 409)
        self._account_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- lookups -------------------------------------------------------------------------------------------

    def account(self, name: str) -> Account:
        found = self.config.accounts.get(name)
        if found is None:
            raise not_found(f"No account is named {name!r}; the configured accounts are "
                            f"{', '.join(sorted(self.config.accounts))}")
        return found

    def place(self, account: str, group: str) -> Account:
        """The account; 404 when unknown, 400 for a group name that cannot name a log group."""
        found = self.account(account)
        if not GROUP.fullmatch(group):
            raise bad_request(f"Group {group!r} is not a group name", [Issue(
                "/path/group", "must be 1-100 letters, digits, '.', '_' or '-'")])
        return found

    def row(self, account: str, group: str, dataset_id: str) -> store.Row:
        self.place(account, group)
        found = store.find(self.engine, account, group, dataset_id)
        if found is None:
            raise not_found(f"Account {account!r} has no dataset {dataset_id!r} in group {group!r}")
        return found

    def _client(self, account: str, service: str) -> Any:
        return self.clients.for_account(self.account(account), service)

    def _read_policy_arn(self, row: store.Row) -> str:
        with self._lock:
            known = self._account_ids.get(row.account)
        if known is None:
            with aws(f"identifying AWS account of {row.account!r}"):
                known = str(self._client(row.account, "sts").get_caller_identity()["Account"])
            with self._lock:
                self._account_ids[row.account] = known
        return access.policy_arn(known, access.read_policy_name(row.repository))

    def _audit(self, row: store.Row, actor: str, message: str) -> None:
        logs.record(self.engine, self._client(row.account, "logs"), row.org, row.group, row.id, actor, message)

    # -- datasets ------------------------------------------------------------------------------------------

    def create(self, account: str, group: str, body: Any, actor: str) -> dict[str, Any]:
        where = self.place(account, group)
        name, derivative, tags, fields = bodies.creation(body)
        dataset_id = new_id()
        bucket = repository.bucket_name(account, dataset_id)
        at = now()
        created_by = fields.get("created_by") or actor
        metadata = {**fields, "id": dataset_id, "name": name, "created_at": stamp(at), "created_by": created_by,
                    "modified_at": stamp(at), "modified_by": fields.get("modified_by") or created_by,
                    "data_storage": "s3", "derivative": derivative}
        metadata = dict(sorted(metadata.items()))
        all_tags = [*tags, {"key": "spinup:org", "value": where.org}, {"key": "ID", "value": dataset_id},
                    {"key": "Name", "value": name}]
        s3, iam = self._client(account, "s3"), self._client(account, "iam")
        row = store.Row(dataset_id, account, group, name, bucket, where.org, derivative, False, metadata)
        undo: list[tuple[str, Callable[[], object]]] = []
        try:
            with aws(f"creating bucket {bucket}"):
                if _bucket_exists(s3, bucket):
                    raise conflict(f"Bucket {bucket} already exists")
                repository.create_bucket(s3, bucket, where.region)
                undo.append(("bucket", lambda: repository.delete_bucket(s3, bucket)))
                repository.configure_bucket(s3, bucket, all_tags)
            with aws(f"creating policy {access.read_policy_name(bucket)}"):
                arn = access.create_read_policy(iam, bucket)
                undo.append(("policy", lambda: access.delete_policy(iam, arn)))
            self._put_metadata(row)
            undo.append(("metadata", lambda: self._delete_metadata(row)))
            store.add(self.engine, row, at)
            undo.append(("record", lambda: store.remove(self.engine, dataset_id)))
        except BaseException:
            _undo(undo, dataset_id)
            raise
        self._audit(row, created_by, f"Created dataset {dataset_id} (CreatedBy: {created_by})")
        return {"id": dataset_id, "repository": bucket, "metadata": metadata}

    def get(self, account: str, group: str, dataset_id: str) -> dict[str, Any]:
        row = self.row(account, group, dataset_id)
        s3 = self._client(account, "s3")
        metadata = self._metadata(row)
        with aws(f"reading bucket {row.repository}"):
            tags = repository.tags_of(s3, row.repository)
            empty = not repository.data_keys(s3, row.repository)
        return {"id": row.id, "metadata": metadata,
                "repository": {"name": row.repository, "empty": empty, "tags": tags}}

    def update(self, account: str, group: str, dataset_id: str, body: Any, actor: str) -> dict[str, Any]:
        changes = bodies.update(body)
        row = self.row(account, group, dataset_id)
        metadata = self._metadata(row)
        wanted = changes.get("data_classifications")
        if row.finalized and wanted is not None and sorted(wanted) != sorted(metadata.get("data_classifications", [])):
            raise Problem(409, "Conflict", f"Dataset {dataset_id} was finalized on {metadata.get('finalized_at')}: "
                                           "its data classifications can no longer change",
                          extra={"pointer": "/metadata/data_classifications"})
        at = now()
        metadata = dict(sorted({**metadata, **changes, "modified_at": stamp(at), "modified_by": actor}.items()))
        changed = store.Row(**{**row.__dict__, "metadata": metadata})
        self._put_metadata(changed)
        store.save(self.engine, changed, at)
        self._audit(row, actor, f"Updated metadata for dataset {dataset_id} (ModifiedBy: {actor})")
        return {"id": row.id, "metadata": metadata}

    def promote(self, account: str, group: str, dataset_id: str, actor: str) -> dict[str, Any]:
        row = self.row(account, group, dataset_id)
        metadata = self._metadata(row)
        if row.finalized or metadata.get("finalized_at"):
            raise conflict(f"Dataset {dataset_id} was already finalized on {metadata.get('finalized_at')} by "
                           f"{metadata.get('finalized_by')}")
        at = now()
        metadata = dict(sorted({**metadata, "derivative": False, "finalized_at": stamp(at), "finalized_by": actor,
                                "modified_at": stamp(at), "modified_by": actor}.items()))
        changed = store.Row(**{**row.__dict__, "metadata": metadata, "derivative": False, "finalized": True})
        if not store.finalize(self.engine, changed, at):  # the row decides between two concurrent promotions
            raise conflict(f"Dataset {dataset_id} was already finalized")
        try:
            self._put_metadata(changed)
        except BaseException:
            store.unfinalize(self.engine, row, at)
            raise
        self._audit(row, actor, f"Finalized original dataset {dataset_id} (ModifiedBy: {actor})")
        return {"id": row.id, "metadata": metadata}

    def delete(self, account: str, group: str, dataset_id: str, actor: str) -> None:
        row = self.row(account, group, dataset_id)
        products = self.used_by(row)
        if products:
            raise conflict(f"Dataset {dataset_id} is a source of data product(s) {', '.join(products)}: remove "
                           "those sources first", products=products)
        s3, iam, ec2 = (self._client(account, s) for s in ("s3", "iam", "ec2"))
        with aws(f"reading bucket {row.repository}"):
            data = repository.data_keys(s3, row.repository)
        if data:
            raise conflict(f"Bucket {row.repository} still holds data (for one, {data[0]!r}): empty it first; "
                           "a dataset is deleted only with an empty repository")
        arn = self._read_policy_arn(row)
        with aws(f"removing access to dataset {dataset_id}"):
            for instance_id in access.instance_roles(iam, arn):
                access.revoke_instance(iam, ec2, instance_id, arn)
            access.delete_user(iam, row.repository, lambda: self._user_policy_arn(row))
            access.delete_policy(iam, arn)
        with aws(f"deleting bucket {row.repository}"):
            repository.delete_bucket(s3, row.repository)
        self._delete_metadata(row)
        store.remove(self.engine, dataset_id)
        self._audit(row, actor, f"Deleted dataset {dataset_id} (DeletedBy: {actor})")

    def page(self, account: str, group: str, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        self.place(account, group)
        rows, total = store.page(self.engine, account, group, offset, limit)
        return [{"id": r.id, "name": r.name, "repository": r.repository, "metadata": r.metadata} for r in rows], total

    # -- attachments ---------------------------------------------------------------------------------------

    def add_attachment(self, account: str, group: str, dataset_id: str, name: Any, file: Any,
                       content_type: str, actor: str) -> list[str]:
        name = bodies.attachment_name(name, "/name")
        row = self.row(account, group, dataset_id)
        with aws(f"uploading attachment {name!r}"):
            repository.put_attachment(self._client(account, "s3"), row.repository, name, file, content_type)
        self._audit(row, actor, f"Added attachment {name} to dataset {dataset_id} (CreatedBy: {actor})")
        return [name]

    def attachments(self, account: str, group: str, dataset_id: str) -> list[dict[str, Any]]:
        row = self.row(account, group, dataset_id)
        with aws(f"listing attachments of {row.repository}"):
            return repository.attachments(self._client(account, "s3"), row.repository)

    def delete_attachment(self, account: str, group: str, dataset_id: str, body: Any, actor: str) -> None:
        name = bodies.attachment_name(body.get("attachment_name") if isinstance(body, dict) else None,
                                      "/attachment_name")
        row = self.row(account, group, dataset_id)
        with aws(f"deleting attachment {name!r}"):
            repository.delete_attachment(self._client(account, "s3"), row.repository, name)
        self._audit(row, actor, f"Deleted attachment {name} from dataset {dataset_id} (DeletedBy: {actor})")

    # -- users ---------------------------------------------------------------------------------------------

    def create_user(self, account: str, group: str, dataset_id: str, actor: str) -> dict[str, Any]:
        row = self.row(account, group, dataset_id)
        user = access.user_names(row.repository)[0]
        try:
            with aws(f"creating user {user}"):
                made = access.create_user(self._client(account, "iam"), row.repository)
        except Problem as problem:
            if problem.status == 409:
                raise conflict(f"Dataset {dataset_id} already has user {user}") from None
            raise
        self._audit(row, actor, f"Created user {user} for dataset {dataset_id} (CreatedBy: {actor})")
        return made

    def user(self, account: str, group: str, dataset_id: str) -> dict[str, Any]:
        row = self.row(account, group, dataset_id)
        with aws("listing the dataset user's keys"):
            found = access.user_keys(self._client(account, "iam"), row.repository)
        if found is None:
            raise not_found(f"Dataset {dataset_id} has no user")
        return found

    def rotate_user_key(self, account: str, group: str, dataset_id: str, actor: str) -> dict[str, Any]:
        row = self.row(account, group, dataset_id)
        try:
            with aws("rotating the dataset user's key"):
                rotated = access.rotate_key(self._client(account, "iam"), row.repository)
        except ValueError as limit:
            raise Problem(429, "Too Many Requests", str(limit)) from None
        if rotated is None:
            raise not_found(f"Dataset {dataset_id} has no user")
        self._audit(row, actor, f"Rotated the access key of the user of dataset {dataset_id} (ModifiedBy: {actor})")
        return rotated

    def delete_user(self, account: str, group: str, dataset_id: str, actor: str) -> None:
        row = self.row(account, group, dataset_id)
        with aws("deleting the dataset user"):
            existed = access.delete_user(self._client(account, "iam"), row.repository,
                                         lambda: self._user_policy_arn(row))
        if not existed:
            raise not_found(f"Dataset {dataset_id} has no user")
        self._audit(row, actor, f"Deleted the user of dataset {dataset_id} (DeletedBy: {actor})")

    def _user_policy_arn(self, row: store.Row) -> str:
        return self._read_policy_arn(row).replace(access.read_policy_name(row.repository),
                                                  access.user_names(row.repository)[2])

    # -- instances -----------------------------------------------------------------------------------------

    def instances(self, account: str, group: str, dataset_id: str) -> dict[str, Any]:
        row = self.row(account, group, dataset_id)
        with aws("listing instance access"):
            found = access.instance_roles(self._client(account, "iam"), self._read_policy_arn(row))
        return {"id": row.id, "access": found}

    def grant_instance(self, account: str, group: str, dataset_id: str, body: Any, actor: str) -> dict[str, Any]:
        instance_id = body.get("instance_id") if isinstance(body, dict) else None
        if not isinstance(instance_id, str) or not INSTANCE_ID.fullmatch(instance_id):
            raise bad_request("Name the instance", [Issue("/instance_id", "is required: an EC2 instance id, "
                                                                          "i- and 8 or 17 hexadecimal digits")])
        row = self.row(account, group, dataset_id)
        iam, ec2 = self._client(account, "iam"), self._client(account, "ec2")
        arn = self._read_policy_arn(row)
        with aws(f"granting instance {instance_id} access"):
            if not _instance_exists(ec2, instance_id):
                raise bad_request(f"Account {account!r} has no instance {instance_id}",
                                  [Issue("/instance_id", "is not an instance of the account")])
            try:
                access.grant_instance(iam, ec2, instance_id, arn)
            except ValueError as taken:
                raise conflict(f"{taken}; it is not replaced") from None
            found = access.instance_roles(iam, arn)
        self._audit(row, actor, f"Granted instance {instance_id} access to dataset {dataset_id} (CreatedBy: {actor})")
        return {"id": row.id, "access": found}

    def revoke_instance(self, account: str, group: str, dataset_id: str, instance_id: str, actor: str) -> None:
        row = self.row(account, group, dataset_id)
        iam, ec2 = self._client(account, "iam"), self._client(account, "ec2")
        arn = self._read_policy_arn(row)
        with aws(f"revoking instance {instance_id} access"):
            if instance_id not in access.instance_roles(iam, arn):
                raise bad_request(f"Instance {instance_id} has no access to dataset {dataset_id}")
            access.revoke_instance(iam, ec2, instance_id, arn)
        self._audit(row, actor, f"Revoked instance {instance_id} access to dataset {dataset_id} (DeletedBy: {actor})")

    # -- logs ----------------------------------------------------------------------------------------------

    def logs(self, account: str, group: str, dataset_id: str) -> list[str]:
        row = self.row(account, group, dataset_id)
        return logs.lines(self.engine, self._client(account, "logs"), row.org, row.group, row.id)

    # -- the metadata repository ---------------------------------------------------------------------------

    def _metadata(self, row: store.Row) -> dict[str, Any]:
        """The repository's object; the index's copy when the object is missing."""
        with self._repository("reading"):
            found = repository.get_metadata(self.clients.metadata_s3(), self.config.metadata_bucket,
                                            repository.metadata_key(row.account, row.group, row.id))
        return found if found is not None else dict(row.metadata)

    def _put_metadata(self, row: store.Row) -> None:
        with self._repository("writing"):
            repository.put_metadata(self.clients.metadata_s3(), self.config.metadata_bucket,
                                    repository.metadata_key(row.account, row.group, row.id), row.metadata)

    def _delete_metadata(self, row: store.Row) -> None:
        with self._repository("deleting"):
            repository.delete_metadata(self.clients.metadata_s3(), self.config.metadata_bucket,
                                       repository.metadata_key(row.account, row.group, row.id))

    def _repository(self, doing: str) -> Any:
        return metadata_errors(f"{doing} metadata in bucket {self.config.metadata_bucket}",
                               self.config.metadata_bucket)


@contextmanager
def metadata_errors(doing: str, bucket: str) -> Iterator[None]:
    """AWS errors of the metadata repository; a missing bucket is the operator's to fix (503)."""
    try:
        yield
    except ClientError as error:
        if code_of(error) == "NoSuchBucket":
            raise Problem(503, "Service Unavailable", f"The metadata repository bucket {bucket} does not exist: "
                                                      "create it, or name another in DATASETS_CONFIG") from error
        raise problem_for(error, doing) from error
    except BotoCoreError as error:
        raise problem_for(error, doing) from error


def _bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if code_of(error) in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code_of(error) in ("403", "AccessDenied"):
            return True  # someone else's
        raise
    return True


def _instance_exists(ec2: Any, instance_id: str) -> bool:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if code_of(error).startswith("InvalidInstanceID"):
            return False
        raise
    return any(i["State"]["Name"] != "terminated" for r in reservations for i in r["Instances"])


def _undo(steps: list[tuple[str, Callable[[], object]]], dataset_id: str) -> None:
    for what, step in reversed(steps):
        try:
            step()
        except Exception as exc:  # noqa: BLE001 (keep undoing; the first failure is what the client hears)
            log.error("creating dataset %s failed, and removing its %s failed too: %s", dataset_id, what, exc)
