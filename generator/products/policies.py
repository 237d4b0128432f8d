"""IAM policy documents for a team, in the seed's pattern ("Making a multi tenant data product").

For each S3 serving granted to the team, `s3:GetObject*` on the serving's prefix: unconditioned for
`NONE`; for `ORGANIZATION`, only objects whose `org` tag is among the principal's `orgs` tag; for `TENANT`,
two statements (tenant id, or tenant group) each also conditioned on the org. Tag names follow the serving's
tenancy columns (`org`, `tenantId`, `tenantGroupId` by default; principal tags pluralised: `orgs`,
`tenantIds`, `tenantGroupIds`). `s3:ListBucket` per bucket: restricted servings listed per org under
`<prefix>*/org=<ORG>/*` for the product's `organizations`, unrestricted ones under `<prefix>*`.
`kms:Decrypt` on the product's `kmsKeyArn` when it has one. The owner team also gets read and write on the
product's own prefix of each bucket, as in "Getting write access to my data product".

Servings that are not in S3 imply no IAM statements (access to them is granted through the API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.products.catalog import tenancy_of

VERSION = "2012-10-17"
OWNER_ACTIONS = ["s3:AbortMultipartUpload", "s3:DeleteObject*", "s3:GetObject*", "s3:ListBucket",
                 "s3:ListMultipartUploadParts", "s3:PutObject*"]


def split_s3(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → (`bucket`, `some/prefix`)."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def _tag_condition(principal_tag: str, object_tag: str) -> dict[str, str]:
    return {f"aws:PrincipalTag/{principal_tag}": f"*:${{s3:ExistingObjectTag/{object_tag}}}:*"}


def _read_statements(bucket: str, prefix: str, serving: Mapping[str, Any]) -> list[dict[str, Any]]:
    resource = [f"arn:aws:s3:::{bucket}/{prefix}/*"]
    tenancy = tenancy_of(serving)
    if tenancy is None:
        return [{"Action": "s3:GetObject*", "Resource": resource, "Effect": "Allow"}]
    org = _tag_condition("orgs", tenancy.org)
    if serving.get("accessRestriction") == "ORGANIZATION":
        conditions = [org]
    else:
        conditions = [{**org, **_tag_condition(f"{tenancy.tenant}s", tenancy.tenant)},
                      {**org, **_tag_condition(f"{tenancy.tenant_group}s", tenancy.tenant_group)}]
    return [{"Action": "s3:GetObject*", "Resource": resource, "Effect": "Allow",
             "Condition": {"StringLike": condition}} for condition in conditions]


def _list_statements(bucket: str, restricted: list[tuple[str, str]], open_prefixes: list[str],
                     organizations: list[str]) -> list[dict[str, Any]]:
    arn = f"arn:aws:s3:::{bucket}"
    found = []
    if open_prefixes:
        found.append({"Action": "s3:ListBucket", "Resource": arn, "Effect": "Allow",
                      "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in open_prefixes]}}})
    for org in organizations:
        if restricted:
            found.append({"Action": "s3:ListBucket", "Resource": arn, "Effect": "Allow", "Condition": {
                "StringLike": {"s3:prefix": [f"{p}*/{column}={org}/*" for p, column in restricted],
                               "aws:PrincipalTag/orgs": f"*:{org}:*"}}})
    return found


def team_policy(product: Mapping[str, Any], team: str) -> dict[str, Any]:
    """The policy document `product` (the seed's DataProduct object from `store.view`) implies for `team`."""
    statements: list[dict[str, Any]] = []
    granted = set(product["access"].get(team, ()))
    by_bucket: dict[str, tuple[list[tuple[str, str]], list[str]]] = {}
    owned_buckets: list[str] = []
    for name, serving in product["servings"].items():
        if serving.get("servingType") != "S3" or not str(serving.get("url", "")).startswith("s3://"):
            continue
        bucket, prefix = split_s3(serving["url"])
        owned_buckets.append(bucket)
        if name not in granted or team == product["owner"]:
            continue
        statements += _read_statements(bucket, prefix, serving)
        restricted, open_prefixes = by_bucket.setdefault(bucket, ([], []))
        tenancy = tenancy_of(serving)
        if tenancy is None:
            open_prefixes.append(prefix)
        else:
            restricted.append((prefix, tenancy.org))
    for bucket, (restricted, open_prefixes) in by_bucket.items():
        statements += _list_statements(bucket, restricted, open_prefixes, list(product.get("organizations") or []))
    if team == product["owner"]:
        statements += _owner_statements(product, sorted(set(owned_buckets)))
    key = product.get("kmsKeyArn")
    if key and statements:
        statements.append({"Action": "kms:Decrypt", "Effect": "Allow", "Resource": key})
    return {"Version": VERSION, "Statement": statements}


def _owner_statements(product: Mapping[str, Any], buckets: list[str]) -> list[dict[str, Any]]:
    name = product["dataProductName"]
    return [{"Effect": "Allow", "Action": OWNER_ACTIONS,
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{name}/*"],
             "Condition": {"StringLikeIfExists": {"s3:prefix": [f"{name}/*"]}}} for bucket in buckets]
