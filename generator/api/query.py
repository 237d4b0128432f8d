"""The query grammar: a request's query string (or a query body) → a typed `ReadQuery`.

One grammar for every read route (`GET /t`, `GET|POST /t/query`, embeds, the PostgREST surface), in
PostgREST's syntax so its users' requests work as they are:

    ?age=gte.18&name=ilike.*ann*&id=in.(1,2,3)&closed_at=is.null&status=not.eq.done
    ?or=(age.lt.18,and(city.eq.Boston,age.gte.65))     ?data->>city=eq.Boston
    ?order=name.asc,id.desc.nullslast   ?select=id,name,orders(*)   ?limit=10&offset=20   ?cursor=...

A bare value (`?name=Ann`) is an exact match, as the reference's query routes had it. Values are converted
by the field's type (dates compare as dates, numbers numerically) and always bound as parameters later;
nothing here builds SQL. Every problem is an issue pointing at `/query/<parameter>` (or into the body)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from generator.api.values import CONVERTERS, from_text
from generator.errors import Issue, bad_request
from generator.literals import written
from generator.payload.specs import JSON_TYPES, FieldSpec, ResourceSpec
from generator.pointers import child

OPERATORS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is"})
BODY_OPERATORS = OPERATORS | {"not"}
PATTERN_TYPES = frozenset({"string", "duration", "yearmonth"})  # text columns `like` can match
IS_VALUES: dict[str, bool | None] = {"null": None, "true": True, "false": False, "unknown": None}
RESERVED = frozenset({"select", "order", "limit", "offset", "or", "and", "not.or", "not.and", "not", "embed",
                      "cursor", "on_conflict", "columns"})  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """`field op value`; `path` reads a JSON field as text (`data->>city`)."""

    field: str
    op: str
    value: Any
    negated: bool = False
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    conjunction: Literal["and", "or"]
    items: tuple[Condition | Group, ...]
    negated: bool = False


Node = Condition | Group


@dataclass(frozen=True)
class Ordering:
    field: str
    descending: bool = False
    nulls: Literal["first", "last"] | None = None  # None: the database's default for the direction


@dataclass(frozen=True)
class Embed:
    name: str
    columns: tuple[str, ...] | None = None  # None: every column


@dataclass(frozen=True)
class ReadQuery:
    where: Group = field(default_factory=lambda: Group("and", ()))
    order: tuple[Ordering, ...] = ()
    select: tuple[str, ...] | None = None
    embeds: tuple[Embed, ...] = ()
    limit: int = 100
    offset: int = 0
    cursor: str | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.where.items)


class QueryError(ValueError):
    """One problem with one parameter; collected into a 400 by `Grammar`."""


class BadValue(QueryError):
    """A value that is not of its field's type."""


class Grammar:
    """The grammar of one resource: which fields exist, how their values convert, what can be embedded."""

    def __init__(self, resource: ResourceSpec, *, default_limit: int, max_limit: int,
                 embeddable: Iterable[str] = ()) -> None:
        self.resource = resource
        self.fields = {f.name: f for f in resource.fields}
        self.default_limit, self.max_limit = default_limit, max_limit
        self.embeddable = frozenset(embeddable)

    # -- query strings ---------------------------------------------------------------------------------

    def parse(self, params: Iterable[tuple[str, str]]) -> ReadQuery:
        """A `ReadQuery` from query-string pairs, or a 400 listing every bad parameter."""
        conditions: list[Node] = []
        options: dict[str, Any] = {}
        issues: list[Issue] = []
        for name, text in params:
            where = child("/query", name)
            try:
                if name in RESERVED:
                    self._option(name, text, options, conditions)
                else:
                    conditions.append(self._filter(name, text))
            except QueryError as exc:
                issues.append(Issue(where, str(exc)))
        if issues:
            raise bad_request("The query is invalid", issues)
        options.setdefault("limit", self.default_limit)
        return ReadQuery(where=Group("and", tuple(conditions)), **options)

    def _option(self, name: str, text: str, options: dict[str, Any], conditions: list[Node]) -> None:
        match name:
            case "limit":
                options["limit"] = self._integer(text, 1, self.max_limit)
            case "offset":
                options["offset"] = self._integer(text, 0, 2**63 - 1)
            case "order":
                options["order"] = self.ordering(text)
            case "select":
                options["select"], embeds = self._select(text)
                options["embeds"] = (*options.get("embeds", ()), *embeds)
            case "embed":
                options["embeds"] = (*options.get("embeds", ()), *(self._embed(n, None) for n in _split(text)))
            case "cursor":
                options["cursor"] = text
            case "or" | "and" | "not.or" | "not.and":
                negated = name.startswith("not.")
                conjunction = name.removeprefix("not.")
                conditions.append(self._group(conjunction, _parenthesised(text), negated))  # type: ignore[arg-type]
            case _:
                raise QueryError(f"{name!r} is not supported here")

    @staticmethod
    def _integer(text: str, low: int, high: int) -> int:
        if not text.lstrip("-").isdigit() or len(text) > 20 or not low <= int(text) <= high:
            raise QueryError(f"must be an integer from {low} to {high}")
        return int(text)

    def _filter(self, name: str, text: str) -> Condition:
        negated = False
        if name.startswith("not.") and _json_path(name.removeprefix("not."))[0] in self.fields:
            name, negated = name.removeprefix("not."), True
        op, value, operator_negated = _operator(text)
        try:
            return self.condition(name, op, value, negated=negated ^ operator_negated)
        except BadValue:
            # `age=foo.1`: a bare value of the wrong type that reads as `word.value` is most likely a misspelt
            # operator; say so rather than "'foo.1' is not an integer".
            guess, dot, _ = text.partition(".")
            if op != "eq" or value != text or not (dot and guess.isalpha()):
                raise
            raise QueryError(f"unknown operator {guess!r}; use one of {', '.join(sorted(OPERATORS))}") from None

    def condition(self, name: str, op: str, raw: Any, *, negated: bool = False, typed: bool = False) -> Condition:
        """A checked condition: known field, an operator that applies to it, a value of its type.

        `raw` is text from a URL, or (with `typed`) a value from a JSON body already of the right JSON type."""
        field_name, path = _json_path(name)
        spec = self.fields.get(field_name)
        if spec is None:
            raise QueryError(f"{field_name!r} is not a field of {self.resource.name}")
        if spec.protected:
            _check_protected(spec, op, raw, negated, bool(path))
        elif spec.type in JSON_TYPES and not path:
            raise QueryError(f"{field_name} holds JSON: filter on a path inside it, e.g. {field_name}->>key=eq.x")
        if path and spec.type not in JSON_TYPES:
            raise QueryError(f"{field_name} is not a JSON field: '->' paths apply to JSON fields only")
        if op not in OPERATORS:
            raise QueryError(f"unknown operator {op!r}; use one of {', '.join(sorted(OPERATORS))}")
        value = self._value(spec, op, raw, bool(path), typed)
        return Condition(field_name, op, value, negated, path)

    def _value(self, spec: FieldSpec, op: str, raw: Any, as_text: bool, typed: bool) -> Any:
        if op == "is":
            key = str(raw).lower() if not isinstance(raw, bool) and raw is not None else raw
            if key is not None and not isinstance(key, bool) and key not in IS_VALUES:
                raise QueryError("is takes null, true, false or unknown")
            if isinstance(key, str):
                key = IS_VALUES[key]
            if key is not None and (as_text or spec.type != "boolean"):
                raise QueryError(f"is.true and is.false apply to boolean fields; {spec.name} is {spec.type}"
                                 + (" (a JSON path reads text)" if as_text else ""))
            return key
        if op in ("like", "ilike"):
            if not as_text and spec.type not in PATTERN_TYPES:
                raise QueryError(f"{op} matches text; {spec.name} is {spec.type}")
            return str(raw).replace("*", "%")
        if op == "in":
            items = raw if typed and isinstance(raw, list) else _in_list(str(raw))
            return tuple(self._scalar(spec, item, as_text, typed) for item in items)
        return self._scalar(spec, raw, as_text, typed)

    @staticmethod
    def _scalar(spec: FieldSpec, raw: Any, as_text: bool, typed: bool) -> Any:
        if as_text:
            return str(raw)
        try:
            if typed and not isinstance(raw, str):
                return _typed_value(spec, raw)
            return _from_text(spec, str(raw))
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise BadValue(f"{spec.name}: {exc}") from None

    # -- logic trees: or=(a.eq.1,and(b.gt.2,c.is.null)) --------------------------------------------------

    def _group(self, conjunction: Literal["and", "or"], inner: str, negated: bool) -> Group:
        return Group(conjunction, tuple(self._tree_item(item) for item in _split(inner)), negated)

    def _tree_item(self, item: str) -> Node:
        negated = item.startswith("not.")
        body = item.removeprefix("not.")
        for conjunction in ("and", "or"):
            if body.startswith(f"{conjunction}(") and body.endswith(")"):
                return self._group(conjunction, body[len(conjunction) + 1:-1], negated)  # type: ignore[arg-type]
        name, dot, rest = _split_field(body)
        if not dot:
            raise QueryError(f"{item!r} is not field.operator.value")
        if _json_path(name)[0] not in self.fields:
            raise QueryError(f"{_json_path(name)[0]!r} is not a field of {self.resource.name}")
        op, value, operator_negated = _operator(rest)
        if op == "eq" and value == rest and not rest.startswith("eq."):
            # inside a logic tree every item names its operator (there is no bare-value shorthand there)
            raise QueryError(f"unknown operator {rest.partition('.')[0]!r} in {item!r}; "
                             f"use one of {', '.join(sorted(OPERATORS))}")
        return self.condition(name, op, value, negated=negated ^ operator_negated)

    # -- order, select, embed ----------------------------------------------------------------------------

    def ordering(self, text: str) -> tuple[Ordering, ...]:
        result = []
        for item in _split(text):
            name, *modifiers = item.split(".")
            spec = self.fields.get(name)
            if spec is None:
                raise QueryError(f"cannot order by {name!r}: not a field of {self.resource.name}")
            if spec.protected:
                raise QueryError(f"cannot order by {name}: it is protected (stored encrypted), and ciphertexts do "
                                 "not sort as their values do")
            if spec.type in JSON_TYPES:
                raise QueryError(f"cannot order by {name}: it holds JSON")
            descending, nulls = False, None
            for modifier in modifiers:
                match modifier:
                    case "asc" | "desc":
                        descending = modifier == "desc"
                    case "nullsfirst" | "nullslast":
                        nulls = modifier.removeprefix("nulls")
                    case _:
                        raise QueryError(f"unknown order modifier {modifier!r}: use asc, desc, nullsfirst, nullslast")
            result.append(Ordering(name, descending, nulls))  # type: ignore[arg-type]
        return tuple(result)

    def _select(self, text: str) -> tuple[tuple[str, ...] | None, tuple[Embed, ...]]:
        columns: list[str] = []
        embeds: list[Embed] = []
        star = False
        for item in _split(text):
            if item == "*":
                star = True
            elif "(" in item and item.endswith(")"):
                name, inner = item[:-1].split("(", 1)
                inner_columns = None if inner.strip() in ("", "*") else tuple(_split(inner))
                embeds.append(self._embed(name, inner_columns))
            elif item in self.fields:
                columns.append(item)
            else:
                raise QueryError(f"cannot select {item!r}: not a field of {self.resource.name}")
        return (None if star or not columns else tuple(columns)), tuple(embeds)

    def _embed(self, name: str, columns: tuple[str, ...] | None) -> Embed:
        """Table names are lowercase, so `Team` finds `team`; a hint keeps its field's case (`team!ownerId`)."""
        table, bang, hint = name.partition("!")
        found = name if name in self.embeddable else f"{table.lower()}{bang}{hint}"
        if found not in self.embeddable:
            known = ", ".join(sorted(self.embeddable)) or "none"
            raise QueryError(f"{name!r} is not related to {self.resource.name} (related: {known})")
        return Embed(found, columns)

    # -- query bodies: {"age": {"gte": 18}, "name": "Ann", "order": "name.desc", "limit": 10} --------------

    def parse_body(self, body: Mapping[str, Any]) -> ReadQuery:
        """The reference's body (field: value, exact, AND), with operators, order, limit and offset too."""
        conditions: list[Node] = []
        options: dict[str, Any] = {}
        issues: list[Issue] = []
        for name, value in body.items():
            where = child("", name)
            try:
                if name in ("order", "limit", "offset", "select", "cursor", "embed"):
                    self._option(name, str(value), options, conditions)
                elif isinstance(value, dict) and self._field_type(name) not in JSON_TYPES:
                    conditions += self._body_operators(name, value)
                elif value is None:
                    conditions.append(self.condition(name, "is", None, typed=True))
                else:
                    conditions.append(self.condition(name, "eq", value, typed=True))
            except QueryError as exc:
                issues.append(Issue(where, str(exc)))
        if issues:
            raise bad_request("The query body is invalid", issues)
        options.setdefault("limit", self.default_limit)
        return ReadQuery(where=Group("and", tuple(conditions)), **options)

    def _field_type(self, name: str) -> str | None:
        spec = self.fields.get(_json_path(name)[0])
        return None if spec is None or "->" in name else spec.type

    def _body_operators(self, name: str, operators: Mapping[str, Any], negated: bool = False) -> list[Node]:
        """`{"gte": 18, "not": {"eq": 30}}`: each key an operator, all of them ANDed."""
        nodes: list[Node] = []
        if not operators:
            raise QueryError(f"an object of operators needs at least one ({', '.join(sorted(BODY_OPERATORS))})")
        unknown = sorted(set(operators) - BODY_OPERATORS)
        if unknown:
            raise QueryError(f"unknown operator{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                             f"use {', '.join(sorted(BODY_OPERATORS))}")
        for op, value in operators.items():
            if op == "not":
                if not isinstance(value, dict):
                    raise QueryError("'not' takes an object of operators")
                nodes += self._body_operators(name, value, not negated)
            else:
                nodes.append(self.condition(name, op, value, negated=negated, typed=True))
        return nodes


# -- lexical helpers ---------------------------------------------------------------------------------------


def _check_protected(spec: FieldSpec, op: str, raw: Any, negated: bool, path: bool) -> None:
    """A protected field is stored encrypted: only `is.null`, and for a searchable one equality (`eq`, `in`,
    through its blind index), can be answered without decrypting every row."""
    if op == "is" and (raw is None or str(raw).lower() == "null") and not path:
        return
    if not spec.searchable:
        raise QueryError(f"{spec.name} is protected (stored encrypted) and not searchable: only is.null applies. "
                         'Mark it "searchable": true in the payload for equality filters')
    if op not in ("eq", "in") or negated or path:
        raise QueryError(f"{spec.name} is protected (stored encrypted): only eq and in (through its blind index) "
                         "and is.null apply; ranges, patterns, negations and JSON paths cannot be answered "
                         "without decrypting every row")


def _operator(text: str) -> tuple[str, str, bool]:
    """`not.eq.x` → ("eq", "x", True); a bare value is an exact match."""
    negated = text.startswith("not.")
    body = text.removeprefix("not.") if negated else text
    op, dot, value = body.partition(".")
    if dot and op in OPERATORS:
        return op, value, negated
    if negated:
        raise QueryError(f"'not.' must be followed by an operator ({', '.join(sorted(OPERATORS))})")
    return "eq", text, False


def _json_path(name: str) -> tuple[str, tuple[str, ...]]:
    if "->" not in name:
        return name, ()
    parts = name.replace("->>", "->").split("->")
    return parts[0], tuple(parts[1:])


def _split_field(text: str) -> tuple[str, str, str]:
    """`data->>city.eq.x` splits at the first dot: the field and its JSON path end there (a value may hold
    dots and arrows of its own, `note.eq.a->b.c`)."""
    dot = text.find(".")
    if dot < 0:
        return text, "", ""
    return text[:dot], ".", text[dot + 1:]


def _parenthesised(text: str) -> str:
    if not (text.startswith("(") and text.endswith(")")):
        raise QueryError("a logic group is written (a.eq.1,b.eq.2)")
    return text[1:-1]


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    items, depth, quoted, current = [], 0, False, []
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted or depth != 0:
        raise QueryError(f"unbalanced quotes or parentheses in {text!r}")
    tail = "".join(current).strip()
    if tail or items:
        items.append(tail)
    return [item for item in items if item != ""]


def _in_list(text: str) -> list[str]:
    inner = _parenthesised(text)
    return [item[1:-1] if len(item) >= 2 and item[0] == item[-1] == '"' else item for item in _split(inner)]


def _from_text(spec: FieldSpec, text: str) -> Any:
    """A filter value by the field's type, without the field's own range constraints: `born=lt.1900-01-01`
    on a field whose minimum is 1950 is a valid question (no rows), not an invalid value."""
    if spec.type in ("integer", "year", "boolean"):
        return from_text(spec, text)
    if not written(spec.type, text):
        raise ValueError(f"{text[:40]!r} is not a {spec.type} as this service writes one")
    return CONVERTERS.get(spec.type, _identity)(text)


def _identity(value: Any) -> Any:
    return value


def _typed_value(spec: FieldSpec, raw: Any) -> Any:
    """A non-string JSON body value, checked against the field's type (strings go through `from_text`)."""
    is_number = isinstance(raw, int | float | Decimal) and not isinstance(raw, bool)
    match spec.type:
        case "integer" | "year" if isinstance(raw, int) and not isinstance(raw, bool):
            return from_text(spec, str(raw))
        case "number" if is_number:
            return _from_text(spec, str(raw))
        case "boolean" if isinstance(raw, bool):
            return raw
    raise ValueError(f"{raw!r} is not a valid {spec.type}")
