"""S3: the dataset repositories (one bucket each, `dataset-<account>-<id>`), their attachments under
`_attachments/`, and the metadata repository (one JSON object per dataset, `<account>/<group>/<id>.json`).

Functions take boto3 clients and raise botocore errors; the caller turns them into problems."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from generator.datasets.aws import code_of

ATTACHMENTS = "_attachments/"
PRESIGNED_SECONDS = 300
MISSING = frozenset({"NoSuchBucket", "NoSuchKey", "404", "NotFound"})


def bucket_name(account: str, dataset_id: str) -> str:
    return f"dataset-{account}-{dataset_id}"


def metadata_key(account: str, group: str, dataset_id: str) -> str:
    return f"{account}/{group}/{dataset_id}.json"


def create_bucket(s3: Any, bucket: str, region: str) -> None:
    """A name already taken raises (BucketAlreadyExists, BucketAlreadyOwnedByYou)."""
    options: dict[str, Any] = {}
    if region and region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **options)


def configure_bucket(s3: Any, bucket: str, tags: list[dict[str, str]]) -> None:
    """Private (public access blocked), encrypted at rest, tagged."""
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": t["key"], "Value": t["value"]} for t in tags]})


def tags_of(s3: Any, bucket: str) -> list[dict[str, str]]:
    try:
        found = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as error:
        if code_of(error) == "NoSuchTagSet":
            return []
        raise
    return [{"key": t["Key"], "value": t["Value"]} for t in found]


def data_keys(s3: Any, bucket: str, limit: int = 1) -> list[str]:
    """Up to `limit` keys of the dataset's data (attachments are not data)."""
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [o["Key"] for o in page.get("Contents", []) if not o["Key"].startswith(ATTACHMENTS)]
        if len(found) >= limit:
            break
    return found[:limit]


def delete_bucket(s3: Any, bucket: str) -> None:
    """Delete the attachments, then the bucket (S3 refuses a bucket with data in it); absent is fine."""
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=ATTACHMENTS):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
    except ClientError as error:
        if code_of(error) not in MISSING:
            raise


def put_metadata(s3: Any, bucket: str, key: str, metadata: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(metadata, sort_keys=True).encode(),
                  ContentType="application/json")


def get_metadata(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if code_of(error) in ("NoSuchKey", "404"):
            return None
        raise
    found = json.loads(body)
    return found if isinstance(found, dict) else None


def delete_metadata(s3: Any, bucket: str, key: str) -> None:
    s3.delete_object(Bucket=bucket, Key=key)


def put_attachment(s3: Any, bucket: str, name: str, body: Any, content_type: str) -> None:
    s3.upload_fileobj(body, bucket, ATTACHMENTS + name,
                      ExtraArgs={"ContentType": content_type or "application/octet-stream"})


def attachments(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """{Name, Modified, Size, URL}: the URL is a presigned GET valid for five minutes."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=ATTACHMENTS):
        for item in page.get("Contents", []):
            url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": item["Key"]},
                                            ExpiresIn=PRESIGNED_SECONDS)
            found.append({"Name": item["Key"][len(ATTACHMENTS):],
                          "Modified": item["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "Size": item["Size"], "URL": url})
    return found


def delete_attachment(s3: Any, bucket: str, name: str) -> None:
    s3.delete_object(Bucket=bucket, Key=ATTACHMENTS + name)  # S3 answers 204 for an absent key too
