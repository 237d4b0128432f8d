"""Datasets (`/v1/ds/...`, the Spinup ds-api seed) against moto's server over HTTP: every route and the codes
a client sees. Each test uses its own account name (so buckets, log groups and IAM names never collide on the
shared moto server) and SQLite; tests/test_datasets_postgres.py runs the main flow on PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from tests.support.moto_server import MotoServer

PSK = "the-pre-shared-key"
BODY = {
    "name": "awesome-dataset-of-stuff",
    "type": "s3",
    "derivative": True,
    "tags": [{"key": "Application", "value": "ButWhyyyyy"}, {"key": "CreatedBy", "value": "SomeGuy"}],
    "metadata": {
        "description": "The hugest dataset of awesome stuff",
        "created_at": "2018-03-28T07:36:01.123Z",
        "created_by": "drzoidberg",
        "data_classifications": ["hipaa", "pii"],
        "data_format": "file",
        "dua_url": "https://allmydata.s3.amazonaws.com/duas/huge_awesome_dua.pdf",
        "modified_by": "pfry",
        "proctor_response_url": "https://allmydata.s3.amazonaws.com/proctor/huge_awesome_study.json",
        "source_ids": ["e15d2282-9c68-46b5-801c-2b5a62484624"],
    },
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here (moto dominates the time); PostgreSQL: tests/test_datasets_postgres.py."""
    return f"sqlite:///{tmp_path}/db.sqlite3"


class DS:
    """A configured service and what a test needs around it."""

    def __init__(self, client: TestClient, account: str, meta_bucket: str, config_path: Path) -> None:
        self.client, self.account, self.meta_bucket, self.config_path = client, account, meta_bucket, config_path
        self.base = f"/v1/ds/{account}/datasets/grp"
        self.s3 = boto3.client("s3")
        self.iam = boto3.client("iam")

    def create(self, body: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = self.client.post(self.base, json=body or BODY, headers=headers)
        assert response.status_code == 202, response.text
        return response.json()

    def service(self) -> Any:
        mount = next(m for m in self.client.app.mounts if m.prefix == "/v1/ds")
        return mount.app.service


def write_config(path: Path, meta_bucket: str, accounts: dict[str, Any], **extra: Any) -> Path:
    path.write_text(json.dumps({"metadataRepository": {"type": "s3", "bucket": meta_bucket, "region": "us-east-1"},
                                "accounts": accounts, "token": hashlib.sha256(PSK.encode()).hexdigest(), **extra}))
    return path


@pytest.fixture
def make_ds(aws: MotoServer, make_client: Callable[..., TestClient], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Callable[..., DS]:
    def make(account_options: dict[str, str] | None = None, **overrides: Any) -> DS:
        account = "t" + uuid.uuid4().hex[:10]
        meta_bucket = f"drg-ds-meta-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=meta_bucket)
        options = account_options if account_options is not None else {"region": "us-east-1", "org": "localdev"}
        path = write_config(tmp_path / f"{account}.json", meta_bucket, {account: options}, **overrides)
        monkeypatch.setenv("DATASETS_CONFIG", str(path))
        return DS(make_client(), account, meta_bucket, path)

    return make


@pytest.fixture
def ds(make_ds: Callable[..., DS]) -> DS:
    return make_ds()


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


# -- service routes ------------------------------------------------------------------------------------------

def test_ping_version_metrics(ds: DS) -> None:
    ping = ds.client.get("/v1/ds/ping")
    assert (ping.status_code, ping.text) == (200, "pong")
    assert ds.client.get("/v1/ds/version").json()["version"]
    metrics = ds.client.get("/v1/ds/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'drg_datasets_requests_total{method="GET",route="/v1/ds/ping",status="200"} 1.0' in metrics.text
    ds.client.get(f"{ds.base}/{uuid.uuid4()}")
    service_wide = ds.client.get("/metrics").text  # the service's own metrics name the template, never an id
    assert 'route="/v1/ds/{account}/datasets/{group}/{id}"' in service_wide


def test_missing_configuration_answers_503_and_the_service_still_runs(
        make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATASETS_CONFIG", raising=False)
    client = make_client()
    body = problem_of(client.get("/v1/ds/ping"), 503)
    assert "set DATASETS_CONFIG" in body["detail"]
    assert client.get("/health").status_code == 200


def test_wrong_configuration_says_what_to_fix(make_client: Callable[..., TestClient], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"metadataRepository": {"type": "s3", "bucket": "b"}, "accounts": {"Bad_Name": {}}}))
    monkeypatch.setenv("DATASETS_CONFIG", str(path))
    body = problem_of(make_client().get("/v1/ds/ping"), 503)
    assert "'Bad_Name'" in body["detail"]


def test_account_keys_and_default_org(make_ds: Callable[..., DS]) -> None:
    ds = make_ds({"region": "us-east-1", "akid": "AKIAACCOUNTKEY000001", "secret": "account-secret"})
    made = ds.create()
    tags = {t["key"]: t["value"] for t in ds.client.get(f"{ds.base}/{made['id']}").json()["repository"]["tags"]}
    assert tags["spinup:org"] == ds.account  # org defaults to the account name
    client = ds.service().clients.for_account(ds.service().account(ds.account), "s3")
    assert client._request_signer._credentials.access_key == "AKIAACCOUNTKEY000001"


def test_unknown_route_and_method(ds: DS) -> None:
    assert problem_of(ds.client.get("/v1/ds/nothing/here"), 404)["status"] == 404
    refused = ds.client.delete("/v1/ds/ping")
    problem_of(refused, 405)
    assert refused.headers["allow"] == "GET"


# -- authentication ------------------------------------------------------------------------------------------

def test_production_requires_the_pre_shared_key_or_a_bearer_token(make_ds: Callable[..., DS],
                                                                  make_client: Callable[..., TestClient]) -> None:
    ds = make_ds()
    prod = make_client(app_env="production", auth_tokens=("service-token",))
    refused = problem_of(prod.get("/v1/ds/ping"), 401)
    assert "Authorization" in refused["detail"]
    problem_of(prod.get("/v1/ds/ping", headers={"X-Auth-Token": "wrong"}), 401)
    problem_of(prod.get("/v1/ds/ping", headers={"Authorization": "Bearer wrong"}), 401)
    problem_of(prod.get("/v1/ds/ping", headers={"X-Auth-Token": PSK, "Authorization": "Bearer service-token"}), 401)
    assert prod.get("/v1/ds/ping", headers={"X-Auth-Token": PSK}).text == "pong"
    assert prod.get("/v1/ds/ping", headers={"Authorization": "Bearer service-token"}).text == "pong"
    made = prod.post(f"/v1/ds/{ds.account}/datasets/grp", json=BODY, headers={"X-Auth-Token": PSK})
    assert made.status_code == 202
    # development mode is open, but a key that is sent is checked there too
    assert ds.client.get("/v1/ds/ping").text == "pong"
    problem_of(ds.client.get("/v1/ds/ping", headers={"X-Auth-Token": "wrong"}), 401)


# -- create, read, update, promote, delete --------------------------------------------------------------------

def test_create_answers_202_with_the_seed_shape_and_makes_bucket_metadata_and_record(ds: DS) -> None:
    made = ds.create()
    dataset_id = made["id"]
    assert made["repository"] == f"dataset-{ds.account}-{dataset_id}"
    metadata = made["metadata"]
    assert metadata["id"] == dataset_id and metadata["name"] == BODY["name"]
    assert metadata["data_storage"] == "s3" and metadata["derivative"] is True
    assert metadata["created_by"] == "drzoidberg" and metadata["modified_by"] == "pfry"
    assert metadata["created_at"] != BODY["metadata"]["created_at"]  # the server sets it
    assert metadata["created_at"].endswith("Z") and metadata["modified_at"] == metadata["created_at"]
    tags = {t["Key"]: t["Value"] for t in ds.s3.get_bucket_tagging(Bucket=made["repository"])["TagSet"]}
    assert tags == {"Application": "ButWhyyyyy", "CreatedBy": "SomeGuy", "spinup:org": "localdev",
                    "ID": dataset_id, "Name": BODY["name"]}
    stored = json.loads(ds.s3.get_object(Bucket=ds.meta_bucket, Key=f"{ds.account}/grp/{dataset_id}.json")["Body"]
                        .read())
    assert stored == metadata
    got = ds.client.get(f"{ds.base}/{dataset_id}").json()
    assert got["metadata"] == metadata
    assert got["repository"]["name"] == made["repository"] and got["repository"]["empty"] is True
    assert {"key": "spinup:org", "value": "localdev"} in got["repository"]["tags"]
    ds.s3.put_object(Bucket=made["repository"], Key="data/part-0.csv", Body=b"a,b\n")
    assert ds.client.get(f"{ds.base}/{dataset_id}").json()["repository"]["empty"] is False


@pytest.mark.parametrize(("body", "pointer"), [
    ({**BODY, "name": ""}, "/name"),                                   # name required
    ({k: v for k, v in BODY.items() if k != "name"}, "/name"),
    ({**BODY, "type": "ftp"}, "/type"),                                 # only s3
    ({**BODY, "derivative": "yes"}, "/derivative"),
    ({**BODY, "tags": [{"key": "ID", "value": "x"}]}, "/tags/0/key"),   # set by the service
    ({**BODY, "metadata": {"data_classifications": "pii"}}, "/metadata/data_classifications"),
    ({**BODY, "metadata": {"colour": "red"}}, "/metadata/colour"),       # not a metadata field
    ({**BODY, "extra": 1}, "/extra"),
])
def test_create_names_the_bad_field(ds: DS, body: dict[str, Any], pointer: str) -> None:
    found = problem_of(ds.client.post(ds.base, json=body), 400)
    assert pointer in [e["pointer"] for e in found["errors"]]


def test_create_refuses_what_is_not_json(ds: DS) -> None:
    problem_of(ds.client.post(ds.base, content=b"{nope", headers={"content-type": "application/json"}), 400)


def test_bad_group_and_big_bodies(ds: DS) -> None:
    found = problem_of(ds.client.post(f"/v1/ds/{ds.account}/datasets/a%20b", json=BODY), 400)
    assert found["errors"][0]["pointer"] == "/path/group"
    problem_of(ds.client.get(f"/v1/ds/{ds.account}/datasets/a%20b"), 400)
    big = {**BODY, "metadata": {"description": "x" * (2 * 1024 * 1024)}}
    assert problem_of(ds.client.post(ds.base, json=big), 413)["limit"] == 1024 * 1024


def test_unknown_account_and_dataset_are_404(ds: DS) -> None:
    assert "nosuch" in problem_of(ds.client.post("/v1/ds/nosuch/datasets/grp", json=BODY), 404)["detail"]
    problem_of(ds.client.get("/v1/ds/nosuch/datasets/grp"), 404)
    missing = str(uuid.uuid4())
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        problem_of(ds.client.request(method, f"{ds.base}/{missing}", json={"metadata": {}}), 404)
    made = ds.create()
    problem_of(ds.client.get(f"/v1/ds/{ds.account}/datasets/othergroup/{made['id']}"), 404)  # another group's


def test_bucket_that_exists_is_409_and_leaves_it_alone(ds: DS, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = str(uuid.uuid4())
    bucket = f"dataset-{ds.account}-{fixed}"
    ds.s3.create_bucket(Bucket=bucket)
    ds.s3.put_object(Bucket=bucket, Key="theirs", Body=b"x")
    monkeypatch.setattr("generator.datasets.service.new_id", lambda: fixed)
    assert bucket in problem_of(ds.client.post(ds.base, json=BODY), 409)["detail"]
    assert ds.s3.get_object(Bucket=bucket, Key="theirs")["Body"].read() == b"x"
    assert ds.client.get(ds.base).json()["total"] == 0


def test_failure_at_the_iam_step_removes_bucket_and_record(ds: DS, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = str(uuid.uuid4())
    bucket = f"dataset-{ds.account}-{fixed}"
    ds.iam.create_policy(PolicyName=f"{bucket}-DsRoPlc", Path="/spinup/dataset/", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
    monkeypatch.setattr("generator.datasets.service.new_id", lambda: fixed)
    problem_of(ds.client.post(ds.base, json=BODY), 409)  # the policy already exists
    with pytest.raises(ClientError):
        ds.s3.head_bucket(Bucket=bucket)
    assert ds.client.get(ds.base).json()["total"] == 0
    problem_of(ds.client.get(f"{ds.base}/{fixed}"), 404)


def test_failure_at_the_record_step_removes_bucket_policy_and_metadata(ds: DS, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = str(uuid.uuid4())
    bucket = f"dataset-{ds.account}-{fixed}"
    monkeypatch.setattr("generator.datasets.service.new_id", lambda: fixed)

    def broken(*args: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("generator.datasets.store.add", broken)
    problem_of(ds.client.post(ds.base, json=BODY), 500)
    with pytest.raises(ClientError):
        ds.s3.head_bucket(Bucket=bucket)
    listed = ds.s3.list_objects_v2(Bucket=ds.meta_bucket).get("Contents", [])
    assert not [o for o in listed if fixed in o["Key"]]
    names = [p["PolicyName"] for p in ds.iam.list_policies(Scope="Local", PathPrefix="/spinup/dataset/")["Policies"]]
    assert f"{bucket}-DsRoPlc" not in names


@pytest.mark.parametrize(("code", "status"), [
    ("SlowDown", 429),                # S3 throttling
    ("Throttling", 429),
    ("ServiceUnavailable", 503),      # AWS unavailable
    ("InternalError", 503),
    ("AccessDenied", 403),
])
def test_aws_failures_are_mapped_never_500(ds: DS, code: str, status: int) -> None:
    s3 = ds.service().clients.for_account(ds.service().account(ds.account), "s3")

    def fail(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "CreateBucket")

    s3.meta.events.register("before-call.s3.CreateBucket", fail)
    try:
        found = problem_of(ds.client.post(ds.base, json=BODY), status)
    finally:
        s3.meta.events.unregister("before-call.s3.CreateBucket", fail)
    assert code in found["detail"]
    assert ds.client.get(ds.base).json()["total"] == 0


def test_unreachable_aws_is_503(ds: DS) -> None:
    from botocore.exceptions import EndpointConnectionError

    s3 = ds.service().clients.metadata_s3()

    def fail(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.example")

    s3.meta.events.register("before-call.s3.PutObject", fail)
    try:
        problem_of(ds.client.post(ds.base, json=BODY), 503)
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", fail)


def test_missing_metadata_bucket_is_503_naming_it(ds: DS) -> None:
    ds.s3.delete_bucket(Bucket=ds.meta_bucket)
    assert ds.meta_bucket in problem_of(ds.client.post(ds.base, json=BODY), 503)["detail"]


def test_put_merges_metadata_and_sets_modified(ds: DS) -> None:
    made = ds.create()
    url = f"{ds.base}/{made['id']}"
    changed = ds.client.put(url, json={"metadata": {"description": "It's actually a tiny dataset"}},
                            headers={"X-Forwarded-User": "awong"})
    assert changed.status_code == 200, changed.text
    metadata = changed.json()["metadata"]
    assert metadata["description"] == "It's actually a tiny dataset"
    assert metadata["modified_by"] == "awong" and metadata["dua_url"] == BODY["metadata"]["dua_url"]
    assert ds.client.get(url).json()["metadata"] == metadata
    found = problem_of(ds.client.put(url, json={"metadata": {"source_ids": "x"}}), 400)
    assert found["errors"][0]["pointer"] == "/metadata/source_ids"
    problem_of(ds.client.put(url, json={"description": "no wrapper"}), 400)


def test_promote_finalizes_once_and_freezes_classifications(ds: DS) -> None:
    made = ds.create()
    url = f"{ds.base}/{made['id']}"
    promoted = ds.client.patch(url, headers={"X-Forwarded-User": "awong"})
    assert promoted.status_code == 200, promoted.text
    metadata = promoted.json()["metadata"]
    assert metadata["derivative"] is False
    assert metadata["finalized_by"] == "awong" and metadata["finalized_at"] == metadata["modified_at"]
    assert "already finalized" in problem_of(ds.client.patch(url, headers={"X-Forwarded-User": "x"}), 409)["detail"]
    frozen = problem_of(ds.client.put(url, json={"metadata": {"data_classifications": ["pii"]}}), 409)
    assert "classifications" in frozen["detail"]
    same = ds.client.put(url, json={"metadata": {"data_classifications": ["pii", "hipaa"], "description": "d"}})
    assert same.status_code == 200 and same.json()["metadata"]["finalized_by"] == "awong"


def test_two_promotions_at_once_one_wins(ds: DS, monkeypatch: pytest.MonkeyPatch) -> None:
    made = ds.create()
    service = ds.service()
    stale = service.row(ds.account, "grp", made["id"])  # what a second request read before the first committed
    assert ds.client.patch(f"{ds.base}/{made['id']}", headers={"X-Forwarded-User": "first"}).status_code == 200
    monkeypatch.setattr(service, "row", lambda *args: stale)
    monkeypatch.setattr(service, "_metadata", lambda row: dict(row.metadata))
    problem_of(ds.client.patch(f"{ds.base}/{made['id']}", headers={"X-Forwarded-User": "second"}), 409)
    monkeypatch.undo()
    assert ds.client.get(f"{ds.base}/{made['id']}").json()["metadata"]["finalized_by"] == "first"


def test_delete_removes_bucket_metadata_record_and_access(ds: DS) -> None:
    made = ds.create()
    url = f"{ds.base}/{made['id']}"
    assert ds.client.post(f"{url}/users").status_code == 200
    ds.client.post(f"{url}/attachments", data={"name": "eula.txt"}, files={"attachment": ("e.txt", b"terms")})
    deleted = ds.client.delete(url, headers={"X-Forwarded-User": "awong"})
    assert deleted.status_code == 204, deleted.text
    with pytest.raises(ClientError):
        ds.s3.head_bucket(Bucket=made["repository"])
    problem_of(ds.client.get(url), 404)
    assert not ds.s3.list_objects_v2(Bucket=ds.meta_bucket).get("Contents")
    with pytest.raises(ClientError):
        ds.iam.get_user(UserName=f"{made['repository']}-DsTmpUsr")
    names = [p["PolicyName"] for p in ds.iam.list_policies(Scope="Local", PathPrefix="/spinup/dataset/")["Policies"]]
    assert not [n for n in names if made["repository"] in n]
    logs = ds.client.get(f"{url}/logs")
    assert logs.status_code == 404  # the dataset is gone; its lines stay in CloudWatch and drg_dataset_logs


def test_delete_refuses_a_bucket_with_data(ds: DS) -> None:
    made = ds.create()
    ds.s3.put_object(Bucket=made["repository"], Key="data.csv", Body=b"1")
    found = problem_of(ds.client.delete(f"{ds.base}/{made['id']}"), 409)
    assert "data.csv" in found["detail"] and "empty it first" in found["detail"]
    assert ds.client.get(f"{ds.base}/{made['id']}").status_code == 200


def test_list_pages_with_a_next_link(ds: DS) -> None:
    ids = [ds.create({**BODY, "name": f"set-{i}"})["id"] for i in range(3)]
    first = ds.client.get(ds.base, params={"limit": 2}).json()
    assert [d["id"] for d in first["datasets"]] == ids[:2] and first["total"] == 3
    assert first["next"] == f"{ds.base}?offset=2&limit=2"
    second = ds.client.get(first["next"]).json()
    assert [d["id"] for d in second["datasets"]] == ids[2:] and second["next"] is None
    assert second["datasets"][0]["name"] == "set-2"
    assert problem_of(ds.client.get(ds.base, params={"limit": 0}), 400)["errors"][0]["pointer"] == "/query/limit"
    problem_of(ds.client.get(ds.base, params={"offset": "-1"}), 400)
    assert ds.client.get(f"/v1/ds/{ds.account}/datasets/empty-group").json()["datasets"] == []


# -- attachments ----------------------------------------------------------------------------------------------

def test_attachments_upload_list_download_delete(ds: DS) -> None:
    made = ds.create()
    url = f"{ds.base}/{made['id']}/attachments"
    uploaded = ds.client.post(url, data={"name": "eula.txt"},
                              files={"attachment": ("x.txt", b"the terms", "text/plain")})
    assert (uploaded.status_code, uploaded.json()) == (200, ["eula.txt"])
    listed = ds.client.get(url).json()
    assert [(a["Name"], a["Size"]) for a in listed] == [("eula.txt", 9)]
    assert listed[0]["Modified"].endswith("Z") and "X-Amz-Expires=300" in listed[0]["URL"]
    downloaded = httpx.get(listed[0]["URL"])
    assert (downloaded.status_code, downloaded.content) == (200, b"the terms")
    assert ds.client.get(f"{ds.base}/{made['id']}").json()["repository"]["empty"] is True  # attachments aren't data
    assert ds.client.request("DELETE", url, json={"attachment_name": "eula.txt"}).status_code == 204
    assert ds.client.get(url).json() == []
    assert ds.client.request("DELETE", url, json={"attachment_name": "never.txt"}).status_code == 204
    found = problem_of(ds.client.request("DELETE", url, json={}), 400)
    assert found["errors"][0]["pointer"] == "/attachment_name"


def test_attachment_too_big_or_malformed_is_400(make_ds: Callable[..., DS]) -> None:
    ds = make_ds(maxAttachmentSize=1000)
    made = ds.create()
    url = f"{ds.base}/{made['id']}/attachments"
    found = problem_of(ds.client.post(url, data={"name": "big.bin"}, files={"attachment": ("b", b"x" * 1001)}), 400)
    assert "file too big" in found["detail"]
    huge = ds.client.post(url, data={"name": "huge.bin"}, files={"attachment": ("b", b"x" * 200_000)})
    assert "file too big" in problem_of(huge, 400)["detail"]
    assert ds.client.post(url, data={"name": "ok.bin"}, files={"attachment": ("b", b"x" * 1000)}).status_code == 200
    problem_of(ds.client.post(url, data={"name": "no-file"}), 400)
    problem_of(ds.client.post(url, json={"name": "x"}), 400)
    problem_of(ds.client.post(url, data={"name": "a/b"}, files={"attachment": ("b", b"x")}), 400)
    problem_of(ds.client.post(f"{ds.base}/{uuid.uuid4()}/attachments", data={"name": "x"},
                              files={"attachment": ("b", b"x")}), 404)


# -- users ----------------------------------------------------------------------------------------------------

def test_users_create_list_rotate_to_429_and_delete(ds: DS) -> None:
    made = ds.create()
    url = f"{ds.base}/{made['id']}/users"
    problem_of(ds.client.get(url), 404)
    created = ds.client.post(url)
    assert created.status_code == 200, created.text
    user = created.json()
    bucket = made["repository"]
    assert (user["user"], user["group"], user["policy"]) == (f"{bucket}-DsTmpUsr", f"{bucket}-DsTmpGrp",
                                                            f"{bucket}-DsTmpPlc")
    first = user["credentials"]["akid"]
    assert user["credentials"]["secret"]
    assert "already has user" in problem_of(ds.client.post(url), 409)["detail"]
    assert ds.client.get(url).json() == {user["user"]: {"keys": {first: "Active"}}}
    rotated = ds.client.put(url).json()
    second = rotated["credentials"]["akid"]
    assert rotated["keys"] == {first: "Inactive"} and rotated["credentials"]["secret"] and second != first
    assert ds.client.get(url).json()[user["user"]]["keys"] == {first: "Inactive", second: "Active"}
    limited = problem_of(ds.client.put(url), 429)
    assert "2 access keys" in limited["detail"]
    assert ds.client.get(url).json()[user["user"]]["keys"] == {first: "Inactive", second: "Active"}  # unchanged
    assert ds.client.delete(url).status_code == 200
    problem_of(ds.client.get(url), 404)
    problem_of(ds.client.delete(url), 404)
    problem_of(ds.client.put(url), 404)
    with pytest.raises(ClientError):
        ds.iam.get_group(GroupName=user["group"])


# -- instances ------------------------------------------------------------------------------------------------

def run_instance() -> str:
    """An EC2 instance in moto (describe_images would take seconds: moto loads its AMI list first)."""
    found = boto3.client("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    return str(found["Instances"][0]["InstanceId"])


def test_instance_grant_then_revoke_leaves_no_role_or_profile(ds: DS) -> None:
    made = ds.create()
    other = ds.create({**BODY, "name": "other"})
    url = f"{ds.base}/{made['id']}/instances"
    instance = run_instance()
    role = f"instanceRole_{instance}"
    assert ds.client.get(url).json() == {"id": made["id"], "access": {}}
    granted = ds.client.post(url, json={"instance_id": instance})
    assert granted.status_code == 200, granted.text
    assert granted.json() == {"id": made["id"], "access": {instance: role}}
    assert ds.client.get(url).json()["access"] == {instance: role}
    ec2 = boto3.client("ec2")
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance]}])["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in associations] == [role]
    # a second dataset on the same instance shares the role; revoking one keeps it for the other
    assert ds.client.post(f"{ds.base}/{other['id']}/instances", json={"instance_id": instance}).status_code == 200
    assert ds.client.delete(f"{url}/{instance}").status_code == 204
    assert ds.client.get(url).json()["access"] == {}
    assert ds.iam.get_role(RoleName=role)
    assert ds.client.delete(f"{ds.base}/{other['id']}/instances/{instance}").status_code == 204
    with pytest.raises(ClientError):
        ds.iam.get_role(RoleName=role)
    with pytest.raises(ClientError):
        ds.iam.get_instance_profile(InstanceProfileName=role)
    assert not [a for a in ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance]}])["IamInstanceProfileAssociations"]
        if a["State"] in ("associating", "associated")]
    problem_of(ds.client.delete(f"{url}/{instance}"), 400)  # no access any more


def test_instance_requests_that_cannot_work(ds: DS) -> None:
    made = ds.create()
    url = f"{ds.base}/{made['id']}/instances"
    assert problem_of(ds.client.post(url, json={}), 400)["errors"][0]["pointer"] == "/instance_id"
    problem_of(ds.client.post(url, json={"instance_id": "i-0123456789abcdef0"}), 400)  # no such instance
    problem_of(ds.client.post(f"{ds.base}/{uuid.uuid4()}/instances", json={"instance_id": run_instance()}), 404)


# -- logs -----------------------------------------------------------------------------------------------------

def test_logs_come_from_cloudwatch_and_survive_without_it(ds: DS) -> None:
    made = ds.create()
    url = f"{ds.base}/{made['id']}"
    ds.client.put(url, json={"metadata": {"description": "d"}}, headers={"X-Forwarded-User": "awong"})
    ds.client.patch(url, headers={"X-Forwarded-User": "me"})
    expected = [f"Created dataset {made['id']} (CreatedBy: drzoidberg)",
                f"Updated metadata for dataset {made['id']} (ModifiedBy: awong)",
                f"Finalized original dataset {made['id']} (ModifiedBy: me)"]
    lines = ds.client.get(f"{url}/logs").json()
    assert [line.split(" - ", 1)[1] for line in lines] == expected
    assert all(len(line.split(" - ", 1)[0]) == len("11/19/2020, 17:07:28") for line in lines)
    events = boto3.client("logs").get_log_events(logGroupName="/spinup/localdev/grp", logStreamName=made["id"],
                                                 startFromHead=True)["events"]
    assert [e["message"] for e in events] == expected
    boto3.client("logs").delete_log_group(logGroupName="/spinup/localdev/grp")
    assert [line.split(" - ", 1)[1] for line in ds.client.get(f"{url}/logs").json()] == expected


# -- data products --------------------------------------------------------------------------------------------

def test_dataset_sources_name_registered_datasets_and_keep_them(ds: DS) -> None:
    made = ds.create()
    other = ds.create({**BODY, "name": "by-name-only"})
    assert ds.client.put("/data-products/dp", json={"owner": "ROCKET"}).status_code == 201
    sources = "/data-products/dp/sources"
    unknown = ds.client.post(sources, json={"sourceType": "DATASET", "sourceName": "s", "datasetName": "nope"})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["pointer"] == "/datasetName"
    unnamed = ds.client.post(sources, json={"sourceType": "DATASET", "sourceName": "s"})
    assert unnamed.status_code == 400 and unnamed.json()["errors"][0]["pointer"] == "/datasetName"
    assert ds.client.post(sources, json={"sourceType": "KAFKA", "sourceName": "k"}).status_code == 201  # unchecked
    by_id = {"sourceType": "DATASET", "sourceName": "by_id", "datasetName": made["id"]}
    assert ds.client.post(sources, json=by_id).status_code == 201
    by_name = {"sourceType": "DATASET", "sourceName": "by_name", "datasetName": "by-name-only"}
    assert ds.client.post(sources, json=by_name).status_code == 201
    page = ds.client.get("/data-products/dp").json()
    assert [(d["sourceName"], d["id"]) for d in page["datasets"]] == [("by_id", made["id"]), ("by_name", other["id"])]
    assert page["datasets"][0]["data_classifications"] == ["hipaa", "pii"]
    for dataset in (made, other):
        refused = problem_of(ds.client.delete(f"{ds.base}/{dataset['id']}"), 409)
        assert refused["products"] == ["dp"] and "'dp'" not in refused["detail"] and "dp" in refused["detail"]
    assert ds.client.get(f"{ds.base}/{made['id']}").status_code == 200


def test_without_datasets_configured_a_dataset_source_stays_a_name(
        make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATASETS_CONFIG", raising=False)
    client = make_client()
    assert client.put("/data-products/dp", json={"owner": "ROCKET"}).status_code == 201
    source = {"sourceType": "DATASET", "sourceName": "s", "datasetName": "anything"}
    assert client.post("/data-products/dp/sources", json=source).status_code == 201
    assert "datasets" not in client.get("/data-products/dp").json()


def test_sensitive_fields_fed_from_a_pii_dataset_are_warned_about(ds: DS, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.datasets.links import sensitive_field_warnings

    monkeypatch.setenv("DRG_TEST_DS_KEY", base64.b64encode(b"k" * 32).decode())
    patient = {"name": "patient", "tableSchema": {"primaryKey": "id", "fields": [
        {"name": "id", "type": "integer"}, {"name": "email", "type": "string"},
        {"name": "birth_date", "type": "string"}, {"name": "ssn", "type": "string", "protected": True},
        {"name": "colour", "type": "string"}]},
        "encryptionSchema": {"ssn": {"type": "AES_256_GCM", "key": "DRG_TEST_DS_KEY"}}}
    payload = {"data_resource_schema": {"name": "ds test", "data": {"dataDictionary": [patient]},
                                        "api": {"apiSpec": {"paths": {"/patient": {"get": {}}}}}}}
    generated = ds.client.post("/generator", json=payload)
    assert generated.status_code in (200, 201), generated.text
    runtime = ds.client.app.runtime
    assert sensitive_field_warnings(runtime.engine, runtime.current.generation) == []  # no product yet
    plain = ds.create({**BODY, "name": "plain", "metadata": {"data_classifications": ["public"]}})
    assert ds.client.put("/data-products/dp", json={"owner": "ROCKET"}).status_code == 201
    assert ds.client.post("/data-products/dp/servings", json={"servingName": "web", "servingType": "api",
                                                              "url": "/patient"}).status_code == 201
    assert ds.client.post("/data-products/dp/sources", json={"sourceType": "DATASET", "sourceName": "a",
                                                             "datasetName": plain["id"]}).status_code == 201
    assert sensitive_field_warnings(runtime.engine, runtime.current.generation) == []  # not pii/hipaa
    ds.create()  # awesome-dataset-of-stuff: hipaa, pii
    assert ds.client.post("/data-products/dp/sources", json={"sourceType": "DATASET", "sourceName": "b",
                                                             "datasetName": BODY["name"]}).status_code == 201
    warnings = sensitive_field_warnings(runtime.engine, runtime.current.generation)
    assert len(warnings) == 1
    assert "'patient'" in warnings[0] and "hipaa, pii" in warnings[0] and "email, birth_date" in warnings[0]
    assert "ssn" not in warnings[0]  # protected
    again = ds.client.post("/generator", json={**payload, "data_resource_schema": {
        **payload["data_resource_schema"], "name": "ds test, again"}})  # a new digest: the answer warns
    assert again.status_code in (200, 201) and warnings[0] in again.json()["warnings"], again.text
