"""The payload side of protected fields: `protected`/`searchable` on fields, `encryptionSchema` on table
entries and at `data`, and the structural refusals (each an issue with a pointer). Keys and engines are
checked at generation by `generator.crypto` (test_crypto.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from generator.errors import InvalidPayload
from generator.payload import parse_payload
from generator.payload.specs import EncryptionEntry

Load = Callable[[str], dict[str, Any]]
BASE = "/data_resource_schema/data"
TABLE = f"{BASE}/dataDictionary/0"
AES = {"type": "AES_256_GCM", "key": "PEOPLE_KEY"}


def payload(fields: list[dict[str, Any]] | None = None, table: Any = None, everywhere: Any = None,
            **schema: Any) -> dict[str, Any]:
    fields = fields if fields is not None else [{"name": "ssn", "type": "string", "protected": True}]
    entry: dict[str, Any] = {"name": "People", "tableSchema": {
        "fields": [{"name": "id", "type": "integer"}, *fields], "primaryKey": "id", **schema}}
    if table is not None:
        entry["encryptionSchema"] = table
    data: dict[str, Any] = {"dataDictionary": [entry]}
    if everywhere is not None:
        data["encryptionSchema"] = everywhere
    return {"data_resource_schema": {"data": data, "api": {"apiSpec": {}}}}


def issues(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidPayload) as caught:
        parse_payload(body)
    return [(i.pointer, i.message) for i in caught.value.issues]


def test_protected_fields_and_entries_parse_into_specs() -> None:
    fields = [{"name": "ssn", "type": "string", "protected": True, "searchable": True},
              {"name": "notes", "type": "object", "protected": True}, {"name": "plain"}]
    table = {"ssn": {**AES, "previousKeys": ["PEOPLE_KEY_2025"]}, "*": {"type": "AWS_AES_Engine", "key": "KMS"}}
    generation = parse_payload(payload(fields, table, {"*": {"type": "AES_GCM_Engine", "key": "GLOBAL"}}))
    people = generation.resource("people")
    ssn, notes, plain = (people.field(n) for n in ("ssn", "notes", "plain"))
    assert (ssn.protected, ssn.searchable, notes.protected, notes.searchable) == (True, True, True, False)
    assert not plain.protected and not plain.searchable
    assert people.encryption_entry("ssn") == EncryptionEntry("AES_256_GCM", "PEOPLE_KEY", ("PEOPLE_KEY_2025",))
    assert people.encryption_entry("ssn").pointer == f"{TABLE}/encryptionSchema/ssn"  # type: ignore[union-attr]
    assert people.encryption_entry("notes") == EncryptionEntry("AWS_AES_Engine", "KMS")  # the table's "*"
    assert generation.encryption == (("*", EncryptionEntry("AES_GCM_Engine", "GLOBAL")),)
    assert people.field_pointer("notes") == f"{TABLE}/tableSchema/fields/2"
    assert [f.name for f in people.protected_fields] == ["ssn", "notes"]
    hash(people)  # specs stay hashable


def test_lookup_order() -> None:
    fields = [{"name": n, "protected": True} for n in ("own", "starred")]
    generation = parse_payload(payload(fields, {"own": AES}, {"*": {"type": "AES_256_GCM", "key": "GLOBAL"}}))
    people = generation.resource("people")
    assert generation.encryption_entry(people, "own").key == "PEOPLE_KEY"  # type: ignore[union-attr]
    assert generation.encryption_entry(people, "starred").key == "GLOBAL"  # type: ignore[union-attr]
    bare = parse_payload(payload(fields, {"own": AES}))
    assert bare.encryption_entry(bare.resource("people"), "starred") is None  # build_ciphers reports it


@pytest.mark.parametrize("name", ["all_types.json", "default.json", "foreign_key_valid.json"])
def test_corpus_payloads_parse_as_before(load_payload: Load, name: str) -> None:
    generation = parse_payload(load_payload(name))
    assert generation.encryption == ()
    assert all(r.encryption == () and not r.protected_fields for r in generation.resources)


def test_every_type_can_be_protected(load_payload: Load) -> None:
    body = load_payload("all_types.json")
    entry = body["data_resource_schema"]["data"]["dataDictionary"][0]
    key = entry["tableSchema"]["primaryKey"]
    for field in entry["tableSchema"]["fields"]:
        field["protected"] = field["searchable"] = field["name"] != key
    entry["encryptionSchema"] = {"*": AES}
    generation = parse_payload(body)
    types = {f.type for f in generation.resources[0].protected_fields}
    assert len(types) == 15


CASES = [
    # (fields, table encryptionSchema, global encryptionSchema, pointer, words in the message)
    ([{"name": "ssn", "searchable": True}], None, None, f"{TABLE}/tableSchema/fields/1/searchable",
     "searchable applies to protected fields only"),
    ([{"name": "ssn", "protected": "yes"}], None, None, f"{TABLE}/tableSchema/fields/1/protected",
     "protected must be true or false"),
    ([{"name": "ssn", "protected": True, "constraints": {"unique": True}}], {"*": AES}, None,
     f"{TABLE}/tableSchema/fields/1/protected", "is unique, which the database cannot check on ciphertext"),
    (None, ["not", "an", "object"], None, f"{TABLE}/encryptionSchema", "encryptionSchema must be an object"),
    (None, {"ssn": "PEOPLE_KEY"}, None, f"{TABLE}/encryptionSchema/ssn", "must be an object with type"),
    (None, {"ssn": {"key": "K"}}, None, f"{TABLE}/encryptionSchema/ssn/type", "type must be a non-empty string"),
    (None, {"ssn": {"type": "AES_256_GCM", "key": ""}}, None, f"{TABLE}/encryptionSchema/ssn/key",
     "key must be a non-empty string"),
    (None, {"ssn": {**AES, "previousKeys": "OLD"}}, None, f"{TABLE}/encryptionSchema/ssn/previousKeys",
     "previousKeys must be an array"),
    (None, {"sn": AES}, None, f"{TABLE}/encryptionSchema/sn", "'sn' is not a declared field"),
    (None, None, {"ssn": AES}, f"{BASE}/encryptionSchema/ssn", 'holds only "*"'),
    (None, None, {"*": {"type": 7, "key": "K"}}, f"{BASE}/encryptionSchema/*/type", "non-empty string"),
    (None, None, "AES", f"{BASE}/encryptionSchema", "must be an object"),
]


@pytest.mark.parametrize(("fields", "table", "everywhere", "pointer", "words"), CASES)
def test_structural_refusals(fields: Any, table: Any, everywhere: Any, pointer: str, words: str) -> None:
    found = issues(payload(fields, table, everywhere))
    assert any(p == pointer and words in m for p, m in found), found


def test_protected_keys_are_refused() -> None:
    fields = [{"name": "id", "type": "integer", "protected": True}]
    body = payload([], {"*": AES})
    body["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"]["fields"] = fields
    [(pointer, message)] = issues(body)
    assert pointer == f"{TABLE}/tableSchema/fields/0/protected" and "part of the primary key" in message


def test_protected_foreign_keys_are_refused() -> None:
    body = payload([{"name": "team_id", "type": "integer", "protected": True}], {"*": AES},
                   foreignKeys=[{"fields": "team_id", "reference": {"resource": "team", "fields": "id"}}])
    team = {"name": "team", "tableSchema": {"fields": [{"name": "id", "type": "integer"}], "primaryKey": "id"}}
    body["data_resource_schema"]["data"]["dataDictionary"].append(team)
    [(pointer, message)] = issues(body)
    assert pointer == f"{TABLE}/tableSchema/fields/1/protected" and "part of a foreign key" in message


def test_refusals_hold_without_validation() -> None:
    body = payload([{"name": "ssn", "searchable": True}])
    body["ignore_validation"] = True
    assert issues(body)[0][0] == f"{TABLE}/tableSchema/fields/1/searchable"


def test_entries_do_not_change_the_digest_of_other_payloads() -> None:
    body = payload([{"name": "ssn"}])
    before = parse_payload(copy.deepcopy(body))
    body["data_resource_schema"]["data"]["encryptionSchema"] = {"*": AES}
    after = parse_payload(body)
    assert before.resources == after.resources and before.digest != after.digest  # the payload did change
