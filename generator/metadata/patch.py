"""Generic JSON Patch (RFC 6902, through the `jsonpatch` library) extended with keyed array paths, as in
DataHub's OpenAPI v3: `arrayPrimaryKeys` names, per array, the fields that identify its elements
(`{"tags": ["attribution␟source", "tag"]}`; `␟` (U+241F) separates the members of a nested key field).

Before the operations run, each keyed array (an array of objects whose member name, or slash-separated
path from the aspect's root, is a key of `arrayPrimaryKeys`) becomes a map, one level per key field, so
`/tags/urn:li:platformResource:source1/urn:li:tag:tag1` addresses the element whose `attribution.source` and
`tag` are those values. `add` replaces a matching element or appends a new one (missing levels, and a
missing array, are created); `remove` deletes the matching elements only (a path naming only the first key
fields removes every element under them; removing an absent element changes nothing). The maps become arrays
again afterwards, in their original order with new elements last. Elements with equal keys count as one.

All operations apply to a copy: the first that fails raises `PatchError` naming it (`/patch/<i>`) and
nothing is written. Pure: no SQLAlchemy, no HTTP."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import jsonpatch
import jsonpointer

from generator.errors import Issue

SEPARATOR = "␟"


class PatchError(ValueError):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(f"{i.pointer}: {i.message}" for i in issues))
        self.issues = issues


class KeyedMap(dict):  # type: ignore[type-arg]
    """A keyed array turned into a map; `depth` key levels remain below this one."""

    def __init__(self, *args: Any, depth: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.depth = depth


def check_keys(keys: object) -> dict[str, tuple[tuple[str, ...], ...]]:
    """`arrayPrimaryKeys` as {array: (key field path, ...)}; raises `PatchError` when malformed."""
    if keys is None:
        return {}
    if not isinstance(keys, Mapping):
        raise PatchError([Issue("/arrayPrimaryKeys", "must be an object of arrays of key field names")])
    checked = {}
    for name, fields in keys.items():
        if not (isinstance(fields, list) and fields and all(isinstance(f, str) and f for f in fields)):
            raise PatchError([Issue(f"/arrayPrimaryKeys/{jsonpointer.escape(name)}",
                                    "must be a non-empty array of key field names")])
        checked[name.strip("/")] = tuple(tuple(f.split(SEPARATOR)) for f in fields)
    return checked


def apply_patch(value: Mapping[str, Any], operations: object, keys: Mapping[str, Sequence[Sequence[str]]]
                ) -> dict[str, Any]:
    """The patched copy of `value`; raises `PatchError` naming the first operation that fails."""
    if not isinstance(operations, list) or not operations:
        raise PatchError([Issue("/patch", "must be a non-empty array of JSON Patch operations")])
    document = _to_maps(copy.deepcopy(dict(value)), keys, ())
    for index, operation in enumerate(operations):
        where = f"/patch/{index}"
        try:
            patch = jsonpatch.JsonPatch([operation])
            if isinstance(operation, dict) and isinstance(operation.get("path"), str):
                if not _prepare(document, operation, keys):
                    continue  # removing a keyed element that is not there: nothing to do
            document = patch.apply(document, in_place=True)
        except jsonpatch.InvalidJsonPatch as exc:
            raise PatchError([Issue(where, f"is not a JSON Patch operation: {exc}")]) from None
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
            path = operation.get("path") if isinstance(operation, dict) else None
            raise PatchError([Issue(where, f"cannot apply to path {path!r} of the aspect: {exc}")]) from None
        except jsonpatch.JsonPatchTestFailed as exc:
            raise PatchError([Issue(where, f"test failed: {exc}")]) from None
        except (TypeError, KeyError, ValueError) as exc:
            raise PatchError([Issue(where, f"is not a JSON Patch operation: {exc}")]) from None
    result = _to_arrays(document)
    if not isinstance(result, dict):
        raise PatchError([Issue("/patch", "an aspect must stay a JSON object")])
    return result


def _key_of(element: Mapping[str, Any], fields: Sequence[Sequence[str]]) -> list[str]:
    values = []
    for path in fields:
        found: Any = element
        for part in path:
            found = found.get(part) if isinstance(found, Mapping) else None
        values.append("" if found is None else str(found))
    return values


def _keys_for(keys: Mapping[str, Sequence[Sequence[str]]], path: tuple[str, ...]) -> Sequence[Sequence[str]] | None:
    if not path:
        return None
    return keys.get("/".join(path)) or keys.get(path[-1])


def _to_maps(node: Any, keys: Mapping[str, Sequence[Sequence[str]]], path: tuple[str, ...]) -> Any:
    """Turn keyed arrays into `KeyedMap`s, everywhere below `node` (`path`: member names from the root)."""
    if isinstance(node, dict):
        return {k: _to_maps(v, keys, (*path, k)) for k, v in node.items()}
    if isinstance(node, list):
        fields = _keys_for(keys, path)
        if fields is None or not all(isinstance(e, dict) for e in node):
            return [_to_maps(e, keys, path) for e in node]
        root = KeyedMap(depth=len(fields))
        for element in node:
            level = root
            key = _key_of(element, fields)
            for depth, part in enumerate(key[:-1]):
                level = level.setdefault(part, KeyedMap(depth=len(fields) - depth - 1))
            level[key[-1]] = _to_maps(element, keys, path)
        return root
    return node


def _to_arrays(node: Any) -> Any:
    if isinstance(node, KeyedMap):
        return [_to_arrays(e) for e in _leaves(node, node.depth)]
    if isinstance(node, dict):
        return {k: _to_arrays(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_arrays(e) for e in node]
    return node


def _leaves(node: Any, depth: int) -> list[Any]:
    if depth <= 1 or not isinstance(node, dict):
        return list(node.values()) if isinstance(node, dict) else [node]
    return [leaf for child in node.values() for leaf in _leaves(child, depth - 1)]


def _prepare(document: Any, operation: Mapping[str, Any], keys: Mapping[str, Sequence[Sequence[str]]]) -> bool:
    """Create the missing levels of a keyed `add` (the array itself included); False for a keyed `remove`
    of an absent element, which changes nothing."""
    tokens = jsonpointer.JsonPointer(operation["path"]).parts
    op = operation.get("op")
    node, path = document, ()
    for token in tokens[:-1]:
        if isinstance(node, KeyedMap):
            if token not in node:
                if op == "remove":
                    return False
                if op != "add" or node.depth <= 1:
                    return True  # the library reports the missing path
                node[token] = KeyedMap(depth=node.depth - 1)
        elif isinstance(node, dict):
            path = (*path, token)
            fields = _keys_for(keys, path)
            if token not in node and op == "add" and fields is not None:
                node[token] = KeyedMap(depth=len(fields))
            elif token not in node:
                return True
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
            continue
        else:
            return True
        node = node[token]
    return not (isinstance(node, KeyedMap) and op == "remove" and tokens and tokens[-1] not in node)
