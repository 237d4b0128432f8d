"""Many-to-many routes: `/<parent>/{id}/<child>` (GET, PUT, PATCH) and `/<parent>/{id}/<child>/{child_id}`
(DELETE), over the pair's association table.

GET lists the linked child rows, paged, filtered, counted and rendered (JSON or CSV) like any list of the
child (the query grammar applies to the child).
PUT replaces the set with a JSON array of child keys (`[]` clears it); PATCH adds the given keys. Links are
the association table's rows, so links written from either side read the same from both. An unknown
parent is 404; unknown child keys are a 400 naming each, and nothing changes. However many keys a PUT
carries, it runs a constant number of statements: one existence check, one delete, one insert batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, insert, select, tuple_
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from generator.api.bodies import read_body
from generator.api.db_errors import problem_for
from generator.api.endpoints import Preferences, ResourceEndpoints, links, query_pairs
from generator.api.execution import Executor
from generator.api.relations import Relation
from generator.api.render import CSV, JSON, content_range, csv_chunks, json_response, negotiate
from generator.errors import Issue, bad_request, not_found
from generator.payload.specs import OperationSpec


class RelatedEndpoints:
    def __init__(self, parent: ResourceEndpoints, child: ResourceEndpoints, relation: Relation,
                 executor: Executor, validator: Any) -> None:
        self.parent, self.child, self.relation, self.executor = parent, child, relation, executor
        self.validator = validator
        self.link: Table = parent.plan.table.metadata.tables[relation.through or ""]
        self.parent_columns = [self.link.c[c] for c in relation.remote]  # association columns of the parent
        self.child_columns = [self.link.c[a] for a, _ in relation.through_target]
        self.child_keys = [child.plan.table.c[k] for _, k in relation.through_target]
        self.path = f"/{parent.resource.name}/{{id}}/{child.resource.name}"

    def endpoint(self, op: OperationSpec) -> Any:
        return {"related_list": self.list_rows, "related_replace": self.replace, "related_add": self.add,
                "related_remove": self.remove}[op.kind]

    def _parent_key(self, raw: str) -> tuple[Any, ...]:
        return self.parent.keys.parse(raw)

    def _linked_to(self, parent_key: Sequence[Any]) -> Any:
        """Child rows linked to the parent: their key is in the association rows of that parent."""
        linked = select(*self.child_columns).where(
            and_(*(c == v for c, v in zip(self.parent_columns, parent_key, strict=True))))
        return tuple_(*self.child_keys).in_(linked)

    def _require_parent(self, connection: Connection, key: Sequence[Any]) -> None:
        if not self.parent.plan.keys_exist(connection, [tuple(key)]):
            raise not_found(f"No {self.parent.resource.name} row has this key")

    async def list_rows(self, request: Request, params: Sequence[str]) -> Response:
        """The linked child rows as a list of the child is served: filters, order, cursor, select, embeds,
        `Prefer: count=...` with `Content-Range`, and CSV."""
        parent_key = self._parent_key(params[0])
        pairs = query_pairs(request)
        query = self.child.grammar.parse(pairs)
        media = negotiate(request.headers.get("accept"), (JSON, CSV))
        prefer = Preferences.of(request)
        row_filter = self.child.row_filter(request)
        linked = self._linked_to(parent_key)

        def work(connection: Connection) -> Any:
            self._require_parent(connection, parent_key)
            rows, cursor = self.child.plan.rows(connection, query, row_filter, extra=linked)
            if query.embeds:
                self.child.plan.embed(connection, rows, query.embeds, request.scope.get("drg.embed_filters"))
            total = (self.child.plan.count(connection, query, row_filter, prefer.count, extra=linked)
                     if prefer.count else None)
            return rows, cursor, total

        rows, cursor, total = await self.executor.read(work)
        path = f"/{self.parent.resource.name}/{params[0]}/{self.child.resource.name}"
        rows = self.child.project(rows, query)
        headers = {"Content-Range": content_range(None if query.cursor else query.offset, len(rows), total)}
        if prefer.count:
            headers["Preference-Applied"] = f"count={prefer.count}"
        if media == CSV:
            names = list(rows[0]) if rows else (list(query.select) if query.select else self.child.plan.names)
            return StreamingResponse(csv_chunks(names, rows), media_type="text/csv; charset=utf-8", headers=headers)
        document: dict[str, Any] = {self.child.resource.name: rows, "links": links(path, pairs, query, cursor, None)}
        if total is not None:
            document["count"] = total
        return json_response(document, headers=headers)

    def _child_keys(self, body: Any) -> list[tuple[Any, ...]]:
        keys = [self.child.keys.from_json(item, f"/{index}") for index, item in enumerate(body)]
        return list(dict.fromkeys(keys))  # each link once, in the order given

    def _check_children(self, connection: Connection, keys: list[tuple[Any, ...]], row_filter: Any) -> None:
        """Every key must name a child row the caller may reach: one it may not is refused as a missing one,
        so a link write reveals nothing about rows outside the caller's scope."""
        found = self.child.plan.keys_exist(connection, keys, row_filter)
        missing = [(index, key) for index, key in enumerate(keys) if key not in found]
        if missing:
            name = self.child.resource.name
            raise bad_request(f"{len(missing)} of the keys name no {name} row; nothing was changed",
                              [Issue(f"/{index}", f"no {name} row has key {self.child.keys.segment(key)}")
                               for index, key in missing])

    def _rows(self, parent_key: Sequence[Any], keys: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        rows = []
        for key in keys:
            row = {c.name: v for c, v in zip(self.parent_columns, parent_key, strict=True)}
            row.update({c.name: v for c, v in zip(self.child_columns, key, strict=True)})
            rows.append(row)
        return rows

    def _of_parent(self, parent_key: Sequence[Any]) -> Any:
        return and_(*(c == v for c, v in zip(self.parent_columns, parent_key, strict=True)))

    def _reachable_links(self, row_filter: Any) -> Any:
        """Links to child rows the caller may reach (a replace leaves links to other rows alone)."""
        if row_filter is None:
            return None
        reachable = select(*self.child_keys).where(row_filter)
        return tuple_(*self.child_columns).in_(reachable)

    async def replace(self, request: Request, params: Sequence[str]) -> Response:
        parent_key = self._parent_key(params[0])
        keys = self._child_keys(await read_body(request, self.validator))
        row_filter = self.child.row_filter(request)
        reachable = self._reachable_links(row_filter)

        def work(connection: Connection) -> None:
            self._require_parent(connection, parent_key)
            self._check_children(connection, keys, row_filter)
            mine = self._of_parent(parent_key)
            connection.execute(delete(self.link).where(mine if reachable is None else and_(mine, reachable)))
            if keys:
                connection.execute(insert(self.link), self._rows(parent_key, keys))

        await self.executor.write(work, lambda error: problem_for(self.link, error))
        return self._answer(keys)

    async def add(self, request: Request, params: Sequence[str]) -> Response:
        parent_key = self._parent_key(params[0])
        keys = self._child_keys(await read_body(request, self.validator))
        row_filter = self.child.row_filter(request)

        def work(connection: Connection) -> None:
            self._require_parent(connection, parent_key)
            self._check_children(connection, keys, row_filter)
            present = select(*self.child_columns).where(self._of_parent(parent_key),
                                                         tuple_(*self.child_columns).in_(keys))
            existing = {tuple(r) for r in connection.execute(present).all()} if keys else set()
            new = [key for key in keys if key not in existing]
            if new:
                connection.execute(insert(self.link), self._rows(parent_key, new))

        await self.executor.write(work, lambda error: problem_for(self.link, error))
        return self._answer(keys)

    def _answer(self, keys: list[tuple[Any, ...]]) -> Response:
        return json_response({"message": "Links updated", self.child.resource.name: [
            self.child.keys.json(k) for k in keys]})

    async def remove(self, request: Request, params: Sequence[str]) -> Response:
        parent_key = self._parent_key(params[0])
        child_key = self.child.keys.parse(params[1], "/path/child_id")
        condition = and_(self._of_parent(parent_key),
                         *(c == v for c, v in zip(self.child_columns, child_key, strict=True)))
        reachable = self._reachable_links(self.child.row_filter(request))
        if reachable is not None:
            condition = and_(condition, reachable)

        def work(connection: Connection) -> int:
            self._require_parent(connection, parent_key)
            return int(connection.execute(delete(self.link).where(condition)).rowcount)

        if not await self.executor.write(work, lambda error: problem_for(self.link, error)):
            raise not_found(f"This {self.parent.resource.name} row is not linked to that {self.child.resource.name}")
        return Response(status_code=204)
