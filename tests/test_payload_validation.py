"""`generator.payload.parse_payload` on its own (no database, no HTTP): every problem reported with a pointer."""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.errors import InvalidPayload
from generator.payload import Generation, parse_payload

Payload = Callable[[str], dict[str, Any]]
DICTIONARY = "/data_resource_schema/data/dataDictionary"
PATHS = "/data_resource_schema/api/apiSpec/paths"


def field(name: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def table(name: str, *fields: dict[str, Any], primary_key: Any = "id", **schema: Any) -> dict[str, Any]:
    table_schema: dict[str, Any] = {"fields": list(fields) or [field("id", "integer"), field("name")], **schema}
    if primary_key is not None:
        table_schema["primaryKey"] = primary_key
    return {"name": name, "tableSchema": table_schema}


def payload(*tables: dict[str, Any], paths: dict[str, Any] | None = None, many_to_many: list[list[str]] | None = None,
            **top: Any) -> dict[str, Any]:  # fmt: skip
    data: dict[str, Any] = {"dataDictionary": list(tables)}
    if many_to_many is not None:
        data["relationships"] = {"manyToMany": many_to_many}
    return {"data_resource_schema": {"data": data, "api": {"apiSpec": {"paths": paths or {}}}}, **top}


def issues(body: Any) -> dict[str, str]:
    """pointer -> message of every issue; fails if the payload is accepted."""
    with pytest.raises(InvalidPayload) as raised:
        parse_payload(body)
    return {issue.pointer: issue.message for issue in raised.value.issues}


def pointer(path: str) -> str:
    return f"{PATHS}/{path.replace('~', '~0').replace('/', '~1')}"


# -- accepted payloads ----------------------------------------------------------------------------------


def test_bare_operation_markers_are_accepted_under_validation() -> None:
    body = payload(table("t"), paths={"/t": {"get": {}, "post": {}}, "/t/{id}": {"get": {}, "delete": {}},
                                      "/t/query": {"post": {}}})  # fmt: skip
    assert "ignore_validation" not in body
    generation = parse_payload(body)
    assert isinstance(generation, Generation)
    assert {(op.kind, op.method) for op in generation.operations} == {
        ("list", "get"), ("create", "post"), ("read", "get"), ("delete", "delete"), ("query", "post")}
    assert generation.warnings == ()


def test_names_are_lowercased_and_pairs_match_case_insensitively() -> None:
    body = payload(table("People"), table("TEAM"), many_to_many=[["people", "Team"]],
                   paths={"/People": {"get": {}}, "/team/{id}": {"get": {}}})  # fmt: skip
    generation = parse_payload(body)
    assert [r.name for r in generation.resources] == ["people", "team"]
    assert [p.table_name for p in generation.many_to_many] == ["people_team"]
    assert {op.resource for op in generation.operations} == {"people", "team"}


def test_data_catalog_key_is_accepted() -> None:
    body = payload(table("t"))
    generation = parse_payload({"data_catalog": body["data_resource_schema"]})
    assert [r.name for r in generation.resources] == ["t"]


def test_problems_under_the_older_key_point_into_it() -> None:
    body = {"data_catalog": payload(table("t", primary_key="nope"))["data_resource_schema"]}
    assert "/data_catalog/data/dataDictionary/0/tableSchema/primaryKey" in issues(body)


def test_apispec_with_no_paths_is_no_routes() -> None:
    body = payload(table("t"))
    body["data_resource_schema"]["api"] = {"apiSpec": {}}
    assert parse_payload(body).operations == ()
    del body["data_resource_schema"]["api"]
    assert parse_payload(body).operations == ()


def test_touch_database_defaults_to_true() -> None:
    assert parse_payload(payload(table("t"))).touch_database is True
    assert parse_payload(payload(table("t"), touch_database=False)).touch_database is False


def test_digest_ignores_key_order_but_not_content() -> None:
    body = payload(table("t"))
    reordered = {"data_resource_schema": dict(reversed(list(body["data_resource_schema"].items())))}
    assert parse_payload(body).digest == parse_payload(reordered).digest
    changed = copy.deepcopy(body)
    changed["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"]["fields"][1]["type"] = "integer"
    assert parse_payload(body).digest != parse_payload(changed).digest


def test_corpus_payloads_validate_offline(load_payload: Payload, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validation tried to use the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name in ("default.json", "all_types.json", "foreign_key_valid.json"):
        assert parse_payload(load_payload(name)).resources, name
    # admin_test_payload.json carries no ignore_validation: its full OpenAPI document is validated, offline
    found = issues(load_payload("admin_test_payload.json"))
    assert set(found) == {pointer(p) for p in ("/peoples", "/peoples/{id}", "/teams", "/teams/{id}",
                                               "/orders", "/orders/{id}")}  # fmt: skip


# -- rejected payloads ----------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    body = payload(
        table("a", primary_key="missing"),  # the key names no field
        table("b", field("id", "integer"), field("n", constraints={"minimum": 5})),  # a bound on text
        table("c", field("id", "integer"), field("b_id", "integer"),
              foreignKeys=[{"fields": "b_id", "reference": {"resource": "ghost", "fields": "id"}}]),
        table("health"),  # a reserved name
        many_to_many=[["a", "nowhere"]],  # an unknown table
        paths={"/ghosts": {"get": {}}},  # a path naming no table
    )  # fmt: skip
    found = issues(body)
    assert {
        f"{DICTIONARY}/0/tableSchema/primaryKey",
        f"{DICTIONARY}/1/tableSchema/fields/1/constraints/minimum",
        f"{DICTIONARY}/2/tableSchema/foreignKeys/0/reference/resource",
        f"{DICTIONARY}/3/name",
        "/data_resource_schema/data/relationships/manyToMany/0",
        pointer("/ghosts"),
    } <= set(found), found
    assert all(message for message in found.values())


def test_structural_and_semantic_problems_are_reported_together() -> None:
    body = payload(
        table("a", primary_key="missing"),  # the key names no field
        table("b", field("id", "integer"), field("x", "text")),  # no such type (a structural problem)
        table("c", field("id", "integer"), field("n", constraints={"pattern": "("})),  # a bad regex
        many_to_many=[["a", "nowhere"]],  # an unknown table
        paths={"/ghosts": {"get": {}}},  # a path naming no table
    )
    found = issues(body)
    assert {
        f"{DICTIONARY}/0/tableSchema/primaryKey",
        f"{DICTIONARY}/1/tableSchema/fields/1/type",
        f"{DICTIONARY}/2/tableSchema/fields/1/constraints/pattern",
        "/data_resource_schema/data/relationships/manyToMany/0",
        pointer("/ghosts"),
    } <= set(found), found


@pytest.mark.parametrize(
    "name",
    ["generator", "Generator", "health", "tableschema", "swagger", "admin", "ui", "drg_x", "DRG_generations",
     "ready", "version", "Metrics"],
)
def test_reserved_table_names_are_rejected(name: str) -> None:
    found = issues(payload(table("ok"), table(name)))
    assert f"{DICTIONARY}/1/name" in found
    assert "reserved" in found[f"{DICTIONARY}/1/name"]


@pytest.mark.parametrize("second", ["people", "People", "PEOPLE"])
def test_duplicate_table_names_are_rejected(second: str) -> None:
    found = issues(payload(table("people"), table(second)))
    assert f"{DICTIONARY}/1/name" in found


def test_duplicate_field_names_are_rejected() -> None:
    found = issues(payload(table("t", field("id", "integer"), field("name"), field("Name"))))
    assert f"{DICTIONARY}/0/tableSchema/fields/2/name" in found


@pytest.mark.parametrize(
    "primary_key",
    [
        "nope",  # a single name that is not a field
        ["id", "nope"],  # one part of a composite key
        ["id", "id"],  # a field twice
    ],
)
def test_primary_key_must_name_declared_fields(primary_key: Any) -> None:
    found = issues(payload(table("t", primary_key=primary_key)))
    assert f"{DICTIONARY}/0/tableSchema/primaryKey" in found


@pytest.mark.parametrize("type_", ["object", "array", "geojson", "geopoint", "any"])
def test_json_valued_fields_cannot_be_primary_keys(type_: str) -> None:
    found = issues(payload(table("t", field("id", type_))))
    assert f"{DICTIONARY}/0/tableSchema/primaryKey" in found


def test_table_without_primary_key_is_rejected_naming_it() -> None:
    found = issues(payload(table("ok"), table("keyless", primary_key=None)))
    assert "keyless" in found[f"{DICTIONARY}/1/tableSchema"]


@pytest.mark.parametrize(
    ("pairs", "index"),
    [
        ([["a", "nowhere"]], 0),
        ([["nowhere", "b"]], 0),
        ([["a", "b"], ["b", "ghost"]], 1),
    ],
)
def test_many_to_many_must_name_declared_tables(pairs: list[list[str]], index: int) -> None:
    found = issues(payload(table("a"), table("b"), many_to_many=pairs))
    where = f"/data_resource_schema/data/relationships/manyToMany/{index}"
    assert where in found
    assert "nowhere" in found[where] or "ghost" in found[where]


def test_many_to_many_association_table_must_not_clash() -> None:
    found = issues(payload(table("a"), table("b"), table("a_b"), many_to_many=[["a", "b"]]))
    assert "/data_resource_schema/data/relationships/manyToMany/0" in found


def test_foreign_key_problems_point_at_the_key() -> None:
    broken = [{"fields": "ghost", "reference": {"resource": "nowhere", "fields": "id"}}]
    found = issues(payload(table("t", field("id", "integer"), field("name"), foreignKeys=broken)))
    assert f"{DICTIONARY}/0/tableSchema/foreignKeys/0/fields" in found
    assert f"{DICTIONARY}/0/tableSchema/foreignKeys/0/reference/resource" in found


def test_foreign_key_must_reference_a_key_or_unique_field() -> None:
    keys = [{"fields": "owner", "reference": {"resource": "u", "fields": "name"}}]
    found = issues(payload(table("u"), table("t", field("id", "integer"), field("owner"), foreignKeys=keys)))
    assert f"{DICTIONARY}/1/tableSchema/foreignKeys/0/reference/fields" in found


@pytest.mark.parametrize(
    ("constraints", "type_"),
    [
        ({"pattern": "[unclosed"}, "string"),
        ({"minimum": 1}, "string"),  # minimum does not apply to text
        ({"maximum": "ten"}, "integer"),  # a number's bound must be a number
        ({"minimum": "not a date"}, "date"),  # a date's bound must be a date
        ({"minimum": 5}, "date"),
        ({"maximum": "2020-13-01T00:00:00Z"}, "datetime"),
        ({"minLength": -1}, "string"),
        ({"enum": []}, "string"),
    ],
)
def test_bad_constraints_point_at_the_constraint(constraints: dict[str, Any], type_: str) -> None:
    found = issues(payload(table("t", field("id", "integer"), field("v", type_, constraints=constraints))))
    where = f"{DICTIONARY}/0/tableSchema/fields/1/constraints"
    assert any(p.startswith(where) for p in found), found


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ([], ""),  # not an object
        ({}, ""),  # neither data_resource_schema nor data_catalog
        ({"data_resource_schema": {}}, "/data_resource_schema"),  # no data
        ({"data_resource_schema": {"data": {}}}, "/data_resource_schema/data"),  # no dataDictionary
        ({"data_resource_schema": {"data": {"dataDictionary": [{"name": "t"}]}}}, f"{DICTIONARY}/0"),
        ({"data_resource_schema": {"data": {"dataDictionary": [table("bad name")]}}}, f"{DICTIONARY}/0/name"),
        (payload(table("t"), touch_database="no"), "/touch_database"),
    ],
)
def test_structural_problems_point_where_they_are(body: Any, where: str) -> None:
    found = issues(body)
    assert any(p == where or p.startswith(f"{where}/") for p in found) if where else found, found


@pytest.mark.parametrize(
    ("paths", "where"),
    [
        ({"/nowhere": {"get": {}}}, pointer("/nowhere")),  # names no table
        ({"/t/{id}/nowhere": {"get": {}}}, pointer("/t/{id}/nowhere")),
        ({"/t/{id}/a/b/c": {"get": {}}}, pointer("/t/{id}/a/b/c")),  # no supported shape
        ({"/t": {"delete": {}}}, f"{pointer('/t')}/delete"),  # not an operation of a collection
        ({"/t/query": {"put": {}}}, f"{pointer('/t/query')}/put"),
    ],
)
def test_whitelist_problems_are_errors_under_validation(paths: dict[str, Any], where: str) -> None:
    assert where in issues(payload(table("t"), paths=paths))


@pytest.mark.parametrize("flag", [True, False, None, "yes"])
def test_ignore_validation_counts_by_presence_and_turns_path_problems_into_warnings(flag: Any) -> None:
    body = payload(table("t"), paths={"/nowhere": {"get": {}}, "/t": {"get": {}}}, ignore_validation=flag)
    generation = parse_payload(body)
    assert [op.path for op in generation.operations] == ["/t"]
    assert len(generation.warnings) == 1 and "/nowhere" in generation.warnings[0]


def test_ignore_validation_still_checks_what_the_build_needs() -> None:
    found = issues(payload(table("t", primary_key="nope"), ignore_validation=True))
    assert f"{DICTIONARY}/0/tableSchema/primaryKey" in found


def test_invalid_openapi_document_is_reported_under_the_api_spec() -> None:
    body = payload(table("t"), paths={"/t": {"get": {"responses": "none", "summary": 5}}})
    found = issues(body)
    assert any(p.startswith("/data_resource_schema/api/apiSpec/paths") for p in found), found


def test_a_field_name_that_json_schema_reserves_is_refused_with_its_pointer() -> None:
    table = {"name": "t", "tableSchema": {"fields": [{"name": "id", "type": "integer"},
                                                     {"name": "$ref", "type": "string"}], "primaryKey": "id"}}
    payload = {"data_resource_schema": {"data": {"dataDictionary": [table]}}, "ignore_validation": True}
    with pytest.raises(InvalidPayload) as raised:
        parse_payload(payload)
    assert [i.pointer for i in raised.value.issues] == [
        "/data_resource_schema/data/dataDictionary/0/tableSchema/fields/1/name"
    ]


# -- well-formed but unusual shapes: a 400, never an exception ----------------------------------------------


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"primaryKey": []}, "/primaryKey"),
        ({"primaryKey": ""}, "/primaryKey"),
        ({"fields": [{"name": "id", "type": "integer", "constraints": []}], "primaryKey": "id"},
         "/fields/0/constraints"),
        ({"foreignKeys": [{"fields": "id", "reference": {"resource": "t", "fields": ["id", "name"]}}]},
         "/foreignKeys/0/reference/fields"),
        ({"foreignKeys": [{"fields": ["id", "name"], "reference": {"resource": "t", "fields": "id"}}]},
         "/foreignKeys/0/reference/fields"),
        ({"foreignKeys": [{"fields": "id", "reference": {"fields": {"a": 1}}}]}, "/foreignKeys/0/reference/fields"),
        ({"foreignKeys": [{"fields": "id", "reference": "t"}]}, "/foreignKeys/0/reference"),
    ],
)
def test_odd_shapes_are_issues_not_exceptions(change: dict[str, Any], where: str) -> None:
    body = payload(table("t"))
    body["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"].update(change)
    found = issues(body)
    assert any(p.startswith(f"{DICTIONARY}/0/tableSchema{where}") for p in found), found


CORPUS_BASES = ("default.json", "all_types.json")
SPOTS = ("data", "dataDictionary", "tableSchema", "fields", "constraints", "foreignKeys", "reference",
         "relationships", "manyToMany", "primaryKey")  # fmt: skip
KEYS = ("name", "type", "format", "constraints", "primaryKey", "foreignKeys", "fields", "reference", "resource",
        "required", "unique", "enum", "minLength", "maxLength", "minimum", "maximum", "pattern", "title",
        "description", "manyToMany")  # fmt: skip
VALUES = st.one_of(
    st.sampled_from([None, True, 0, -1, 1.5, 2**70, "", "id", "name", "people", "2020-01-01", "10:00", "2020-01",
                     "2020-01-01T00:00:00Z", r"(a)\1", "(?=a)", "[", [], ["id"], ["id", "id"], ["ghost"], {},
                     {"fields": "id"}, {"resource": "people", "fields": ["id", "name"]}, {"minimum": 5, "maximum": 1},
                     {"minLength": 3, "maxLength": 1}, "pg_class", "sqlite_x", "tables", "é" * 40,
                     "integer", "date", "datetime", "object"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
                 max_leaves=6),
)  # fmt: skip


def _containers(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every object and array under a spot a mutation should reach (the table schemas, relationships)."""
    found = []
    if isinstance(document, dict | list) and any(isinstance(p, int) or p in SPOTS for p in path):
        found.append((path, document))
    listed = document if isinstance(document, list) else []
    for key, value in document.items() if isinstance(document, dict) else enumerate(listed):
        found += _containers(value, (*path, key))
    return found


def _mutate(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        spots = _containers(document)
        _, target = spots[draw(st.integers(0, len(spots) - 1))]
        value = draw(VALUES)
        if isinstance(target, dict):
            key = draw(st.sampled_from(sorted(target) + list(KEYS)))
            if draw(st.booleans()) and key in target:
                del target[key]
            else:
                target[key] = value
        elif target:
            index = draw(st.integers(0, len(target) - 1))
            if draw(st.booleans()):
                del target[index]
            else:
                target[index] = value
    return document


@st.composite
def mutated_corpus(draw: st.DrawFn, bases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return _mutate(draw, bases[draw(st.sampled_from(CORPUS_BASES))])


def test_mutated_corpus_payloads_never_raise_anything_but_invalid_payload(load_payload: Payload) -> None:
    """A payload is either parsed or refused with issues; any other exception would be a 500."""
    bases = {name: load_payload(name) for name in CORPUS_BASES}

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(mutated_corpus(bases))
    def check(body: dict[str, Any]) -> None:
        try:
            assert isinstance(parse_payload(body), Generation)
        except InvalidPayload as exc:
            assert exc.issues and all(issue.message for issue in exc.issues)

    check()
