"""Which methods each served path allows, answered before Connexion sees the request.

Connexion's router answers a method it has no operation for with a 405 whose `Allow` lists the wrong
methods, and routes `PUT /t/query` to `PUT /t/{id}` with `id=query`. This table is built once per
generation from the served document, so the dispatcher can answer 404 and 405 itself, with an exact
`Allow`, and hand Connexion only requests it will route. Literal paths win over templated ones, as in
the document's order."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

TEMPLATE = re.compile(r"\{[^{}/]+\}")


@dataclass(frozen=True)
class Route:
    template: str
    methods: frozenset[str]  # upper case, HEAD included wherever GET is

    @property
    def allow(self) -> str:
        return ", ".join(sorted(self.methods | {"OPTIONS"}))


class RouteTable:
    """`match(path)` → the route serving `path`, or None. Indexed by first segment: one dict lookup and a
    few regexes per request however many tables a generation has."""

    def __init__(self, paths: Iterable[tuple[str, Iterable[str]]]) -> None:
        self._literal: dict[str, Route] = {}
        self._templated: dict[str, list[tuple[re.Pattern[str], Route]]] = {}
        for template, methods in paths:
            upper = {m.upper() for m in methods}
            if "GET" in upper:
                upper.add("HEAD")
            route = Route(template, frozenset(upper))
            if TEMPLATE.search(template) is None:
                self._literal[template] = route
            else:
                pattern = re.compile("^" + "[^/]+".join(map(re.escape, TEMPLATE.split(template))) + "$")
                self._templated.setdefault(_first_segment(template), []).append((pattern, route))

    def match(self, path: str) -> Route | None:
        route = self._literal.get(path)
        if route is not None:
            return route
        for pattern, candidate in self._templated.get(_first_segment(path), ()):
            if pattern.match(path):
                return candidate
        return None


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.count("/") >= 1 else ""
