"""Relationships: foreign keys of any name and type (composite, self-referencing), the 409s they cause,
many-to-many routes over keys that are not `id` (text, composite) and default.json's pair both ways,
embedding 1:N in both directions and M:N, and the statement counts that keep embedding and link writes
constant whatever the page or the key list holds. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

PROBLEM_JSON = "application/problem+json"


def field(name: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def table(name: str, fields: list[dict[str, Any]], key: str | list[str],
          foreign_keys: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"fields": fields, "primaryKey": key}
    if foreign_keys:
        schema["foreignKeys"] = foreign_keys
    return {"name": name, "tableSchema": schema}


def fk(fields: str | list[str], resource: str, reference: str | list[str]) -> dict[str, Any]:
    return {"fields": fields, "reference": {"resource": resource, "fields": reference}}


def crud(name: str) -> dict[str, Any]:
    return {f"/{name}": {"get": {}, "post": {}}, f"/{name}/{{id}}": {"get": {}, "put": {}, "patch": {}, "delete": {}}}


def related(parent: str, child: str) -> dict[str, Any]:
    return {f"/{parent}/{{id}}/{child}": {"get": {}, "put": {}, "patch": {}},
            f"/{parent}/{{id}}/{child}/{{child_id}}": {"delete": {}}}


# dept: composite text+integer key. employee: text key, a self-reference under a camelCase name, a composite
# foreign key to dept. review: two foreign keys to employee. skill: text key. project: integer key `pid`.
# Pairs: employee-skill (text keys both sides), dept-project (composite key on one side).
ORG = {"data_resource_schema": {
    "data": {
        "dataDictionary": [
            table("dept", [field("code"), field("site", "integer"), field("name")], ["code", "site"]),
            table("employee", [field("emp_id"), field("name"), field("managerId"), field("dept_code"),
                               field("dept_site", "integer")], "emp_id",
                  [fk("managerId", "", "emp_id"), fk(["dept_code", "dept_site"], "dept", ["code", "site"])]),
            table("review", [field("rid", "integer"), field("author"), field("subject"), field("stars", "integer")],
                  "rid", [fk("author", "employee", "emp_id"), fk("subject", "employee", "emp_id")]),
            table("skill", [field("slug"), field("label")], "slug"),
            table("project", [field("pid", "integer"), field("title")], "pid"),
        ],
        "relationships": {"manyToMany": [["employee", "skill"], ["Dept", "Project"]]},
    },
    "api": {"apiSpec": {"paths": {
        **crud("dept"), **crud("employee"), **crud("review"), **crud("skill"), **crud("project"),
        **related("employee", "skill"), **related("skill", "employee"),
        **related("dept", "project"), **related("project", "dept"),
    }}},
}}

DEPTS = [{"code": "ENG", "site": 1, "name": "Engineering"}, {"code": "ENG", "site": 2, "name": "Eng West"},
         {"code": "OPS", "site": 1, "name": "Operations"}]
EMPLOYEES = [  # boss ← alice ← bob, carol; dave has no manager and no department
    {"emp_id": "boss", "name": "Boss", "managerId": None, "dept_code": "ENG", "dept_site": 1},
    {"emp_id": "alice", "name": "Alice", "managerId": "boss", "dept_code": "ENG", "dept_site": 1},
    {"emp_id": "bob", "name": "Bob", "managerId": "alice", "dept_code": "OPS", "dept_site": 1},
    {"emp_id": "carol", "name": "Carol", "managerId": "alice", "dept_code": "ENG", "dept_site": 2},
    {"emp_id": "dave", "name": "Dave", "managerId": None, "dept_code": None, "dept_site": None},
]
SKILLS = [{"slug": s, "label": s.upper()} for s in ("go", "sql", "rust", "css")]
PROJECTS = [{"pid": 10, "title": "Apollo"}, {"pid": 20, "title": "Gemini"}, {"pid": 30, "title": "Mercury"}]
REVIEWS = [{"rid": 1, "author": "boss", "subject": "alice", "stars": 5},
           {"rid": 2, "author": "alice", "subject": "bob", "stars": 4},
           {"rid": 3, "author": "alice", "subject": "carol", "stars": 3}]


def created(response: Any) -> Any:
    assert response.status_code in (200, 201, 204), response.text
    return response


def assert_problem(response: Any, status: int, *words: str, pointers: list[str] | None = None) -> dict[str, Any]:
    """A problem of `status` whose detail (or one of its errors) contains every one of `words`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    text = " ".join([body["detail"], *(e["message"] for e in body.get("errors", []))])
    for word in words:
        assert word in text, (word, body)
    if pointers is not None:
        assert sorted(e["pointer"] for e in body["errors"]) == sorted(pointers), body
    return body


@pytest.fixture
def org(client: TestClient) -> TestClient:
    created(client.post("/generator", json=ORG))
    for name, rows in (("dept", DEPTS), ("employee", EMPLOYEES), ("skill", SKILLS), ("project", PROJECTS),
                       ("review", REVIEWS)):
        created(client.post(f"/{name}", json=rows))
    return client


def keys(response: Any, name: str, key: str | tuple[str, ...]) -> list[Any]:
    assert response.status_code == 200, response.text
    rows = response.json()[name]
    return [row[key] if isinstance(key, str) else tuple(row[k] for k in key) for row in rows]


# -- foreign keys: self-references, composite keys, and their 409s -------------------------------------------


def test_self_reference_and_composite_foreign_keys_are_written_and_read(org: TestClient) -> None:
    assert org.get("/employee/bob").json()["managerId"] == "alice"
    assert keys(org.get("/employee", params={"managerId": "eq.alice"}), "employee", "emp_id") == ["bob", "carol"]
    assert keys(org.get("/employee", params={"dept_code": "eq.ENG", "dept_site": "eq.1"}), "employee",
                "emp_id") == ["alice", "boss"]
    created(org.patch("/employee/dave", json={"managerId": "dave"}))  # one's own manager: a self-loop is a row
    assert org.get("/employee/dave").json()["managerId"] == "dave"


MISSING_PARENTS = [
    # a self-reference to a key that does not exist: field, value and the table itself are named
    pytest.param("post", "/employee", {"emp_id": "eve", "managerId": "ghost"}, ["managerId", "'ghost'", "employee"],
                 ["managerId"], id="self-reference"),
    # a composite foreign key: both fields, both values, the parent table
    pytest.param("post", "/employee", {"emp_id": "eve", "dept_code": "ENG", "dept_site": 9},
                 ["dept_code", "dept_site", "'ENG'", "9", "dept"], ["dept_code", "dept_site"], id="composite"),
    # changing a reference to a missing parent
    pytest.param("patch", "/employee/bob", {"managerId": "nobody"}, ["managerId", "'nobody'", "employee"],
                 ["managerId"], id="patch"),
    # a table with two foreign keys to the same table names the one that is missing
    pytest.param("post", "/review", {"rid": 9, "author": "boss", "subject": "zed"}, ["subject", "'zed'", "employee"],
                 ["subject"], id="second-of-two-keys"),
]


@pytest.mark.parametrize(("method", "path", "body", "words", "fields"), MISSING_PARENTS)
def test_missing_parent_is_409_naming_field_value_and_table(org: TestClient, method: str, path: str,
                                                            body: dict[str, Any], words: list[str],
                                                            fields: list[str]) -> None:
    problem = assert_problem(org.request(method, path, json=body), 409, *words)
    assert problem["fields"] == fields
    assert org.get("/employee/eve").status_code == 404
    assert org.get("/employee/bob").json()["managerId"] == "alice"


BLOCKED_DELETES = [
    # employees reference the department by a composite key: the child table and how many rows
    pytest.param("/dept/ENG,1", "2 rows of employee reference this dept", id="composite-parent"),
    # a manager referenced by one report, through the self-reference
    pytest.param("/employee/boss", "1 row of employee references this employee", id="self-reference"),
    # alice is referenced by two reports and by reviews through two foreign keys
    pytest.param("/employee/alice", "2 rows of employee reference this employee", id="several-children"),
]


@pytest.mark.parametrize(("path", "words"), BLOCKED_DELETES)
def test_blocked_delete_is_409_naming_child_table_and_count(org: TestClient, path: str, words: str) -> None:
    assert_problem(org.delete(path), 409, words)
    assert org.get(path).status_code == 200


def test_blocked_delete_names_every_referencing_table(org: TestClient) -> None:
    problem = assert_problem(org.delete("/employee/alice"), 409, "employee", "review")
    assert "2 rows of review reference this employee" in problem["detail"]


def test_delete_unblocked_once_children_are_gone_and_links_cascade(org: TestClient) -> None:
    created(org.put("/employee/dave/skill", json=["go", "sql"]))
    created(org.delete("/employee/dave"))  # links are association rows: they go with the row
    assert keys(org.get("/skill/go/employee"), "employee", "emp_id") == []
    created(org.patch("/employee/carol", json={"dept_code": None, "dept_site": None}))
    assert org.delete("/dept/ENG,2").status_code == 204


# -- many-to-many routes ----------------------------------------------------------------------------------


def test_text_keys_both_ways(org: TestClient) -> None:
    answer = org.put("/employee/alice/skill", json=["sql", "go"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["skill"] == ["sql", "go"]
    assert keys(org.get("/employee/alice/skill"), "skill", "slug") == ["go", "sql"]
    assert keys(org.get("/skill/sql/employee"), "employee", "emp_id") == ["alice"]
    created(org.patch("/skill/go/employee", json=["bob", "alice"]))  # alice already linked: added once
    assert keys(org.get("/employee/bob/skill"), "skill", "slug") == ["go"]
    assert keys(org.get("/skill/go/employee"), "employee", "emp_id") == ["alice", "bob"]
    assert org.delete("/employee/alice/skill/go").status_code == 204
    assert keys(org.get("/skill/go/employee"), "employee", "emp_id") == ["bob"]
    assert_problem(org.delete("/employee/alice/skill/go"), 404)
    created(org.put("/employee/alice/skill", json=[]))  # [] clears
    assert keys(org.get("/employee/alice/skill"), "skill", "slug") == []
    assert keys(org.get("/skill/sql/employee"), "employee", "emp_id") == []


def test_composite_keys_both_ways(org: TestClient) -> None:
    # a composite key is an object of its key fields
    answer = org.put("/project/10/dept", json=[{"code": "ENG", "site": 1}, {"code": "OPS", "site": 1}])
    assert answer.status_code == 200, answer.text
    assert answer.json()["dept"] == [{"code": "ENG", "site": 1}, {"code": "OPS", "site": 1}]
    assert keys(org.get("/project/10/dept"), "dept", ("code", "site")) == [("ENG", 1), ("OPS", 1)]
    assert keys(org.get("/dept/ENG,1/project"), "project", "pid") == [10]
    created(org.patch("/dept/ENG,1/project", json=[20, 30]))
    assert keys(org.get("/dept/ENG,1/project"), "project", "pid") == [10, 20, 30]
    assert keys(org.get("/project/30/dept"), "dept", ("code", "site")) == [("ENG", 1)]
    assert org.delete("/dept/ENG,1/project/10").status_code == 204
    assert keys(org.get("/project/10/dept"), "dept", ("code", "site")) == [("OPS", 1)]
    assert org.delete("/project/20/dept/ENG,1").status_code == 204
    assert keys(org.get("/dept/ENG,1/project"), "project", "pid") == [30]


def test_the_list_is_paged_filtered_and_ordered_like_any_list(org: TestClient) -> None:
    created(org.put("/employee/alice/skill", json=["go", "sql", "rust", "css"]))
    seen: list[str] = []
    href: str | None = "/employee/alice/skill?order=label.desc&limit=3"
    while href is not None:
        response = org.get(href)
        seen += keys(response, "skill", "slug")
        href = next((link["href"] for link in response.json()["links"] if link["rel"] == "next"), None)
    assert seen == ["sql", "rust", "go", "css"]
    with_s = org.get("/employee/alice/skill", params={"label": "like.*S*"})
    assert keys(with_s, "skill", "slug") == ["css", "rust", "sql"]
    response = org.get("/employee/alice/skill", params={"limit": 1}, headers={"Prefer": "count=exact"})
    assert response.headers["content-range"] == "0-0/4"
    assert response.json()["count"] == 4
    response = org.get("/employee/alice/skill", params={"select": "slug", "slug": "in.(go,css)"},
                       headers={"Accept": "text/csv"})
    assert response.text == "slug\r\ncss\r\ngo\r\n"
    assert org.get("/employee/alice/skill", headers={"Accept": "application/xml"}).status_code == 406
    assert_problem(org.get("/employee/alice/skill", params={"nope": "eq.1"}), 400, "'nope'")


UNKNOWN_PARENTS = [
    pytest.param("get", "/employee/ghost/skill", None, id="get"),
    pytest.param("put", "/employee/ghost/skill", ["go"], id="put"),
    pytest.param("patch", "/employee/ghost/skill", ["go"], id="patch"),
    pytest.param("delete", "/employee/ghost/skill/go", None, id="delete"),
    pytest.param("get", "/dept/ENG,7/project", None, id="composite-get"),
    pytest.param("put", "/project/99/dept", [], id="put-empty"),
]


@pytest.mark.parametrize(("method", "path", "body"), UNKNOWN_PARENTS)
def test_unknown_parent_is_404(org: TestClient, method: str, path: str, body: Any) -> None:
    assert_problem(org.request(method, path, json=body), 404)


UNKNOWN_CHILDREN = [
    # text keys: each unknown key named with its index, nothing changed
    pytest.param("put", "/employee/alice/skill", ["go", "nope", "zzz"], ["/1", "/2"], ["nope", "zzz"], id="put"),
    pytest.param("patch", "/employee/alice/skill", ["zzz", "go"], ["/0"], ["zzz"], id="patch"),
    # composite keys
    pytest.param("put", "/project/10/dept", [{"code": "ENG", "site": 1}, {"code": "ENG", "site": 9}], ["/1"],
                 ["ENG,9"], id="composite"),
    # keys malformed for the child's key type
    pytest.param("put", "/dept/ENG,1/project", [10, "x"], ["/1"], ["integer"], id="wrong-type"),
]


@pytest.mark.parametrize(("method", "path", "body", "pointers", "words"), UNKNOWN_CHILDREN)
def test_unknown_child_keys_are_400_naming_them_and_change_nothing(
        org: TestClient, method: str, path: str, body: list[Any], pointers: list[str], words: list[str]) -> None:
    created(org.put("/employee/alice/skill", json=["sql"]))
    created(org.put("/project/10/dept", json=[{"code": "OPS", "site": 1}]))
    created(org.put("/dept/ENG,1/project", json=[30]))
    assert_problem(org.request(method, path, json=body), 400, *words, pointers=pointers)
    assert keys(org.get("/employee/alice/skill"), "skill", "slug") == ["sql"]
    assert keys(org.get("/project/10/dept"), "dept", ("code", "site")) == [("OPS", 1)]
    assert keys(org.get("/dept/ENG,1/project"), "project", "pid") == [30]


@pytest.mark.parametrize("body", [{"slug": "go"}, "go", None, [["go"]]])
def test_link_body_must_be_an_array_of_keys(org: TestClient, body: Any) -> None:
    assert org.put("/employee/alice/skill", json=body).status_code == 400


def test_default_payload_pair_both_ways(client: TestClient, load_payload: Callable[[str], dict[str, Any]]) -> None:
    """default.json as shipped: people-team with GET/PUT/PATCH from both sides; /team has no POST, so teams
    are created by PUT /team/{id}."""
    created(client.post("/generator", json=load_payload("default.json")))
    for name in ("Ann", "Bob", "Cy"):
        created(client.post("/people", json={"name": name}))
    for team_id, name in ((1, "Red"), (2, "Blue"), (3, "Green")):
        created(client.put(f"/team/{team_id}", json={"name": name}))
    created(client.put("/people/1/team", json=[1, 2]))
    created(client.patch("/team/3/people", json=[1, 2]))
    created(client.put("/team/2/people", json=[3]))  # replaces the people of team 2: Ann leaves it
    assert keys(client.get("/people/1/team"), "team", "id") == [1, 3]
    assert keys(client.get("/people/2/team"), "team", "id") == [3]
    assert keys(client.get("/people/3/team"), "team", "id") == [2]
    assert keys(client.get("/team/3/people"), "people", "id") == [1, 2]
    assert client.get("/team/1/people").json()["people"] == [{"id": 1, "name": "Ann"}]
    assert_problem(client.put("/people/1/team", json=[1, 4]), 400, "team", pointers=["/1"])
    assert_problem(client.get("/people/9/team"), 404)
    embedded = client.get("/people", params={"embed": "team", "order": "id"}).json()["people"]
    assert [[t["id"] for t in person["team"]] for person in embedded] == [[1, 3], [3], [2]]
    embedded = client.get("/team", params={"select": "id,people(name)"}).json()["team"]
    assert embedded == [{"id": 1, "people": [{"name": "Ann"}]}, {"id": 2, "people": [{"name": "Cy"}]},
                        {"id": 3, "people": [{"name": "Ann"}, {"name": "Bob"}]}]


# -- embedding ---------------------------------------------------------------------------------------------


def _by_key(response: Any, name: str, key: str, embedded: str) -> dict[Any, Any]:
    assert response.status_code == 200, response.text
    return {row[key]: row[embedded] for row in response.json()[name]}


def test_embed_one_to_many_both_directions(org: TestClient) -> None:
    # N:1 through a self-reference (hinted by its field) and through a composite key: an object or null
    managers = _by_key(org.get("/employee", params={"embed": "employee!managerId"}), "employee", "emp_id",
                       "employee!managerId")
    assert managers["bob"]["emp_id"] == "alice" and managers["boss"] is None and managers["dave"] is None
    depts = _by_key(org.get("/employee", params={"embed": "dept"}), "employee", "emp_id", "dept")
    assert depts["carol"] == {"code": "ENG", "site": 2, "name": "Eng West"}
    assert depts["dave"] is None
    # 1:N: the self-reference's other side, and a composite key's children: lists, [] when none
    reports = _by_key(org.get("/employee", params={"embed": "employee"}), "employee", "emp_id", "employee")
    assert [r["emp_id"] for r in reports["alice"]] == ["bob", "carol"]
    assert [r["emp_id"] for r in reports["boss"]] == ["alice"]
    assert reports["bob"] == []
    staff = _by_key(org.get("/dept", params={"embed": "employee"}), "dept", "name", "employee")
    assert [e["emp_id"] for e in staff["Engineering"]] == ["alice", "boss"]
    assert [e["emp_id"] for e in staff["Operations"]] == ["bob"]


def test_embed_two_foreign_keys_to_one_table(org: TestClient) -> None:
    reviews = org.get("/review", params={"select": "rid,employee!author(name),employee!subject(name)"})
    assert reviews.status_code == 200, reviews.text
    assert reviews.json()["review"][0] == {"rid": 1, "employee!author": {"name": "Boss"},
                                           "employee!subject": {"name": "Alice"}}
    written = _by_key(org.get("/employee", params={"embed": "review!author"}), "employee", "emp_id", "review!author")
    assert [r["rid"] for r in written["alice"]] == [2, 3]
    about = _by_key(org.get("/employee", params={"embed": "review!subject"}), "employee", "emp_id", "review!subject")
    assert [r["rid"] for r in about["alice"]] == [1]
    assert_problem(org.get("/employee", params={"embed": "review"}), 400, "review!author", "review!subject")


def test_embed_many_to_many_by_embed_and_select(org: TestClient) -> None:
    created(org.put("/employee/alice/skill", json=["sql", "go"]))
    created(org.patch("/skill/go/employee", json=["bob"]))
    created(org.put("/project/10/dept", json=[{"code": "ENG", "site": 1}, {"code": "OPS", "site": 1}]))
    skills = _by_key(org.get("/employee", params={"embed": "skill"}), "employee", "emp_id", "skill")
    assert [s["slug"] for s in skills["alice"]] == ["go", "sql"] and skills["carol"] == []
    response = org.get("/employee", params={"select": "emp_id,skill(slug)", "emp_id": "in.(alice,bob)"})
    assert response.json()["employee"] == [{"emp_id": "alice", "skill": [{"slug": "go"}, {"slug": "sql"}]},
                                           {"emp_id": "bob", "skill": [{"slug": "go"}]}]
    response = org.get("/skill", params={"select": "*,employee(emp_id)", "slug": "eq.go"})
    assert response.json()["skill"] == [{"slug": "go", "label": "GO",
                                         "employee": [{"emp_id": "alice"}, {"emp_id": "bob"}]}]
    depts = _by_key(org.get("/project", params={"select": "*,dept(*)"}), "project", "pid", "dept")
    assert [(d["code"], d["site"]) for d in depts[10]] == [("ENG", 1), ("OPS", 1)] and depts[20] == []
    projects = _by_key(org.get("/dept", params={"embed": "project"}), "dept", "name", "project")
    assert [p["pid"] for p in projects["Operations"]] == [10]
    several = org.get("/employee/alice", params={})  # the item route takes no embed: unchanged
    assert "skill" not in several.json()


EMBED_PROBLEMS = [
    pytest.param({"embed": "nope"}, "/query/embed", ["'nope'", "related"], id="unrelated-table"),
    pytest.param({"select": "*,project(*)"}, "/query/select", ["'project'"], id="unrelated-in-select"),
    pytest.param({"select": "*,skill(nope)"}, "/query/select", ["'nope'", "skill"], id="unknown-embedded-field"),
]


@pytest.mark.parametrize(("params", "pointer", "words"), EMBED_PROBLEMS)
def test_bad_embed_is_400(org: TestClient, params: dict[str, str], pointer: str, words: list[str]) -> None:
    body = assert_problem(org.get("/employee", params=params), 400, *words)
    assert pointer in [e["pointer"] for e in body["errors"]]


# -- statement counts: no N+1, and link writes constant in the number of keys -------------------------------


@contextmanager
def statements(client: TestClient) -> Iterator[list[str]]:
    """Every statement sent to the database while the block runs."""
    engine = client.app.runtime.engine
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_embedding_a_page_is_a_constant_number_of_statements(org: TestClient) -> None:
    """A page of 5 parents and a page of 100 cost the same statements: one for the page, one per embed."""
    created(org.post("/employee", json=[
        {"emp_id": f"e{i:03}", "name": f"E{i}", "managerId": "alice" if i % 2 else f"e{i - 1:03}",
         "dept_code": "ENG", "dept_site": 1 + i % 2} for i in range(1, 121)]))
    for i in range(1, 121, 3):
        created(org.put(f"/employee/e{i:03}/skill", json=["go", "sql"][: i % 3 + 1]))
    embeds = "employee!managerId,employee,dept,skill,review!author"
    counts = {}
    for limit in (5, 100):
        with statements(org) as seen:
            response = org.get("/employee", params={"embed": embeds, "limit": limit})
        assert response.status_code == 200, response.text
        rows = response.json()["employee"]
        assert len(rows) == limit
        assert all({"employee!managerId", "employee", "dept", "skill", "review!author"} <= set(r) for r in rows)
        counts[limit] = len(seen)
    assert counts[5] == counts[100] <= 1 + 5 + 1, counts  # page, five embeds, maybe a BEGIN
    with statements(org) as seen:
        assert org.get("/employee/alice/skill", params={"embed": "employee", "limit": 100}).status_code == 200
    assert len(seen) <= 3 + 1, seen  # parent check, page, embed


@pytest.mark.parametrize("method", ["put", "patch"])
def test_linking_a_thousand_keys_is_a_constant_number_of_statements(org: TestClient, method: str) -> None:
    created(org.post("/skill", json=[{"slug": f"s{i:04}", "label": f"S{i}"} for i in range(1000)]))
    counts = {}
    for size in (10, 1000):
        body = [f"s{i:04}" for i in range(size)]
        with statements(org) as seen:
            response = org.request(method, "/employee/alice/skill", json=body)
        assert response.status_code == 200, response.text
        counts[size] = len(seen)
        assert len(keys(org.get("/employee/alice/skill", params={"limit": 1000}), "skill", "slug")) == size
    assert counts[10] == counts[1000] <= 6, counts


def test_foreign_key_beside_a_many_to_many_pair(client: TestClient) -> None:
    """member.home → club and a member-club pair: two relations named `member` from club's side. The pair
    keeps the plain name (its routes are found by it); the foreign key's 1:N side is hinted by its field."""
    payload = {"data_resource_schema": {
        "data": {"dataDictionary": [table("club", [field("cid", "integer"), field("name")], "cid"),
                                    table("member", [field("mid", "integer"), field("home", "integer")], "mid",
                                          [fk("home", "club", "cid")])],
                 "relationships": {"manyToMany": [["member", "club"]]}},
        "api": {"apiSpec": {"paths": {**crud("club"), **crud("member"), **related("club", "member"),
                                      **related("member", "club")}}}}}
    created(client.post("/generator", json=payload))
    created(client.post("/club", json=[{"cid": 1, "name": "A"}, {"cid": 2, "name": "B"}]))
    created(client.post("/member", json=[{"mid": 7, "home": 1}, {"mid": 8, "home": 1}]))
    created(client.put("/club/2/member", json=[7]))
    assert keys(client.get("/club/2/member"), "member", "mid") == [7]
    assert keys(client.get("/member/7/club"), "club", "cid") == [2]
    clubs = _by_key(client.get("/club", params={"embed": "member,member!home"}), "club", "cid", "member")
    assert [m["mid"] for m in clubs[2]] == [7] and clubs[1] == []
    homes = _by_key(client.get("/club", params={"embed": "member!home"}), "club", "cid", "member!home")
    assert [m["mid"] for m in homes[1]] == [7, 8] and homes[2] == []
    members = client.get("/member", params={"select": "mid,club!home(name),club(name)"}).json()["member"]
    assert members[0] == {"mid": 7, "club!home": {"name": "A"}, "club": [{"name": "B"}]}
