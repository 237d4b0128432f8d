"""Checks on a serving's body that a JSON Schema cannot state: what each serving type must name, and that an
api serving names a resource of the current generation (its url `/patient` and/or its `schemaId` `patient`).
Every problem is a 400 whose `errors` point at the field."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from generator.errors import Issue, bad_request
from generator.products.catalog import api_resource


def check_serving(body: Mapping[str, Any], resources: Collection[str]) -> str | None:
    """The generated resource an api serving names (None for other types); raises a 400 otherwise."""
    kind = body["servingType"]
    issues: list[Issue] = []
    if kind == "api":
        named = _api_names(body)
        if not issues and not named:
            issues.append(Issue("/url", "an api serving names a generated resource by url (/patient) or schemaId"))
        for pointer, name in named.items():
            if name not in resources:
                listed = ", ".join(sorted(resources)) or "none: nothing is generated yet"
                issues.append(Issue(pointer, f"{name!r} is not a resource of the current generation ({listed})"))
        if not issues and len(set(named.values())) > 1:
            issues.append(Issue("/schemaId", "url and schemaId name different resources"))
    elif kind == "S3":
        if not str(body.get("url", "")).startswith("s3://") or len(str(body["url"])) <= len("s3://"):
            issues.append(Issue("/url", "an S3 serving needs url s3://<bucket>/<prefix>"))
    elif not body.get("url") and not body.get("topic") and not body.get("address"):
        issues.append(Issue("/url", f"a {kind} serving needs url, address or topic"))
    if kind != "api" and not body.get("schemaUrl") and not body.get("schemaId"):
        issues.append(Issue("/schemaUrl", "a serving needs schemaUrl or schemaId"))
    if body.get("tenancyColumns") and body.get("accessRestriction", "NONE") == "NONE":
        issues.append(Issue("/tenancyColumns", "only servings restricted to ORGANIZATION or TENANT have tenancy"))
    if issues:
        raise bad_request("The serving is invalid", issues)
    return next(iter(_api_names(body).values()), None) if kind == "api" else None


def _api_names(body: Mapping[str, Any]) -> dict[str, str]:
    named = {}
    if body.get("url"):
        found = api_resource({"url": body["url"]})
        if found:
            named["/url"] = found
    if body.get("schemaId"):
        named["/schemaId"] = str(body["schemaId"]).lower()
    return named
