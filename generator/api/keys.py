"""Primary keys as they travel: in a URL path (`/t/42`, composite `/t/42,2026-09-01`), in JSON, in `Location`.

A key that no URL could reach is refused before it is written: routing decodes `%2F` before matching,
composite keys split on commas, clients drop `.` and `..` segments, and `query` is the query route."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from generator.api.values import from_text
from generator.errors import Issue, Problem, bad_request
from generator.payload.specs import ResourceSpec
from generator.pointers import child

UNADDRESSABLE = frozenset({"", ".", "..", "query"})


class KeyCodec:
    def __init__(self, resource: ResourceSpec, path: str) -> None:
        self.resource, self.path = resource, path
        self.names = list(resource.primary_key)
        self.fields = resource.key_fields
        self.composite = len(self.names) > 1

    def parse(self, raw: str, where: str = "/path/id") -> tuple[Any, ...]:
        """Key values from a path segment; a 400 naming the bad part otherwise."""
        parts = raw.split(",") if self.composite else [raw]
        if len(parts) != len(self.names):
            names = ",".join(self.names)
            raise bad_request(f"The key must have {len(self.names)} comma-separated parts ({names})",
                              [Issue(where, f"expected {names}")])
        values = []
        for field, part in zip(self.fields, parts, strict=True):
            try:
                values.append(from_text(field, part))
            except (ValueError, ArithmeticError) as exc:
                raise bad_request(f"Key part {field.name}={part!r} is invalid: {exc}",
                                  [Issue(child(where, field.name) if self.composite else where, str(exc))]) from None
        return tuple(values)

    def from_json(self, value: Any, where: str) -> tuple[Any, ...]:
        """A key written in a JSON body: the value itself, `"a,b"` text, or an object of key fields."""
        if isinstance(value, dict):
            missing = [n for n in self.names if n not in value]
            if missing:
                raise bad_request("A key is incomplete", [Issue(where, f"missing {', '.join(missing)}")])
            return self.parse(",".join(_text(value[n]) for n in self.names), where)
        if isinstance(value, list | None.__class__) or (self.composite and not isinstance(value, str)):
            raise bad_request("A key is malformed", [Issue(where, f"expected a key of {self.resource.name}")])
        return self.parse(_text(value), where)

    def json(self, values: Sequence[Any]) -> Any:
        return values[0] if not self.composite else dict(zip(self.names, values, strict=True))

    def location(self, values: Sequence[Any]) -> str:
        return f"{self.path}/{','.join(quote(_text(v), safe='') for v in values)}"

    def segment(self, values: Sequence[Any]) -> str:
        return ",".join(_text(v) for v in values)

    def check_addressable(self, values: Mapping[str, Any], base: str = "") -> None:
        issues = [
            Issue(child(base, name), f"{name}: a key cannot contain '/'{' or ,' if self.composite else ''}, or be "
                                     "'.', '..' or 'query'")
            for name in self.names
            if isinstance(text := values.get(name), str)
            and ("/" in text or (self.composite and "," in text) or text in UNADDRESSABLE)
        ]
        if issues:
            raise bad_request("This key could not be used in a URL", issues)

    def check_body(self, values: Mapping[str, Any], key: Sequence[Any]) -> None:
        for name, value in zip(self.names, key, strict=True):
            if name in values and values[name] != value:
                # 409, as RFC 9110 says for a PUT whose body conflicts with its target: the body is valid
                raise Problem(409, "Conflict", f"The body's {name} differs from the key in the path; keys are "
                              "changed by creating the row anew", errors=[
                                  Issue(child("", name), "must equal the key in the path, or be left out")])


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
