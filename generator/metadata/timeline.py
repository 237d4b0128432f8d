"""The timeline: change transactions between consecutive versions of an entity's aspects, as DataHub's
`/openapi/v2/timeline/v1/{urn}` returns them. Pure: it takes `AspectRecord`s, oldest first.

Each aspect version is one transaction (its time, in epoch milliseconds, and its actor), compared with the
version before it (the first with nothing): fields added, removed or retyped (TECHNICAL_SCHEMA), tags added
or removed (TAG), owners added or removed (OWNER), descriptions added, changed or removed (DOCUMENTATION).
`semVer` follows the entity's schema as DataHub's does: a removed or retyped field moves the major version,
an added one the minor, any other change the patch; an aspect's first version moves nothing (0.0.0 at first)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from generator.metadata.store import AspectRecord
from generator.metadata.urns import field_urn

CATEGORIES = ("TECHNICAL_SCHEMA", "DOCUMENTATION", "TAG", "OWNER")
DESCRIBED = ("datasetProperties", "editableDatasetProperties", "dataProductProperties", "corpGroupInfo",
             "dataJobInfo")
Event = dict[str, str]


def timeline(records: Iterable[AspectRecord], categories: frozenset[str], start: int | None,
             end: int | None) -> list[dict[str, Any]]:
    previous: dict[str, Mapping[str, Any]] = {}
    major = minor = patch = 0
    transactions = []
    for record in records:
        events = list(_changes(record.urn, record.aspect, previous.get(record.aspect, {}), record.value))
        previous[record.aspect] = record.value
        if not events:
            continue
        if record.version > 1:  # an aspect's first version establishes it; later ones change it
            if any(e["category"] == "TECHNICAL_SCHEMA" and e["operation"] in ("REMOVE", "MODIFY") for e in events):
                major, minor, patch = major + 1, 0, 0
            elif any(e["category"] == "TECHNICAL_SCHEMA" for e in events):
                minor, patch = minor + 1, 0
            else:
                patch += 1
        transactions.append({"timestamp": record.millis, "actor": record.actor, "semVer": f"{major}.{minor}.{patch}",
                             "versionStamp": f"{record.aspect}:{record.version}", "changeEvents": events})
    return [t | {"changeEvents": kept} for t in transactions
            if (start is None or t["timestamp"] >= start) and (end is None or t["timestamp"] <= end)
            and (kept := [e for e in t["changeEvents"] if e["category"] in categories])]


def _changes(urn: str, aspect: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[Event]:
    if aspect == "schemaMetadata":
        yield from _schema(urn, before, after)
    elif aspect == "globalTags":
        yield from _members(urn, "TAG", "tag", _tags(before), _tags(after))
    elif aspect == "ownership":
        yield from _members(urn, "OWNER", "owner", _owners(before), _owners(after))
    if aspect in DESCRIBED:
        yield from _description(urn, before.get("description"), after.get("description"))


def _event(urn: str, category: str, operation: str, modifier: str, description: str) -> Event:
    return {"category": category, "operation": operation, "modifier": modifier, "entityUrn": urn,
            "description": description}


def _items(value: Mapping[str, Any], key: str) -> list[Any]:
    """`value[key]` if it is a list, else nothing: users write aspects of any shape (`tags: 1` is stored)."""
    found = value.get(key)
    return found if isinstance(found, list) else []


def _member(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else None


def _fields(value: Mapping[str, Any]) -> dict[str, str]:
    found = {}
    for field in _items(value, "fields"):
        if isinstance(_member(field, "fieldPath"), str):
            kind = _member(_member(_member(field, "type"), "type"), "__type")
            found[field["fieldPath"]] = f"{kind or ''}:{field.get('nativeDataType') or ''}"
    return found


def _schema(urn: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[Event]:
    old, new = _fields(before), _fields(after)
    for name in [n for n in new if n not in old]:
        yield _event(urn, "TECHNICAL_SCHEMA", "ADD", field_urn(urn, name),
                     f"A forwards & backwards compatible change due to the newly added field '{name}'.")
    for name in [n for n in old if n not in new]:
        yield _event(urn, "TECHNICAL_SCHEMA", "REMOVE", field_urn(urn, name),
                     f"A backwards incompatible change due to removal of field: '{name}'.")
    for name in sorted(old.keys() & new.keys()):
        if old[name] != new[name]:
            yield _event(urn, "TECHNICAL_SCHEMA", "MODIFY", field_urn(urn, name),
                         f"A backwards incompatible change due to the type of field '{name}' changing from "
                         f"{old[name].rstrip(':')} to {new[name].rstrip(':')}.")


def _tags(value: Mapping[str, Any]) -> list[str]:
    return [t["tag"] for t in _items(value, "tags") if isinstance(_member(t, "tag"), str)]


def _owners(value: Mapping[str, Any]) -> list[str]:
    return [o["owner"] for o in _items(value, "owners") if isinstance(_member(o, "owner"), str)]


def _members(urn: str, category: str, noun: str, before: list[str], after: list[str]) -> Iterator[Event]:
    for added in [m for m in dict.fromkeys(after) if m not in before]:
        yield _event(urn, category, "ADD", added, f"{noun.capitalize()} '{added}' added to entity '{urn}'.")
    for removed in [m for m in dict.fromkeys(before) if m not in after]:
        yield _event(urn, category, "REMOVE", removed, f"{noun.capitalize()} '{removed}' removed from entity '{urn}'.")


def _description(urn: str, before: Any, after: Any) -> Iterator[Event]:
    if before == after:
        return
    if not before:
        yield _event(urn, "DOCUMENTATION", "ADD", urn, f"Documentation for '{urn}' has been added: '{after}'.")
    elif not after:
        yield _event(urn, "DOCUMENTATION", "REMOVE", urn, f"Documentation for '{urn}' has been removed.")
    else:
        yield _event(urn, "DOCUMENTATION", "MODIFY", urn,
                     f"Documentation of '{urn}' has been changed from '{before}' to '{after}'.")
