"""`api.apiSpec.paths` → whitelisted operations.

A path item's method keys enable those operations, even as empty `{}` markers. Path shapes:
`/<t>`, `/<t>/query`, `/<t>/{pk}`, `/<parent>/{pk}/<child>` and `/<parent>/{pk}/<child>/{child_pk}`.
Table names match case-insensitively (the reference lowercases them)."""

from __future__ import annotations

import re
from typing import Any

from generator.errors import Issue
from generator.payload.operations import Shape, lookup
from generator.payload.specs import OperationSpec
from generator.pointers import child

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TEMPLATE = re.compile(r"^\{[^{}/]+\}$")


def _shape(segments: list[str]) -> Shape | None:
    templated = [bool(TEMPLATE.match(s)) for s in segments]
    match len(segments), templated:
        case 1, [False]:
            return "collection"
        case 2, [False, False] if segments[1] == "query":
            return "query"
        case 2, [False, True]:
            return "item"
        case 3, [False, True, False]:
            return "related"
        case 4, [False, True, False, True]:
            return "related_item"
    return None


def parse_whitelist(paths: Any, tables: set[str], base: str) -> tuple[list[OperationSpec], list[Issue]]:
    """Operations for every whitelisted (path, method), and an issue for each one we cannot serve."""
    if not isinstance(paths, dict):
        return [], [Issue(base, "paths must be an object mapping paths to operations")] if paths else []
    operations: list[OperationSpec] = []
    problems: list[Issue] = []
    for path, item in paths.items():
        where = child(base, path)
        segments = [s for s in str(path).strip("/").split("/") if s]
        shape = _shape(segments)
        if shape is None:
            problems.append(Issue(where, f"path {path!r} has no supported shape (/<table>, /<table>/{{id}}, "
                                         "/<table>/query, /<parent>/{id}/<child>)"))
            continue
        names = [s.lower() for i, s in enumerate(segments) if i in (0, 2)]
        unknown = [n for n in names if n not in tables]
        if unknown:
            problems.append(Issue(where, f"path {path!r} names no declared table: {', '.join(unknown)}"))
            continue
        if not isinstance(item, dict):
            problems.append(Issue(where, "a path item must be an object of operations"))
            continue
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue  # parameters, summary, servers ... belong to the path item, not the whitelist
            known = lookup(shape, method)
            if known is None:
                problems.append(Issue(f"{where}/{method}", f"{method.upper()} is not an operation of {path!r}"))
                continue
            words = operation if isinstance(operation, dict) else {}
            operations.append(OperationSpec(
                resource=names[0], kind=known.kind, method=method, path=str(path),
                summary=words.get("summary"), description=words.get("description"),
                related=names[1] if len(names) > 1 else None,
            ))  # fmt: skip
    return operations, problems
