"""The metadata graph's pure parts, without a service: URN forms and keyed JSON Patch."""

from __future__ import annotations

from typing import Any

import pytest

from generator.metadata.patch import PatchError, apply_patch, check_keys
from generator.metadata.urns import BadUrn, parse_urn


@pytest.mark.parametrize(("text", "entity_type", "name"), [
    ("urn:li:dataset:(urn:li:dataPlatform:drg,patient,PROD)", "dataset", "patient"),
    ("urn:li:dataset:(urn:li:dataPlatform:hive,db.schema.table,DEV)", "dataset", "db.schema.table"),
    ("urn:li:dataProduct:clinic", "dataProduct", "clinic"),
    ("urn:li:corpGroup:ROCKET", "corpGroup", "ROCKET"),
    ("urn:li:corpuser:jdoe@example.org", "corpuser", "jdoe@example.org"),
    ("urn:li:dataJob:(urn:li:dataFlow:(airflow,nightly,prod),load_patients)", "dataJob", "load_patients"),
])  # fmt: skip
def test_urns_parse(text: str, entity_type: str, name: str) -> None:
    urn = parse_urn(text)
    assert (urn.entity_type, urn.name, str(urn)) == (entity_type, name, text)


@pytest.mark.parametrize(("text", "reason"), [
    ("dataset:patient", "must start with 'urn:li:'"),
    ("urn:li:table:patient", "not an entity type"),
    ("urn:li:dataset:patient", "urn:li:dataset:(urn:li:dataPlatform:<platform>,<name>,<ENV>)"),
    ("urn:li:dataset:(urn:li:dataPlatform:drg,patient)", "three parts"),
    ("urn:li:dataset:(drg,patient,PROD)", "not a data platform URN"),
    ("urn:li:dataset:(urn:li:dataPlatform:drg,patient,MARS)", "not an environment"),
    ("urn:li:corpuser:", "an id without spaces"),
    ("urn:li:corpGroup:two words", "an id without spaces"),
    ("urn:li:dataJob:(nightly,load)", "urn:li:dataFlow"),
])  # fmt: skip
def test_bad_urns_say_why(text: str, reason: str) -> None:
    with pytest.raises(BadUrn, match=None) as raised:
        parse_urn(text)
    assert reason in str(raised.value)


def tag(name: str, source: str) -> dict[str, Any]:
    return {"tag": name, "attribution": {"source": source}}


KEYS = check_keys({"tags": ["attribution␟source", "tag"]})


def test_partial_keys_remove_a_group_and_full_keys_one_element() -> None:
    value = {"tags": [tag("a", "s1"), tag("b", "s1"), tag("a", "s2")]}
    assert apply_patch(value, [{"op": "remove", "path": "/tags/s1"}], KEYS) == {"tags": [tag("a", "s2")]}
    assert apply_patch(value, [{"op": "remove", "path": "/tags/s2/a"}], KEYS) == {"tags": value["tags"][:2]}
    assert apply_patch(value, [{"op": "remove", "path": "/tags/s3/a"}], KEYS) == value  # absent: no change


def test_keyed_arrays_nested_in_elements_and_plain_arrays_beside_them() -> None:
    keys = check_keys({"fields": ["fieldPath"], "tags": ["tag"]})
    value = {"fields": [{"fieldPath": "id", "tags": [{"tag": "pk"}]}, {"fieldPath": "name"}], "notes": ["x"]}
    patched = apply_patch(value, [
        {"op": "add", "path": "/fields/id/tags/pii", "value": {"tag": "pii"}},
        {"op": "add", "path": "/notes/-", "value": "y"},  # an array nobody keyed: indexes, as in RFC 6902
    ], keys)
    assert patched == {"fields": [{"fieldPath": "id", "tags": [{"tag": "pk"}, {"tag": "pii"}]},
                                  {"fieldPath": "name"}], "notes": ["x", "y"]}


@pytest.mark.parametrize(("operations", "pointer"), [
    ([], "/patch"),
    ([{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/missing"}], "/patch/1"),
    ([{"op": "test", "path": "/a", "value": 2}], "/patch/0"),
    ([{"path": "/a"}], "/patch/0"),
    ([{"op": "replace", "path": "", "value": [1]}], "/patch"),  # an aspect stays an object
])  # fmt: skip
def test_failing_patches_name_the_operation(operations: list[Any], pointer: str) -> None:
    with pytest.raises(PatchError) as raised:
        apply_patch({"a": 1}, operations, {})
    assert raised.value.issues[0].pointer == pointer


def test_malformed_array_keys_are_refused() -> None:
    with pytest.raises(PatchError) as raised:
        check_keys({"tags": []})
    assert raised.value.issues[0].pointer == "/arrayPrimaryKeys/tags"
