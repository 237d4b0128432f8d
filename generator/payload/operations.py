"""The operation registry: every kind of operation the service can serve, in one table.

The whitelist parser, the served document, the route table and the handlers all read this table, so a new
operation kind is one row here (and its handler), not edits in six places. Each row says which path
shape and method whitelist it, where it is served, and its default summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Shape = Literal["collection", "query", "item", "related", "related_item"]
OperationKind = Literal["list", "create", "query", "read", "replace", "update", "delete",
                        "related_list", "related_replace", "related_add", "related_remove"]  # fmt: skip


@dataclass(frozen=True)
class OperationInfo:
    kind: OperationKind
    shape: Shape
    method: str
    summary: str  # `{t}` is the table, `{c}` the related table
    reads: bool  # no effect on data: may run on a read-only connection, answers HEAD


REGISTRY: tuple[OperationInfo, ...] = (
    OperationInfo("list", "collection", "get", "List {t} rows (filters, order, select, embeds, paging)", True),
    OperationInfo("create", "collection", "post", "Create one {t} row, or several from an array", False),
    OperationInfo("query", "query", "get", "Find {t} rows (exact values or operators)", True),
    OperationInfo("query", "query", "post", "Find {t} rows matching a query body", True),
    OperationInfo("read", "item", "get", "Get one {t} row by primary key", True),
    OperationInfo("replace", "item", "put", "Replace (or create) the {t} row at this key", False),
    OperationInfo("update", "item", "patch", "Update some fields of one {t} row", False),
    OperationInfo("delete", "item", "delete", "Delete one {t} row", False),
    OperationInfo("related_list", "related", "get", "List the {c} rows linked to one {t} row", True),
    OperationInfo("related_replace", "related", "put", "Replace the set of {c} rows linked to one {t} row", False),
    OperationInfo("related_add", "related", "patch", "Link more {c} rows to one {t} row", False),
    OperationInfo("related_remove", "related_item", "delete", "Unlink one {c} row from one {t} row", False),
)
BY_SHAPE_AND_METHOD = {(info.shape, info.method): info for info in REGISTRY}


def lookup(shape: Shape, method: str) -> OperationInfo | None:
    return BY_SHAPE_AND_METHOD.get((shape, method))


def info(kind: str, method: str) -> OperationInfo:
    return next(i for i in REGISTRY if i.kind == kind and i.method == method)


def served_path(shape: Shape, table: str, related: str | None = None) -> str:
    """Where an operation is served. Keys are always `{id}` (and `{child_id}`), whatever the payload wrote."""
    match shape:
        case "collection":
            return f"/{table}"
        case "query":
            return f"/{table}/query"
        case "item":
            return f"/{table}/{{id}}"
        case "related":
            return f"/{table}/{{id}}/{related}"
    return f"/{table}/{{id}}/{related}/{{child_id}}"
