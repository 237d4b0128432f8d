"""Temporary smoke test while building; replaced by the full suites."""


def test_default_payload_round_trip(client, load_payload):
    response = client.post("/generator", json=load_payload("default.json"))
    assert response.status_code == 201, response.text
    created = client.post("/people", json={"name": "Ann"})
    assert created.status_code == 201, created.text
    assert client.get(created.headers["location"]).json() == {"id": created.json()["id"], "name": "Ann"}
