"""The query language of GET /<t>, GET|POST /<t>/query: PostgREST operators, logic trees, JSON paths, typed
values, order, select, paging by offset and by keyset cursor, counts, CSV and the 400s, on both databases.

One small table whose rows are chosen so that a wrong implementation shows: numbers whose text order is not
their numeric order, datetimes whose text order is not their instant order (the same instant under three
offsets), text differing only by case, NULL in every column the tests order or filter by. Each case states the
ids it expects in primary-key order."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

PROBLEM_JSON = "application/problem+json"


def field(name: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


FIELDS = [field("id", "integer"), field("name"), field("age", "integer"), field("score", "number"),
          field("active", "boolean"), field("born", "date", constraints={"minimum": "1950-01-01"}),
          field("seen", "datetime"), field("data", "object"), field("note")]
PAYLOAD = {"data_resource_schema": {
    "data": {"dataDictionary": [{"name": "t", "tableSchema": {"fields": FIELDS, "primaryKey": "id"}}]},
    "api": {"apiSpec": {"paths": {"/t": {"get": {}, "post": {}}, "/t/query": {"get": {}, "post": {}}}}}}}

# seen, as instants: 1 12:00Z, 2 11:30Z, 3 NULL, 4 04:00Z, 5 12:00:00.000001Z, 6 12:00Z, 7 10:00Z, 8 12:00Z
ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "Ann", "age": 30, "score": 1.5, "active": True, "born": "1990-05-01",
     "seen": "2020-01-01T12:00:00+00:00", "data": {"city": "Boston", "zip": "02101"}, "note": "plain"},
    {"id": 2, "name": "ann", "age": 17, "score": 2.25, "active": False, "born": "2005-01-15",
     "seen": "2020-01-01T13:30:00+02:00", "data": {"city": "boston"}, "note": "a,b"},
    {"id": 3, "name": "Bob", "age": None, "score": 10, "active": None, "born": None, "seen": None,
     "data": {"city": "Chicago", "nested": {"k": "v"}, "vip": True}, "note": 'say "hi"'},
    {"id": 4, "name": "Annabel", "age": 65, "score": -3, "active": True, "born": "1955-12-31",
     "seen": "2019-12-31T23:00:00-05:00", "data": None, "note": "line\nbreak"},
    {"id": 5, "name": "Carl", "age": 18, "score": 100, "active": False, "born": "2006-02-28",
     "seen": "2020-01-01T12:00:00.000001+00:00", "data": {"vip": False}, "note": None},
    {"id": 6, "name": None, "age": 45, "score": 9.5, "active": True, "born": "1979-07-04",
     "seen": "2020-01-01T07:00:00-05:00", "data": {"city": "Boston"}, "note": "x"},
    {"id": 7, "name": "A_n%", "age": 5, "score": None, "active": False, "born": "2019-01-01",
     "seen": "2020-01-02T00:00:00+14:00", "data": {"city": "Boston", "n": 5}, "note": "y"},
    {"id": 8, "name": "bob", "age": 30, "score": 0.1, "active": None, "born": "1990-05-01",
     "seen": "2020-01-01T12:00:00+00:00", "data": {"city": None}, "note": "z"},
]
ALL = [row["id"] for row in ROWS]


@pytest.fixture
def api(client: TestClient) -> TestClient:
    """The table above, generated and filled, on SQLite or PostgreSQL."""
    response = client.post("/generator", json=PAYLOAD)
    assert response.status_code == 201, response.text
    response = client.post("/t", json=ROWS)
    assert response.status_code == 201, response.text
    return client


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["t"]]


def assert_problem(response: Any, status: int, pointer: str, *words: str) -> None:
    """A problem+json of `status` with an error at `pointer` whose message contains every one of `words`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    messages = [e["message"] for e in response.json().get("errors", []) if e["pointer"] == pointer]
    assert messages, response.json()
    assert any(all(word in message for word in words) for message in messages), messages


# -- filters: every operator, negation, logic trees, JSON paths, typed values ------------------------------

FILTERS = [
    # eq: text exact (case matters), a bare value is eq, numbers numerically, dates as dates
    pytest.param([("name", "eq.Ann")], [1], id="eq-text"),
    pytest.param([("name", "Ann")], [1], id="bare-value-is-eq"),
    pytest.param([("name", "eq.ann")], [2], id="eq-case-sensitive"),
    pytest.param([("age", "eq.30")], [1, 8], id="eq-integer"),
    pytest.param([("score", "eq.10.0")], [3], id="eq-number-numerically"),
    pytest.param([("active", "eq.true")], [1, 4, 6], id="eq-boolean"),
    pytest.param([("born", "eq.1990-05-01")], [1, 8], id="eq-date"),
    # datetimes compare by instant whatever offset the row or the value was written with
    pytest.param([("seen", "eq.2020-01-01T12:00:00Z")], [1, 6, 8], id="eq-datetime-instant-utc"),
    pytest.param([("seen", "eq.2020-01-01T14:00:00+02:00")], [1, 6, 8], id="eq-datetime-instant-offset"),
    # neq: SQL NULL semantics (a NULL is neither equal nor unequal)
    pytest.param([("name", "neq.Ann")], [2, 3, 4, 5, 7, 8], id="neq-text-null-excluded"),
    pytest.param([("age", "neq.30")], [2, 4, 5, 6, 7], id="neq-integer-null-excluded"),
    pytest.param([("active", "neq.true")], [2, 5, 7], id="neq-boolean"),
    # gt gte lt lte: integers, numbers (10 > 9.6 though "10" < "9.6"), dates, datetimes across offsets
    pytest.param([("age", "gt.17")], [1, 4, 5, 6, 8], id="gt-integer"),
    pytest.param([("age", "gte.18")], [1, 4, 5, 6, 8], id="gte-integer"),
    pytest.param([("age", "lt.18")], [2, 7], id="lt-integer"),
    pytest.param([("age", "lte.17")], [2, 7], id="lte-integer"),
    pytest.param([("score", "gt.9.6")], [3, 5], id="gt-number-not-text"),
    pytest.param([("score", "lt.0")], [4], id="lt-number-negative"),
    pytest.param([("score", "lte.1.5")], [1, 4, 8], id="lte-number"),
    pytest.param([("born", "lt.1980-01-01")], [4, 6], id="lt-date"),
    pytest.param([("born", "gte.2005-01-15")], [2, 5, 7], id="gte-date"),
    pytest.param([("born", "lt.1900-01-01")], [], id="date-outside-field-bounds-is-a-question"),
    pytest.param([("seen", "lt.2020-01-01T12:00:00+00:00")], [2, 4, 7], id="lt-datetime-by-instant"),
    pytest.param([("seen", "gt.2020-01-01T12:00:00Z")], [5], id="gt-datetime-microsecond"),
    pytest.param([("seen", "gte.2020-01-01T07:00:00-05:00")], [1, 5, 6, 8], id="gte-datetime-offset"),
    pytest.param([("seen", "lte.2020-01-01T11:30:00Z")], [2, 4, 7], id="lte-datetime"),
    # like: case-sensitive on both databases, `*` is the wildcard (`_` matches one character, as in SQL)
    pytest.param([("name", "like.Ann*")], [1, 4], id="like-prefix-case-sensitive"),
    pytest.param([("name", "like.ann*")], [2], id="like-lowercase"),
    pytest.param([("name", "like.*nn*")], [1, 2, 4], id="like-infix"),
    pytest.param([("name", "like.*NN*")], [], id="like-no-case-folding"),
    pytest.param([("name", "like.A_n*")], [1, 4, 7], id="like-underscore-one-char"),
    pytest.param([("note", "like.*,*")], [2], id="like-comma-in-value"),
    # ilike: case-insensitive
    pytest.param([("name", "ilike.ann*")], [1, 2, 4], id="ilike-prefix"),
    pytest.param([("name", "ilike.*B")], [3, 8], id="ilike-suffix"),
    pytest.param([("name", "ilike.BOB")], [3, 8], id="ilike-exact"),
    # in: lists of typed values, quoted items may hold commas, empty list matches nothing
    pytest.param([("id", "in.(1,2,3)")], [1, 2, 3], id="in-integers"),
    pytest.param([("name", 'in.(Ann,"bob")')], [1, 8], id="in-quoted-text"),
    pytest.param([("note", 'in.("a,b",plain)')], [1, 2], id="in-comma-inside-quotes"),
    pytest.param([("score", "in.(10,9.5)")], [3, 6], id="in-numbers"),
    pytest.param([("born", "in.(1990-05-01,2019-01-01)")], [1, 7, 8], id="in-dates"),
    pytest.param([("seen", "in.(2020-01-01T14:00:00+02:00,2020-01-01T04:00:00Z)")], [1, 4, 6, 8],
                 id="in-datetimes-by-instant"),
    pytest.param([("age", "in.()")], [], id="in-empty"),
    pytest.param([("id", "not.in.(1,2)")], [3, 4, 5, 6, 7, 8], id="not-in"),
    pytest.param([("age", "not.in.(30,17)")], [4, 5, 6, 7], id="not-in-null-excluded"),
    # is: null, true, false, unknown
    pytest.param([("age", "is.null")], [3], id="is-null"),
    pytest.param([("age", "not.is.null")], [1, 2, 4, 5, 6, 7, 8], id="not-is-null"),
    pytest.param([("active", "is.true")], [1, 4, 6], id="is-true"),
    pytest.param([("active", "is.false")], [2, 5, 7], id="is-false"),
    pytest.param([("active", "is.null")], [3, 8], id="is-null-boolean"),
    pytest.param([("active", "is.unknown")], [3, 8], id="is-unknown"),
    pytest.param([("active", "not.is.true")], [2, 3, 5, 7, 8], id="not-is-true-keeps-null"),
    pytest.param([("name", "is.null")], [6], id="is-null-text"),
    pytest.param([("seen", "is.null")], [3], id="is-null-datetime"),
    pytest.param([("note", "is.NULL")], [5], id="is-null-any-case"),
    # negation: in the value (`not.eq`) or on the name (`not.name`), both; double negation cancels
    pytest.param([("name", "not.eq.Ann")], [2, 3, 4, 5, 7, 8], id="not-eq-value"),
    pytest.param([("not.name", "eq.Ann")], [2, 3, 4, 5, 7, 8], id="not-eq-name"),
    pytest.param([("age", "not.gt.20")], [2, 5, 7], id="not-gt-null-excluded"),
    pytest.param([("name", "not.like.A*")], [2, 3, 5, 8], id="not-like"),
    pytest.param([("name", "not.ilike.a*")], [3, 5, 8], id="not-ilike"),
    pytest.param([("not.age", "not.eq.30")], [1, 8], id="double-negation"),
    # several parameters AND together
    pytest.param([("age", "gte.18"), ("active", "is.true")], [1, 4, 6], id="and-of-parameters"),
    pytest.param([("age", "gte.18"), ("age", "lte.45")], [1, 5, 6, 8], id="same-field-twice"),
    # or / and trees, nested, negated groups and items
    pytest.param([("or", "(age.lt.18,name.eq.Carl)")], [2, 5, 7], id="or"),
    pytest.param([("or", "(age.lt.18,and(name.eq.Carl,age.gte.18))")], [2, 5, 7], id="or-and-nested"),
    pytest.param([("and", "(age.gte.18,age.lte.45)")], [1, 5, 6, 8], id="and-group"),
    pytest.param([("not.and", "(age.gte.18,age.lte.45)")], [2, 4, 7], id="not-and-null-excluded"),
    pytest.param([("not.or", "(age.lt.18,age.gt.40)")], [1, 5, 8], id="not-or"),
    pytest.param([("or", "(not.age.gte.18,name.eq.Bob)")], [2, 3, 7], id="or-negated-item"),
    pytest.param([("or", "(and(active.is.true,age.gt.40),and(active.is.false,age.lt.10))")], [4, 6, 7],
                 id="or-of-ands"),
    pytest.param([("or", "(age.lt.18,age.gt.40)"), ("active", "is.true")], [4, 6], id="or-and-parameter"),
    pytest.param([("or", "(not.or(age.lt.18,age.gt.40),name.is.null)")], [1, 5, 6, 8], id="or-not-or-nested"),
    pytest.param([("or", "(seen.lt.2020-01-01T11:00:00Z,score.gt.50)")], [4, 5, 7], id="or-typed-values"),
    pytest.param([("or", "(name.in.(Ann,Bob),id.eq.5)")], [1, 3, 5], id="or-with-in-list"),
    pytest.param([("or", "(data->>city.eq.Chicago,name.eq.Ann)")], [1, 3], id="or-json-path"),
    pytest.param([("or", "(note.eq.a->b.c,id.eq.1)")], [1], id="or-value-with-arrow-and-dots"),
    # JSON fields by path, compared as text
    pytest.param([("data->>city", "eq.Boston")], [1, 6, 7], id="json-eq"),
    pytest.param([("data->>city", "ilike.boston")], [1, 2, 6, 7], id="json-ilike"),
    pytest.param([("data->>city", "like.*oston")], [1, 2, 6, 7], id="json-like"),
    pytest.param([("data->nested->>k", "eq.v")], [3], id="json-nested-path"),
    pytest.param([("data->>zip", "eq.02101")], [1], id="json-text-keeps-leading-zero"),
    pytest.param([("data->>n", "eq.5")], [7], id="json-number-as-text"),
    pytest.param([("data->>city", "is.null")], [4, 5, 8], id="json-missing-null-or-json-null"),
    pytest.param([("data->>vip", "eq.true")], [3], id="json-true-as-text"),
    pytest.param([("data->>vip", "in.(false,x)")], [5], id="json-false-as-text"),
    pytest.param([("data->>city", "neq.Boston")], [2, 3], id="json-neq-null-excluded"),
    pytest.param([("data->>city", "in.(Chicago,boston)")], [2, 3], id="json-in"),
    pytest.param([("not.data->>city", "eq.Boston")], [2, 3], id="json-negated-name"),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS)
def test_filter(api: TestClient, params: list[tuple[str, str]], expected: list[int]) -> None:
    assert ids(api.get("/t", params=params)) == expected
    assert ids(api.get("/t/query", params=params)) == expected


def test_filter_values_are_bound_not_spliced(api: TestClient) -> None:
    """A value that would be SQL if spliced is just a value that matches nothing."""
    for value in ("eq.x' OR '1'='1", "like.*' OR 1=1 --", "in.(\"') OR 1=1 --\")"):
        assert ids(api.get("/t", params=[("name", value)])) == []
    assert ids(api.get("/t", params=[("data->>x' OR 1=1 --", "eq.1")])) == []
    assert len(ids(api.get("/t"))) == len(ROWS)


# -- order, select, limit and offset ----------------------------------------------------------------------

ORDERS = [
    # ascending puts NULLs last, descending first (PostgreSQL's default) on both databases; ties by key
    pytest.param("age", [7, 2, 5, 1, 8, 6, 4, 3], id="asc-nulls-last-by-default"),
    pytest.param("age.asc.nullsfirst", [3, 7, 2, 5, 1, 8, 6, 4], id="asc-nullsfirst"),
    pytest.param("age.desc", [3, 4, 6, 1, 8, 5, 2, 7], id="desc-nulls-first-by-default"),
    pytest.param("age.desc.nullslast", [4, 6, 1, 8, 5, 2, 7, 3], id="desc-nullslast"),
    pytest.param("age.desc,id.desc", [3, 4, 6, 8, 1, 5, 2, 7], id="two-keys"),
    pytest.param("active.desc,age", [8, 3, 1, 6, 4, 7, 2, 5], id="boolean-then-integer"),
    # datetimes by instant (text order would differ), numbers numerically, dates
    pytest.param("seen", [4, 7, 2, 1, 6, 8, 5, 3], id="datetime-by-instant"),
    pytest.param("seen.desc.nullslast", [5, 1, 6, 8, 2, 7, 4, 3], id="datetime-desc"),
    pytest.param("score.desc", [7, 5, 3, 6, 2, 1, 8, 4], id="number-desc"),
    pytest.param("born.asc.nullsfirst", [3, 4, 6, 1, 8, 2, 5, 7], id="date-nullsfirst"),
    pytest.param("note.desc.nullslast", [8, 7, 6, 3, 1, 4, 2, 5], id="text-desc"),
]


@pytest.mark.parametrize(("order", "expected"), ORDERS)
def test_order(api: TestClient, order: str, expected: list[int]) -> None:
    assert ids(api.get("/t", params={"order": order})) == expected


@pytest.mark.parametrize(("order", "expected"), ORDERS)
@pytest.mark.parametrize("limit", [1, 3])
def test_keyset_cursor_follows_next_to_the_end(api: TestClient, order: str, expected: list[int], limit: int) -> None:
    """Following `next` links pages through every row once, in order, with NULLs in the order column."""
    seen: list[int] = []
    href: str | None = f"/t?order={order}&limit={limit}"
    pages = 0
    while href is not None:
        response = api.get(href)
        page = ids(response)
        assert 0 < len(page) <= limit
        seen += page
        links = {link["rel"]: link["href"] for link in response.json()["links"]}
        href = links.get("next")
        if href is not None:
            assert "cursor=" in href and "offset=" not in href
        pages += 1
        assert pages <= len(ROWS)
    assert seen == expected


def test_keyset_cursor_keeps_filters(api: TestClient) -> None:
    seen: list[int] = []
    href: str | None = "/t?age=gte.18&order=age.desc.nullsfirst&limit=2"
    while href is not None:
        response = api.get(href)
        seen += ids(response)
        href = next((link["href"] for link in response.json()["links"] if link["rel"] == "next"), None)
    assert seen == [4, 6, 1, 8, 5]


CURSOR_PROBLEMS = [
    # not base64 JSON at all
    pytest.param({"cursor": "garbage!"}, id="garbage"),
    # a cursor of one order replayed under another
    pytest.param({"order": "age", "cursor": "from-another-order"}, id="other-order"),
]


@pytest.mark.parametrize("params", CURSOR_PROBLEMS)
def test_bad_cursor_is_400(api: TestClient, params: dict[str, str]) -> None:
    if params["cursor"] == "from-another-order":
        first = api.get("/t", params={"order": "seen", "limit": 1}).json()["links"]
        params = {**params, "cursor": next(link["href"] for link in first if link["rel"] == "next").split("cursor=")[1]}
    assert_problem(api.get("/t", params=params), 400, "/query/cursor")


def test_select(api: TestClient) -> None:
    response = api.get("/t", params={"select": "id,name", "order": "age.desc.nullslast", "limit": 2})
    assert response.status_code == 200, response.text
    assert response.json()["t"] == [{"id": 4, "name": "Annabel"}, {"id": 6, "name": None}]
    assert list(api.get("/t", params={"select": "*", "limit": 1}).json()["t"][0]) == [f["name"] for f in FIELDS]


def test_select_with_cursor_on_an_unselected_order_column(api: TestClient) -> None:
    rows: list[dict[str, Any]] = []
    href: str | None = "/t?select=name&order=seen&limit=3"
    while href is not None:
        response = api.get(href)
        rows += response.json()["t"]
        href = next((link["href"] for link in response.json()["links"] if link["rel"] == "next"), None)
    assert [row["name"] for row in rows] == ["Annabel", "A_n%", "ann", "Ann", None, "bob", "Carl", "Bob"]


def test_limit_offset_and_links(api: TestClient) -> None:
    response = api.get("/t", params={"limit": 3, "offset": 3})
    assert ids(response) == [4, 5, 6]
    links = {link["rel"]: link["href"] for link in response.json()["links"]}
    assert links["self"] == "/t?offset=3&limit=3"
    assert links["first"] == "/t?offset=0&limit=3"
    assert links["prev"] == "/t?offset=0&limit=3"
    assert ids(api.get(links["next"])) == [7, 8]
    last = api.get("/t", params={"limit": 3, "offset": 6})
    assert ids(last) == [7, 8]
    assert "next" not in {link["rel"] for link in last.json()["links"]}
    assert ids(api.get("/t", params={"offset": 100})) == []


# -- POST /<t>/query: the reference's body, operators, order/limit/offset, and its links -----------------

BODIES = [
    # the reference's body: field: value, exact, ANDed; null matches NULL
    pytest.param({"name": "Ann"}, [1], id="exact"),
    pytest.param({"age": 30, "active": True}, [1], id="exact-and"),
    pytest.param({"name": None}, [6], id="null-matches-null"),
    pytest.param({"active": False}, [2, 5, 7], id="boolean"),
    pytest.param({"born": "1990-05-01"}, [1, 8], id="date-text"),
    pytest.param({"score": 10}, [3], id="number"),
    # operators
    pytest.param({"age": {"gte": 18}}, [1, 4, 5, 6, 8], id="gte"),
    pytest.param({"age": {"gte": 18, "lte": 45}}, [1, 5, 6, 8], id="two-operators-and"),
    pytest.param({"age": {"not": {"eq": 30}}}, [2, 4, 5, 6, 7], id="not"),
    pytest.param({"id": {"in": [1, 2, 3]}}, [1, 2, 3], id="in-array"),
    pytest.param({"name": {"like": "Ann*"}}, [1, 4], id="like"),
    pytest.param({"name": {"ilike": "ann*"}}, [1, 2, 4], id="ilike"),
    pytest.param({"seen": {"lt": "2020-01-01T12:00:00Z"}}, [2, 4, 7], id="datetime-by-instant"),
    pytest.param({"active": {"is": None}}, [3, 8], id="is-null"),
    pytest.param({"active": {"is": True}}, [1, 4, 6], id="is-true"),
    pytest.param({"score": {"gt": 9.6}}, [3, 5], id="number-gt"),
    pytest.param({"data->>city": "Boston"}, [1, 6, 7], id="json-path"),
    pytest.param({"data->>city": {"in": ["Chicago", "boston"]}}, [2, 3], id="json-path-operator"),
    # order, limit, offset in the body
    pytest.param({"order": "age.desc.nullslast", "limit": 3}, [4, 6, 1], id="order-limit"),
    pytest.param({"offset": 2, "limit": 2}, [3, 4], id="offset-limit"),
]


@pytest.mark.parametrize(("body", "expected"), BODIES)
def test_post_query(api: TestClient, body: dict[str, Any], expected: list[int]) -> None:
    assert ids(api.post("/t/query", json=body)) == expected


def test_post_query_next_links_reproduce_the_query(api: TestClient) -> None:
    """Each link carries method POST and the body; POSTing the body to the href gives the next page."""
    body = {"age": {"gte": 18}, "order": "age.desc.nullslast", "limit": 2}
    seen: list[int] = []
    response = api.post("/t/query", json=body)
    while True:
        seen += ids(response)
        links = {link["rel"]: link for link in response.json()["links"]}
        assert all(link["method"] == "POST" and link["body"] == body for link in links.values())
        if "next" not in links:
            break
        response = api.post(links["next"]["href"], json=links["next"]["body"])
    assert seen == [4, 6, 1, 8, 5]


# -- counts -----------------------------------------------------------------------------------------------

COUNTS = [
    # exact: a COUNT; the range is the page's rows over the total
    pytest.param("count=exact", {"age": "gte.18", "limit": 2}, "0-1/5", 5, id="exact"),
    pytest.param("count=exact", {"age": "gte.18", "limit": 2, "offset": 2}, "2-3/5", 5, id="exact-offset"),
    pytest.param("count=exact", {"age": "gt.100"}, "*/0", 0, id="exact-empty"),
    # estimated: exact while the planner expects a small result (always here)
    pytest.param("count=estimated", {"age": "gte.18", "limit": 2}, "0-1/5", 5, id="estimated"),
    # planned: the planner's estimate on PostgreSQL (any number), exact on SQLite (the number given)
    pytest.param("count=planned", {"id": "in.(1,2,3)", "limit": 2}, None, 3, id="planned-in-list"),
    pytest.param("count=planned", {"seen": "lt.2020-01-01T12:00:00Z"}, None, 3, id="planned-datetime"),
    # none (or no Prefer): no count is taken
    pytest.param("count=none", {"age": "gte.18", "limit": 2}, "0-1/*", "absent", id="none"),
    pytest.param(None, {"age": "gte.18", "limit": 2}, "0-1/*", "absent", id="no-prefer"),
]


@pytest.mark.parametrize(("prefer", "params", "content_range", "count"), COUNTS)
def test_counts(api: TestClient, prefer: str | None, params: dict[str, Any], content_range: str | None,
                count: int | str | None) -> None:
    headers = {"Prefer": prefer} if prefer else {}
    response = api.get("/t", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    if count == "absent":
        assert "count" not in body
    elif prefer == "count=planned":
        assert isinstance(body["count"], int) and body["count"] >= 0
        assert response.headers["content-range"].endswith(f"/{body['count']}")
        if api.app.runtime.engine.dialect.name == "sqlite":
            assert body["count"] == count
    else:
        assert body["count"] == count
        assert response.headers["preference-applied"] == prefer
    if content_range is not None:
        assert response.headers["content-range"] == content_range


def test_count_on_post_query(api: TestClient) -> None:
    response = api.post("/t/query", json={"active": True, "limit": 1}, headers={"Prefer": "count=exact"})
    assert response.headers["content-range"] == "0-0/3"
    assert response.json()["count"] == 3


# -- CSV and content negotiation --------------------------------------------------------------------------


def test_csv(api: TestClient) -> None:
    response = api.get("/t", headers={"Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    text = response.text
    assert '"a,b"' in text and '"say ""hi"""' in text and '"line\nbreak"' in text  # RFC 4180 quoting
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == [f["name"] for f in FIELDS]
    assert len(parsed) == len(ROWS) + 1
    by_id = {row[0]: dict(zip(parsed[0], row, strict=True)) for row in parsed[1:]}
    assert by_id["2"]["note"] == "a,b"
    assert by_id["3"]["note"] == 'say "hi"'
    assert by_id["4"]["note"] == "line\nbreak"
    assert by_id["5"]["note"] == ""  # NULL is an empty field
    assert by_id["1"]["active"] == "true"
    assert json.loads(by_id["1"]["data"]) == {"city": "Boston", "zip": "02101"}  # JSON as JSON text


def test_csv_with_select_and_filter(api: TestClient) -> None:
    response = api.get("/t", params={"select": "id,note", "note": "like.*,*"}, headers={"Accept": "text/csv"})
    assert response.text == 'id,note\r\n2,"a,b"\r\n'


@pytest.mark.parametrize("accept", [
    "application/xml",  # not offered at all
    "text/csv;q=0, application/json;q=0",  # everything refused
])
def test_unsupported_accept_is_406(api: TestClient, accept: str) -> None:
    response = api.get("/t", headers={"Accept": accept})
    assert response.status_code == 406, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


def test_accept_prefers_by_quality(api: TestClient) -> None:
    response = api.get("/t", headers={"Accept": "application/json;q=0.5, text/csv"})
    assert response.headers["content-type"].startswith("text/csv")


# -- 400s that name what is wrong -------------------------------------------------------------------------

PROBLEMS = [
    # unknown field, in a parameter, a negated name and a logic tree
    pytest.param([("nope", "eq.1")], "/query/nope", ["'nope'"], id="unknown-field"),
    pytest.param([("or", "(nope.eq.1,id.eq.1)")], "/query/or", ["'nope'"], id="unknown-field-in-tree"),
    pytest.param([("order", "nope")], "/query/order", ["'nope'"], id="unknown-order-field"),
    pytest.param([("select", "id,nope")], "/query/select", ["'nope'"], id="unknown-select-field"),
    # unknown operator: at the top level (a bare value that cannot be one), in a tree, in order modifiers
    pytest.param([("age", "foo.1")], "/query/age", ["unknown operator", "'foo'"], id="unknown-operator"),
    pytest.param([("age", "not.foo.1")], "/query/age", ["not."], id="unknown-operator-after-not"),
    pytest.param([("or", "(name.foo.x)")], "/query/or", ["unknown operator", "'foo'"], id="unknown-operator-in-tree"),
    pytest.param([("order", "age.sideways")], "/query/order", ["'sideways'"], id="unknown-order-modifier"),
    # values not of the field's type
    pytest.param([("age", "eq.abc")], "/query/age", ["age"], id="integer-value"),
    pytest.param([("born", "gt.2020-13-01")], "/query/born", ["born"], id="date-value"),
    pytest.param([("seen", "eq.yesterday")], "/query/seen", ["seen"], id="datetime-value"),
    pytest.param([("born", "eq.19900501")], "/query/born", ["born"], id="date-compact-form"),
    pytest.param([("active", "eq.yes")], "/query/active", ["active"], id="boolean-value"),
    pytest.param([("id", "in.(1,x)")], "/query/id", ["id"], id="in-item-value"),
    pytest.param([("or", "(age.gt.x)")], "/query/or", ["age"], id="tree-value"),
    # filters that cannot apply, saying why
    pytest.param([("data", "eq.x")], "/query/data", ["JSON", "path"], id="json-without-path"),
    pytest.param([("name->>x", "eq.1")], "/query/name->>x", ["not a JSON field"], id="path-on-non-json"),
    pytest.param([("age", "like.1*")], "/query/age", ["like", "integer"], id="like-on-integer"),
    pytest.param([("age", "is.true")], "/query/age", ["boolean"], id="is-true-on-integer"),
    pytest.param([("data->>x", "is.true")], "/query/data->>x", ["boolean"], id="is-true-on-json-text"),
    pytest.param([("active", "is.maybe")], "/query/active", ["null, true, false"], id="is-unknown-value"),
    pytest.param([("order", "data")], "/query/order", ["JSON"], id="order-by-json"),
    # malformed syntax
    pytest.param([("or", "age.eq.1")], "/query/or", ["(a.eq.1,b.eq.2)"], id="or-without-parentheses"),
    pytest.param([("or", "(age.eq.1,or(id.eq.2)")], "/query/or", ["unbalanced"], id="unbalanced"),
    pytest.param([("or", "(age)")], "/query/or", ["field.operator.value"], id="tree-item-without-operator"),
    # paging bounds
    pytest.param([("limit", "0")], "/query/limit", ["1 to"], id="limit-zero"),
    pytest.param([("limit", "1001")], "/query/limit", ["1 to 1000"], id="limit-too-big"),
    pytest.param([("limit", "x")], "/query/limit", ["integer"], id="limit-not-integer"),
    pytest.param([("offset", "-1")], "/query/offset", ["integer"], id="offset-negative"),
]


@pytest.mark.parametrize(("params", "pointer", "words"), PROBLEMS)
def test_bad_query_is_400_naming_it(api: TestClient, params: list[tuple[str, str]], pointer: str,
                                    words: list[str]) -> None:
    assert_problem(api.get("/t", params=params), 400, pointer, *words)


def test_every_problem_is_listed_at_once(api: TestClient) -> None:
    response = api.get("/t", params=[("nope", "eq.1"), ("age", "eq.x"), ("order", "zzz")])
    assert response.status_code == 400
    assert {e["pointer"] for e in response.json()["errors"]} == {"/query/nope", "/query/age", "/query/order"}


BODY_PROBLEMS = [
    # unknown field and unknown operator, named
    pytest.param({"nope": 1}, "/nope", ["'nope'"], id="unknown-field"),
    pytest.param({"age": {"foo": 1}}, "/age", ["unknown operator", "'foo'"], id="unknown-operator"),
    pytest.param({"age": {"not": {"bar": 1}}}, "/age", ["'bar'"], id="unknown-operator-under-not"),
    pytest.param({"age": {}}, "/age", ["operator"], id="empty-operators"),
    # wrong types, JSON without a path, paging bounds
    pytest.param({"age": "abc"}, "/age", ["age"], id="integer-value"),
    pytest.param({"name": 5}, "/name", ["5"], id="string-value"),
    pytest.param({"data": {"city": "Boston"}}, "/data", ["JSON", "path"], id="json-without-path"),
    pytest.param({"limit": 0}, "/limit", ["1 to"], id="limit-zero"),
    pytest.param({"order": "nope"}, "/order", ["'nope'"], id="unknown-order-field"),
]


@pytest.mark.parametrize(("body", "pointer", "words"), BODY_PROBLEMS)
def test_bad_query_body_is_400_naming_it(api: TestClient, body: dict[str, Any], pointer: str,
                                         words: list[str]) -> None:
    assert_problem(api.post("/t/query", json=body), 400, pointer, *words)
