"""Request bodies checked by hand (pure: no AWS, no database): each mistake names its field by JSON pointer.

Server-set metadata (`id`, `name`, `created_at`, `modified_at`, `data_storage`, `derivative`, `finalized_*`)
is ignored when a client sends it, so a client may send back what it read; `created_by` and `modified_by` are
taken from the create body, as in the seed."""

from __future__ import annotations

import re
from typing import Any

from generator.errors import Issue, bad_request
from generator.pointers import child

TEXT_FIELDS = ("description", "created_by", "data_format", "dua_url", "proctor_response_url", "modified_by")
LIST_FIELDS = ("data_classifications", "source_ids")
SERVER_FIELDS = frozenset({"id", "name", "created_at", "modified_at", "data_storage", "derivative",
                           "finalized_at", "finalized_by"})
NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
TAG_KEY = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
RESERVED_TAGS = frozenset({"spinup:org", "ID", "Name"})
ATTACHMENT = re.compile(r"[^/\\\x00-\x1f\x7f]{1,255}")


def creation(body: Any) -> tuple[str, bool, list[dict[str, str]], dict[str, Any]]:
    """(name, derivative, tags, metadata) of a create body; 400 naming every bad field."""
    issues: list[Issue] = []
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object", [Issue("", "must be an object")])
    for key in sorted(set(body) - {"name", "type", "derivative", "tags", "metadata"}):
        issues.append(Issue(child("", key), "is not a dataset property"))
    name = body.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name) or name.strip() != name:
        issues.append(Issue("/name", "is required: 1-200 characters without control characters or outer spaces"))
    if body.get("type", "s3") != "s3":
        issues.append(Issue("/type", "must be 's3', the only repository type"))
    derivative = body.get("derivative", False)
    if not isinstance(derivative, bool):
        issues.append(Issue("/derivative", "must be true or false"))
    tags = _tags(body.get("tags", []), issues)
    metadata = _metadata(body.get("metadata", {}), "/metadata", issues)
    if issues:
        raise bad_request("The dataset cannot be created as sent", issues)
    return str(name), bool(derivative), tags, metadata


def update(body: Any) -> dict[str, Any]:
    """The metadata fields a PUT changes."""
    issues: list[Issue] = []
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
        raise bad_request("Send {\"metadata\": {...}} with the fields to change",
                          [Issue("/metadata", "is required: an object")])
    for key in sorted(set(body) - {"metadata", "id", "repository"}):
        issues.append(Issue(child("", key), "is not a dataset property"))
    changes = _metadata(body["metadata"], "/metadata", issues)
    if issues:
        raise bad_request("The metadata cannot be changed as sent", issues)
    return changes


def attachment_name(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not ATTACHMENT.fullmatch(value) or value in (".", ".."):
        raise bad_request("Name the attachment", [Issue(pointer, "is required: 1-255 characters, no '/', '\\' or "
                                                                 "control characters")])
    return value


def _tags(value: Any, issues: list[Issue]) -> list[dict[str, str]]:
    if not isinstance(value, list):
        issues.append(Issue("/tags", "must be a list of {key, value}"))
        return []
    tags = []
    for i, tag in enumerate(value):
        if not isinstance(tag, dict) or set(tag) - {"key", "value"}:
            issues.append(Issue(f"/tags/{i}", "must be {key, value}"))
            continue
        key, val = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not TAG_KEY.fullmatch(key):
            issues.append(Issue(f"/tags/{i}/key", "must be 1-128 characters"))
        elif key in RESERVED_TAGS or key.startswith("aws:"):
            issues.append(Issue(f"/tags/{i}/key", f"{key!r} is set by the service"))
        elif not isinstance(val, str) or len(val) > 256:
            issues.append(Issue(f"/tags/{i}/value", "must be a string of at most 256 characters"))
        else:
            tags.append({"key": key, "value": val})
    if len(tags) > 40:
        issues.append(Issue("/tags", "at most 40 tags (S3 allows 50, the service sets 3)"))
    return tags


def _metadata(value: Any, pointer: str, issues: list[Issue]) -> dict[str, Any]:
    if not isinstance(value, dict):
        issues.append(Issue(pointer, "must be an object"))
        return {}
    found: dict[str, Any] = {}
    for key, item in value.items():
        where = child(pointer, key)
        if key in SERVER_FIELDS:
            continue
        if key in TEXT_FIELDS:
            if not isinstance(item, str) or len(item) > 4000:
                issues.append(Issue(where, "must be a string of at most 4000 characters"))
            else:
                found[key] = item
        elif key in LIST_FIELDS:
            if not isinstance(item, list) or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in item):
                issues.append(Issue(where, "must be a list of strings"))
            else:
                found[key] = list(dict.fromkeys(item))
        else:
            issues.append(Issue(where, "is not a metadata field"))
    return found
