"""Routing of the data plane: path templates → the methods they allow and the endpoint of each.

Built once per generation from the served document's paths, so exactly the documented operations are
routed, literal paths win over templated ones (`/t/query` is never a key), 404 and 405 are answered with an
exact `Allow`, and OPTIONS lists the methods. Indexed by first segment: one dict lookup and a few regexes
per request, however many tables a generation has. Path parameters are captured as decoded text."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TEMPLATE = re.compile(r"\{[^{}/]+\}")
Endpoint = Callable[[Any, Sequence[str]], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    template: str
    methods: frozenset[str]  # upper case, HEAD included wherever GET is
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)

    @property
    def allow(self) -> str:
        return ", ".join(sorted(self.methods | {"OPTIONS"}))

    def endpoint(self, method: str) -> Endpoint | None:
        return self.endpoints.get("GET" if method == "HEAD" else method)


class RouteTable:
    """`match(path)` → (route, path parameters), or None."""

    def __init__(self, routes: Mapping[str, Mapping[str, Endpoint | None]]) -> None:
        self._literal: dict[str, Route] = {}
        self._templated: dict[str, list[tuple[re.Pattern[str], Route]]] = {}
        for template, by_method in routes.items():
            methods = {m.upper() for m in by_method}
            if "GET" in methods:
                methods.add("HEAD")
            endpoints = {m.upper(): e for m, e in by_method.items() if e is not None}
            route = Route(template, frozenset(methods), endpoints)
            if TEMPLATE.search(template) is None:
                self._literal[template] = route
            else:
                pattern = re.compile("^" + "([^/]+)".join(map(re.escape, TEMPLATE.split(template))) + "$")
                self._templated.setdefault(_first_segment(template), []).append((pattern, route))

    def match(self, path: str) -> tuple[Route, tuple[str, ...]] | None:
        route = self._literal.get(path)
        if route is not None:
            return route, ()
        for pattern, candidate in self._templated.get(_first_segment(path), ()):
            found = pattern.match(path)
            if found:
                return candidate, found.groups()
        return None


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.count("/") >= 1 else ""
