"""What the dispatcher answers before any framework sees a request: 404/405 with an exact `Allow`, OPTIONS,
request limits, Swagger UI's 404s and redirects. In-process on both databases; the wire-level cases
(`OPTIONS *`, a huge declared Content-Length, WebSocket) are in tests/e2e/test_e2e_limits.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.test_errors import assert_problem

Payload = Callable[[str], dict[str, Any]]


@pytest.fixture
def served(client: TestClient, load_payload: Payload) -> TestClient:
    response = client.post("/generator", json=load_payload("default.json"))
    assert response.status_code == 201, response.text
    assert client.post("/people", json={"name": "Ann"}).status_code == 201
    return client


def _allow(response: Any) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",")}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        # default.json: /people has GET and POST, /people/{id} GET PUT PATCH DELETE, /team GET, /team/{id} GET PUT
        ("DELETE", "/people", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("POST", "/team/1", {"GET", "HEAD", "PUT", "OPTIONS"}),
        ("PUT", "/people/query", {"GET", "HEAD", "POST", "OPTIONS"}),  # the query route, not a key 'query'
        ("POST", "/team", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_405_allow_lists_exactly_the_whitelisted_methods(
    served: TestClient, load_payload: Payload, method: str, path: str, allowed: set[str]
) -> None:
    paths = load_payload("default.json")["data_resource_schema"]["api"]["apiSpec"]["paths"]
    template = path if path in paths else path.rsplit("/", 1)[0] + "/{id}"
    if template in paths:  # the expectation above must agree with the payload's whitelist
        assert {m.upper() for m in paths[template]} | {"HEAD", "OPTIONS"} == allowed
    response = served.request(method, path)
    body = assert_problem(response, 405)
    assert _allow(response) == allowed
    assert method in body["detail"]


def test_options_answers_allow_without_a_body(served: TestClient) -> None:
    response = served.options("/people/1")
    assert response.status_code == 204
    assert _allow(response) == {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}


def test_head_of_a_read_route_works(served: TestClient) -> None:
    response = served.head("/people/1")
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("path", ["/people/1/extra", "/nobody", "/people/", "/ui/no-such-file.js"])
def test_unknown_paths_are_404_problems(served: TestClient, path: str) -> None:
    assert_problem(served.get(path), 404)


def test_redirects_are_relative_and_never_echo_the_host(served: TestClient) -> None:
    response = served.get("/ui", headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["location"] == "/ui/"
    for path in ("/people/", "/ui/index.html/", "/health/"):
        answer = served.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert "evil.example" not in answer.headers.get("location", ""), (path, answer.headers)


def test_too_many_query_parameters_are_refused_at_once(served: TestClient) -> None:
    query = "&".join(f"p{i}=1" for i in range(8000))
    body = assert_problem(served.get(f"/people?{query}"), 400)
    assert body["errors"][0]["pointer"] == "/query"
    assert "100" in body["detail"]


def test_a_body_over_the_limit_is_413(make_client: Callable[..., TestClient], load_payload: Payload) -> None:
    client = make_client(max_body_bytes=1000)
    assert client.post("/generator", json=load_payload("default.json")).status_code == 201  # its own limit
    body = assert_problem(client.post("/people", json={"name": "x" * 2000}), 413)
    assert body["limit"] == 1000
    assert client.post("/people", json={"name": "x" * 100}).status_code == 201


def test_a_chunked_body_over_the_limit_is_413(make_client: Callable[..., TestClient], load_payload: Payload) -> None:
    client = make_client(max_body_bytes=1000)
    assert client.post("/generator", json=load_payload("default.json")).status_code == 201

    def chunks(size: int) -> Any:
        yield b'{"name": "'
        yield b"x" * size
        yield b'"}'

    headers = {"content-type": "application/json"}
    assert_problem(client.post("/people", content=chunks(2000), headers=headers), 413)
    small = client.post("/people", content=chunks(10), headers=headers)
    assert small.status_code == 201, small.text
    assert client.get(f"/people/{small.json()['id']}").json()["name"] == "x" * 10


def test_a_long_error_list_is_cut_and_says_how_long_it_was(served: TestClient) -> None:
    body = {f"unknown_{i}": i for i in range(20_000)}
    response = served.post("/people", json=body)
    problem = assert_problem(response, 400)
    assert len(problem["errors"]) == 100
    assert problem["errors_total"] == 20_000
    assert len(response.content) < 20_000


def test_a_large_body_is_parsed_and_checked_like_a_small_one(served: TestClient) -> None:
    """Bodies above the off-loop threshold take the worker-thread path: same answers."""
    big = "y" * 200_000
    created = served.post("/people", json={"name": big})
    assert created.status_code == 201, created.text
    assert served.get(f"/people/{created.json()['id']}").json()["name"] == big
    problem = assert_problem(served.post("/people", json={"name": big, "nope": 1}), 400)
    assert problem["errors"] == [{"pointer": "/nope", "message": "'nope' is not a field of this resource"}]
