"""URLs with control characters get a 400 problem everywhere (schemathesis found 500s on admin routes,
whose Starlette and Flask routers disagreed about a newline in a path)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient


@pytest.mark.parametrize("path", ["/tableschema/k%0Ab", "/tableschema/a%0Bb%0A", "/people/%0A", "/x%7F", "/ui/%01"])
def test_control_characters_in_a_path_are_a_400_problem(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "control characters" in response.json()["detail"]
