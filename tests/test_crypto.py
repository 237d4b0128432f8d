"""Protected fields, raw keys (AES-256-GCM): exact round trips of every type, authentication failures, key
parsing, the encryptionSchema lookup order, rotation, and blind indexes. KMS: test_crypto_kms.py."""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.crypto import (
    DecryptionFailed,
    FieldCipher,
    associated_data,
    blind,
    build_ciphers,
    envelope,
    from_text,
    to_text,
)
from generator.crypto.cipher import column_prefix, key_suffix
from generator.crypto.errors import KeyProblem
from generator.crypto.keys import decode_key, fingerprint, read_key
from generator.errors import InvalidPayload
from generator.payload import parse_payload
from generator.payload.specs import Generation

KEY_A, KEY_B, KEY_C = (os.urandom(32) for _ in range(3))
ENV = {"KEY_A": base64.b64encode(KEY_A).decode(), "KEY_B": KEY_B.hex(), "KEY_C": base64.b64encode(KEY_C).decode()}
TYPES = ("string", "number", "integer", "boolean", "date", "time", "datetime", "year", "yearmonth", "duration",
         "object", "array", "geojson", "geopoint", "any")  # fmt: skip


def generation(fields: list[dict[str, Any]], table: dict[str, Any] | None = None,
               everywhere: dict[str, Any] | None = None, name: str = "things") -> Generation:
    """One table `things` (key `id`) with `fields`, its encryptionSchema `table`, and the global one."""
    entry: dict[str, Any] = {"name": name, "tableSchema": {"fields": [{"name": "id", "type": "integer"}, *fields],
                                                           "primaryKey": "id"}}
    if table is not None:
        entry["encryptionSchema"] = table
    data: dict[str, Any] = {"dataDictionary": [entry]}
    if everywhere is not None:
        data["encryptionSchema"] = everywhere
    return parse_payload({"data_resource_schema": {"data": data, "api": {"apiSpec": {}}}})


def cipher_for(field_type: str = "string", *, key: str = "KEY_A", previous: tuple[str, ...] = (),
               searchable: bool = False, env: dict[str, str] = ENV, **extra: Any) -> FieldCipher:
    spec = {"name": "secret", "type": field_type, "protected": True, "searchable": searchable, **extra}
    entry = {"type": "AES_256_GCM", "key": key, "previousKeys": list(previous)}
    return build_ciphers(generation([spec], {"secret": entry}), env)[("things", "secret")]


AAD = associated_data("things", "secret", [1])

# One value of each type as api/values.py converts it (JSON bodies parsed with parse_float=Decimal).
VALUES = [
    ("string", "héllo, wörld ✓ \u0000-free"),
    ("string", ""),
    ("number", Decimal("1.10")),  # trailing zero kept
    ("number", Decimal("-0")),
    ("number", Decimal("1.7976931348623157E+308")),
    ("number", Decimal("0.000000000000000000000000000000012345678901234567890123")),  # beyond 28 digits
    ("integer", 2**63 - 1),
    ("integer", -(2**63)),
    ("boolean", True),
    ("boolean", False),
    ("date", date(2024, 2, 29)),
    ("time", time(0, 0)),
    ("time", time(23, 59, 59, 999999)),
    ("datetime", datetime(2024, 5, 17, 10, 30)),  # naive stays naive
    ("datetime", datetime(2024, 5, 17, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
    ("datetime", datetime(2024, 5, 17, 10, 30, tzinfo=UTC)),
    ("datetime", datetime(2024, 5, 17, 10, 30, tzinfo=timezone(timedelta(hours=-15, minutes=-59)))),
    ("year", 2024),
    ("yearmonth", "2024-05"),
    ("duration", "P1Y2M3DT4H5M6.5S"),
    ("object", {"a": Decimal("1.50"), "b": [1, "x", None, True], "c": {"d": 2**70}}),
    ("array", [Decimal("1E+2"), "two", {"three": 3}, [], {}]),
    ("geojson", {"type": "Point", "coordinates": [Decimal("102.0"), Decimal("0.5")]}),
    ("geopoint", "90.5, 45"),
    ("geopoint", [Decimal("90.5"), 45]),
    ("geopoint", {"lon": Decimal("90.5"), "lat": 45}),
    ("any", "text"),
    ("any", 12),
    ("any", [None, False]),
]


def same(left: Any, right: Any) -> bool:
    """Equal, of the same type, and written alike (Decimal digits, datetime offsets), recursively."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, datetime):
        naive = (left.tzinfo is None, right.tzinfo is None)
        return left == right and left.utcoffset() == right.utcoffset() and naive[0] == naive[1]
    return left == right and str(left) == str(right)


@pytest.mark.parametrize(("field_type", "value"), VALUES)
def test_every_type_round_trips_exactly(field_type: str, value: Any) -> None:
    cipher = cipher_for(field_type)
    stored = cipher.encrypt(value, AAD)
    assert isinstance(stored, bytes) and not any(repr(value).encode() in stored for value in VALUES[2:3])
    assert same(cipher.decrypt(stored, AAD), value)
    assert same(cipher.decrypt(from_text(to_text(stored)), AAD), value)  # the TEXT column form


def test_every_table_schema_type_is_covered() -> None:
    assert {t for t, _ in VALUES} == set(TYPES)


def test_null_stays_null_and_nonces_differ() -> None:
    cipher = cipher_for()
    assert cipher.encrypt(None, AAD) is None and cipher.decrypt(None, AAD) is None
    assert cipher.encrypt("same", AAD) != cipher.encrypt("same", AAD)  # a random nonce per value


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
OFFSETS = st.integers(-15 * 60 - 59, 15 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=150, deadline=None)
@given(value=st.text() | st.integers() | st.booleans() | st.decimals(allow_nan=False, allow_infinity=False)
       | st.dates() | st.times() | st.datetimes() | st.datetimes(timezones=OFFSETS)
       | st.lists(JSON, max_size=4) | st.dictionaries(st.text(max_size=5), JSON, max_size=4))
def test_round_trip_property(value: Any) -> None:
    cipher = _PROPERTY_CIPHER
    assert same(cipher.decrypt(cipher.encrypt(value, AAD), AAD), _json_view(value))


def _json_view(value: Any, inside: bool = False) -> Any:
    """Inside JSON values a Decimal without fraction or exponent comes back as an int (as request bodies
    parse it, so the API never hands over such a Decimal); everything else is exact."""
    if isinstance(value, dict):
        return {k: _json_view(v, True) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_view(v, True) for v in value]
    if inside and isinstance(value, Decimal) and not any(c in str(value) for c in ".eE"):
        return int(value)
    return value


_PROPERTY_CIPHER = cipher_for("any")


def test_json_decimals_keep_their_digits() -> None:
    cipher = cipher_for("object")
    value = {"n": Decimal("0.1000"), "e": Decimal("1.5E-7")}
    assert same(cipher.decrypt(cipher.encrypt(value, AAD), AAD), value)


# --- authentication: tampering, swapping, the wrong key ---------------------------------------------------

def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


@pytest.mark.parametrize("index", [0, 1, 2, 9, 10, 21, 22, -17, -1], ids=[
    "version", "kind", "key-id-first", "key-id-last", "nonce-first", "nonce-last", "ciphertext", "tag-first",
    "tag-last"])
def test_tampered_bytes_fail(index: int) -> None:
    cipher = cipher_for()
    stored = cipher.encrypt("secret value", AAD)
    with pytest.raises(DecryptionFailed) as caught:
        cipher.decrypt(_flip(stored, index), AAD)
    assert "secret value" not in str(caught.value)


@pytest.mark.parametrize("stored", [b"", b"\x01", b"\x02\x01" + bytes(40), b"\x01\x09" + bytes(40),
                                    b"\x01\x01" + bytes(20)], ids=["empty", "short", "version", "kind", "truncated"])
def test_malformed_values_fail(stored: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        cipher_for().decrypt(stored, AAD)


@pytest.mark.parametrize("other", [
    associated_data("things", "secret", [2]),  # another row
    associated_data("things", "other", [1]),  # another column
    associated_data("others", "secret", [1]),  # another table
    associated_data("things", "secret", ["1"]),  # the key as text, not a number
    associated_data("things", "secret", [1, 2]),  # a longer key
    b"",
], ids=["row", "column", "table", "key-type", "key-length", "none"])
def test_a_value_moved_elsewhere_fails(other: bytes) -> None:
    cipher = cipher_for()
    with pytest.raises(DecryptionFailed, match="another row or column"):
        cipher.decrypt(cipher.encrypt("moved", AAD), other)


def test_associated_data_compares_keys_by_value() -> None:
    stamp = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert associated_data("t", "c", [1]) == associated_data("t", "c", [Decimal("1.00")])
    assert associated_data("t", "c", [stamp]) == associated_data("t", "c", [stamp.astimezone(timezone(timedelta(
        hours=2)))])
    assert associated_data("t", "cx", []) != associated_data("tc", "x", [])  # length-prefixed parts


def test_another_key_fails_without_showing_it() -> None:
    stored = cipher_for(key="KEY_A").encrypt("v", AAD)
    with pytest.raises(DecryptionFailed, match="not this field's key") as caught:
        cipher_for(key="KEY_B").decrypt(stored, AAD)
    assert ENV["KEY_A"] not in str(caught.value) and KEY_A.hex() not in str(caught.value)


# --- keys from the environment ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    base64.b64encode(KEY_A).decode(),
    f"  {base64.b64encode(KEY_A).decode()}\n",  # surrounding whitespace
    KEY_A.hex(),
    KEY_A.hex().upper(),
], ids=["base64", "base64-whitespace", "hex", "HEX"])
def test_keys_parse(text: str) -> None:
    assert decode_key(text) == KEY_A
    assert read_key("K", {"K": text}).id == fingerprint(KEY_A)


@pytest.mark.parametrize(("text", "reason"), [
    (base64.b64encode(os.urandom(16)).decode(), "decodes to 16 bytes"),  # AES-128
    (base64.b64encode(os.urandom(33)).decode(), "decodes to 33 bytes"),
    (os.urandom(32).hex()[:63], "neither"),  # 63 hex digits
    (base64.urlsafe_b64encode(bytes([0xFB] * 32)).decode(), "neither"),  # URL-safe alphabet
    ("not a key at all!", "neither"),
], ids=["16-bytes", "33-bytes", "63-hex", "urlsafe", "text"])
def test_bad_keys_name_the_variable_never_the_value(text: str, reason: str) -> None:
    with pytest.raises(KeyProblem) as caught:
        read_key("MY_KEY", {"MY_KEY": text})
    assert "MY_KEY" in str(caught.value) and reason in str(caught.value) and text not in str(caught.value)


@pytest.mark.parametrize("env", [{}, {"MY_KEY": ""}, {"MY_KEY": "  "}], ids=["unset", "empty", "blank"])
def test_unset_key(env: dict[str, str]) -> None:
    with pytest.raises(KeyProblem, match="MY_KEY is not set"):
        read_key("MY_KEY", env)


def test_reprs_hide_key_material() -> None:
    key = read_key("K", {"K": KEY_A.hex()})
    assert KEY_A.hex() not in repr(key) and str(KEY_A) not in repr(key)
    cipher = cipher_for(searchable=True)
    assert str(cipher.blind_keys[0]) not in repr(cipher) and "blind_keys" not in repr(cipher)


# --- build_ciphers: the lookup order and errors at generation ---------------------------------------------

def _entry(key: str, engine: str = "AES_256_GCM") -> dict[str, str]:
    return {"type": engine, "key": key}


def test_lookup_order_field_then_table_star_then_global_star() -> None:
    fields = [{"name": n, "type": "string", "protected": True} for n in ("own", "starred")]
    both = generation(fields, {"own": _entry("KEY_A"), "*": _entry("KEY_B")}, {"*": _entry("KEY_C")})
    ciphers = build_ciphers(both, ENV)
    assert ciphers[("things", "own")].engine.key_id == fingerprint(KEY_A)
    assert ciphers[("things", "starred")].engine.key_id == fingerprint(KEY_B)
    only_global = build_ciphers(generation(fields, {"own": _entry("KEY_A")}, {"*": _entry("KEY_C")}), ENV)
    assert only_global[("things", "starred")].engine.key_id == fingerprint(KEY_C)
    assert set(only_global) == {("things", "own"), ("things", "starred")}  # plain fields get no cipher


@pytest.mark.parametrize("engine", ["AES_256_GCM", "AES_GCM_Engine", "aes_gcm_engine"])
def test_engine_names(engine: str) -> None:
    spec = [{"name": "s", "protected": True}]
    cipher = build_ciphers(generation(spec, {"s": _entry("KEY_A", engine)}), ENV)[("things", "s")]
    assert cipher.decrypt(cipher.encrypt("x", AAD), AAD) == "x"


POINTER = "/data_resource_schema/data/dataDictionary/0/tableSchema/fields/2"


@pytest.mark.parametrize(("table", "env", "expected"), [
    ({"other": _entry("KEY_A")}, ENV, "no encryptionSchema entry covers it"),
    ({"*": _entry("KEY_A", "ROT13")}, ENV, "unknown encryption engine 'ROT13'"),
    ({"*": _entry("NOPE")}, ENV, "NOPE is not set"),
    ({"*": _entry("SHORT")}, {"SHORT": base64.b64encode(b"k" * 16).decode()}, "SHORT does not hold a 256-bit key"),
    ({"*": {**_entry("KEY_A"), "previousKeys": ["OLD"]}}, ENV, "OLD is not set"),
], ids=["no-entry", "engine", "unset", "short-key", "unset-previous"])
def test_generation_errors_point_at_the_field(table: dict[str, Any], env: dict[str, str], expected: str) -> None:
    fields = [{"name": "other", "type": "string"}, {"name": "secret", "type": "string", "protected": True}]
    with pytest.raises(InvalidPayload) as caught:
        build_ciphers(generation(fields, table), env)
    [issue] = caught.value.issues
    assert issue.pointer == POINTER and expected in issue.message and "things.secret" in issue.message
    assert not any(value in issue.message for value in env.values())


def test_every_bad_field_is_reported() -> None:
    fields = [{"name": n, "protected": True} for n in ("a", "b", "c")]
    with pytest.raises(InvalidPayload) as caught:
        build_ciphers(generation(fields, {"a": _entry("UNSET_1"), "b": _entry("KEY_A")}), ENV)
    assert [i.pointer[-1] for i in caught.value.issues] == ["1", "3"]  # a (unset) and c (no entry)


def test_fields_sharing_a_key_share_an_engine() -> None:
    fields = [{"name": n, "protected": True} for n in ("a", "b")]
    ciphers = build_ciphers(generation(fields, {"*": _entry("KEY_A")}), ENV)
    assert ciphers[("things", "a")].engine is ciphers[("things", "b")].engine


# --- rotation ------------------------------------------------------------------------------------------------

def test_previous_keys_decrypt_and_rotation_moves_values_to_the_current_key() -> None:
    old = cipher_for(key="KEY_A").encrypt(Decimal("12.50"), AAD)
    rotated = cipher_for(key="KEY_B", previous=("KEY_A",))
    assert rotated.needs_rotation(old) and rotated.decrypt(old, AAD) == Decimal("12.50")
    fresh = rotated.reencrypt(old, AAD)
    assert not rotated.needs_rotation(fresh) and envelope.key_id(fresh) == fingerprint(KEY_B)
    assert same(rotated.decrypt(fresh, AAD), Decimal("12.50"))
    with pytest.raises(DecryptionFailed):
        cipher_for(key="KEY_B").decrypt(old, AAD)  # once KEY_A is dropped from previousKeys
    with pytest.raises(DecryptionFailed):
        rotated.reencrypt(old, associated_data("things", "secret", [2]))  # rotation authenticates first


def test_envelope_overhead() -> None:
    cipher = cipher_for()
    for size in (0, 1, 1000):
        value = "x" * size
        assert len(cipher.encrypt(value, AAD)) == size + 1 + 38  # 1 tag byte of the codec, 38 of the envelope
    stored = cipher.encrypt("x", AAD)
    assert stored[:2] == bytes((envelope.VERSION, envelope.AES_GCM)) and stored[2:10] == fingerprint(KEY_A)


# --- blind indexes --------------------------------------------------------------------------------------------

PLUS_TWO = timezone(timedelta(hours=2))
EQUAL = [
    ("number", [Decimal("1"), Decimal("1.0"), Decimal("1.000"), Decimal("1E0"), 1, Decimal("0.1E1")]),
    ("number", [Decimal("0"), Decimal("-0"), Decimal("0.00"), 0]),
    ("number", [Decimal("1.23456789012345678901234567890123"), Decimal("1.234567890123456789012345678901230")]),
    ("integer", [5, Decimal("5")]),
    ("datetime", [datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 1, 1, 14, tzinfo=PLUS_TWO),
                  datetime(2024, 1, 1, 12)]),
    ("time", [time(10, 0), time(10, 0, 0, 0)]),
    ("object", [{"a": 1, "b": [Decimal("2.0")]}, {"b": [2], "a": Decimal("1.00")}]),
    ("geopoint", ["90.5,45", " 90.50 , 45.0 ", [Decimal("90.5"), 45], {"lon": Decimal("90.50"), "lat": 45}]),
    ("string", ["Ab", "Ab"]),
]
DIFFERENT = [
    ("number", [Decimal("1.0000000000000000000000000000001"), Decimal("1")]),  # no rounding to 28 digits
    ("datetime", [datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 1, 1, 12, tzinfo=PLUS_TWO)]),
    ("any", ["1", 1]),
    ("any", [True, 1]),
    ("object", [{"a": "1"}, {"a": 1}]),
    ("string", ["Ab", "ab"]),
]


@pytest.mark.parametrize(("field_type", "values"), EQUAL)
def test_equal_values_share_a_blind_index(field_type: str, values: list[Any]) -> None:
    cipher = cipher_for(field_type, searchable=True)
    assert len({cipher.blind(v) for v in values}) == 1


@pytest.mark.parametrize(("field_type", "values"), DIFFERENT)
def test_different_values_do_not(field_type: str, values: list[Any]) -> None:
    cipher = cipher_for(field_type, searchable=True)
    assert len({cipher.blind(v) for v in values}) == len(values)


def test_instants_at_the_ends_of_the_calendar() -> None:
    cipher = cipher_for("datetime", searchable=True)
    first = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))  # before year 1 in UTC
    assert cipher.blind(first) == cipher.blind(datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=6))))
    assert cipher.blind(datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-10)))) is not None
    assert associated_data("t", "c", [first]) == associated_data("t", "c", [first.replace(hour=1, tzinfo=timezone(
        timedelta(hours=6)))])


def test_uuids_compare_without_case() -> None:
    cipher = cipher_for("string", searchable=True, format="uuid")
    assert cipher.blind("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11") == cipher.blind("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")


def test_blind_index_only_when_searchable() -> None:
    assert cipher_for().blind("x") is None and cipher_for().search_terms("x") == ()
    assert cipher_for(searchable=True).blind(None) is None and cipher_for(searchable=True).search_terms(None) == ()
    assert len(cipher_for(searchable=True).blind("x") or b"") == 32


def test_hkdf_labels_separate_keys() -> None:
    derived = blind.derive_key(KEY_A, "things", "secret")
    others = [blind.derive_key(KEY_A, "things", "other"), blind.derive_key(KEY_A, "others", "secret"),
              blind.derive_key(KEY_A, "thing", "ssecret"), blind.derive_key(KEY_A, "things", "secret", b"other"),
              blind.derive_key(KEY_B, "things", "secret"), KEY_A]
    assert derived not in others and len(set(others)) == len(others)
    cipher = cipher_for(searchable=True)
    assert cipher.blind("x") == blind.index(derived, b"x")
    same_key_other_field = build_ciphers(generation([{"name": "other", "protected": True, "searchable": True}],
                                                    {"*": _entry("KEY_A")}), ENV)[("things", "other")]
    assert same_key_other_field.blind("x") != cipher.blind("x")


def test_blind_index_lookups_hold_while_rotation_runs() -> None:
    before = cipher_for(key="KEY_A", searchable=True)
    during = cipher_for(key="KEY_B", previous=("KEY_A",), searchable=True)
    old_index = before.blind("alice")
    assert old_index in during.search_terms("alice")  # rows not yet rotated are still found
    stored, new_index = during.rotate(before.encrypt("alice", AAD), AAD)
    assert new_index == during.blind("alice") == during.search_terms("alice")[0] != old_index
    assert during.decrypt(stored, AAD) == "alice" and not during.needs_rotation(stored)


def test_layer_rules() -> None:
    """crypto/ imports neither the database nor the web layers, and boto3 only when KMS is used."""
    import subprocess
    import sys

    code = ("import sys, generator.crypto; print([m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'boto3', 'botocore') or m.startswith(('generator.api', 'generator.app', "
            "'generator.models'))])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


@settings(max_examples=200, deadline=None)
@given(number=st.decimals(allow_nan=False, allow_infinity=False), zeros=st.integers(0, 40),
       moment=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=OFFSETS),
       offset=OFFSETS)
def test_blind_index_equality_property(number: Decimal, zeros: int, moment: datetime, offset: timezone) -> None:
    """Trailing zeros never change a number's index; another offset never changes an instant's."""
    sign, digits, exponent = number.as_tuple()
    padded = Decimal((sign, (*digits, *([0] * zeros)), int(exponent) - zeros))
    assert padded == number and _NUMBERS.blind(padded) == _NUMBERS.blind(number)
    assert _DATETIMES.blind(moment.astimezone(offset)) == _DATETIMES.blind(moment)


_NUMBERS = cipher_for("number", searchable=True)
_DATETIMES = cipher_for("datetime", searchable=True)


# --- values written before: the stored format stays readable --------------------------------------------------

GOLDEN_ENV = {"GOLDEN_KEY": base64.b64encode(bytes(range(32))).decode()}  # a fixed key, so stored bytes are too
# (type, value, row key, stored bytes, blind index) as the service wrote them on 2026-12-01 (format version 1,
# kind 1); any change to the format, the associated data or the blind-index normalisation fails here.
GOLDEN = [
    ("string", "héllo", [1], "0101630dcd2966c43366190ef297be26c038ea511dc7cdb58ab827cd77b22969d771ccb8cd8afbeb36adc3"
     "9672", "24d031fc9f32959d120a05072ff5f9fc6260ea82a2bb94867a22c6eff0ae49d9"),
    ("string", "", [-7], "0101630dcd2966c43366c1f97947604417ea5da2dda6b3e893f7704af0a9af447ec6c75f53713c",
     "020db16f286b377e16662b5e7c6d83e687714741fb25625e65264c0b6bbd5bbc"),
    ("number", Decimal("1.10"), [0], "0101630dcd2966c43366a8e338251765a4b1628832ca0a2544254204742e8dfe65362714994bee"
     "a25d2f2f", "bb4e748fb281ac762a7571dc301a689ef6716ca92bdf009eaef2b8c81cccedce"),
    ("integer", -(2**63), [120], "0101630dcd2966c433663aa1b7080346c483643fbe45f25f0393053e0daa5aa583b9ecba4dbad105a1"
     "f360a8c412fe31385b32eab7bbdfeb4be599", "411a1718546954f8bd4609e2edd21e0d794279a040aae6a6bd2ca5f2f14054d1"),
    ("boolean", True, ["abc"], "0101630dcd2966c433665315c8f039bba47547b32789f1db04d5b5d5ccb96ea4f59484d9e2aaddc3",
     "8510e4895b9a216dadf8906687fff785c868e3131ebd46d4c505eb64498e47c5"),
    ("date", date(2024, 2, 29), [Decimal("1.50")], "0101630dcd2966c43366a06de523c46b34313046a086d027cb2c2dcabb19e9ca"
     "5255c4fbdd5ea06a605806ba15f12f0ac0", "e9c19bc430d9a415ba647abd7312c1cea96a84d9def9f2af6d247bc8482b0f8d"),
    ("time", time(23, 59, 59, 999999), [datetime(2024, 5, 17, 10, 30, tzinfo=timezone(timedelta(hours=2)))],
     "0101630dcd2966c43366206d14b3b2cfcedc7218fe5170ba33512f9d0655fe43936991a0be8fdc1793bb4b871acdf41314bcbfa6d011",
     "d98a446050ab0439e6bbda0b890cf166d3a59e5296eb0f5e45fef381e7443319"),
    ("datetime", datetime(2024, 5, 17, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
     [date(2020, 1, 2)], "0101630dcd2966c43366edf4976eeb3efc88a35270880868b50e1728c34339b1a9b8abad6a6a686e743887"
     "6b253634ec8ceb976adc6d81c0fcd2d2d014555c4f2a00c2fc9995ec",
     "943aaa816ec6cbb3f8b069424a746ca4c2ee03d9b6c0fa3635c0cb9a7a74a195"),
    ("object", {"a": Decimal("1.50"), "b": [1, "x", None, True]}, [3, "x"], "0101630dcd2966c43366d16887f80dcae22f6d"
     "9a1c913920a4a98705525c0aab384ef116b4f37d3bb0bc2d8b63e3f8b82028dadaba46436aa8654ab54f810bb1178058adc43f76",
     "96028f523ae313fdcc61099bd4f69b1e14fefb4bc8aa2f17d57aeb44a93fa98c"),
    ("geopoint", "90.5, 45", [10**20], "0101630dcd2966c433662afb8cbfff7d1b971477002dad2028368d9c84293a69c276acd6e610d7"
     "be31cb45742df1f5", "4b195266cfcaf6a7fab611c41b8091de56861541ffb4fe4bb6a28989a9e9f354"),
]


@pytest.mark.parametrize(("field_type", "value", "key", "stored", "index"), GOLDEN,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(GOLDEN)])
def test_values_written_before_still_read(field_type: str, value: Any, key: list[Any], stored: str,
                                          index: str) -> None:
    """Rows already in a database keep reading, and their blind indexes still match."""
    spec = {"name": "secret", "type": field_type, "protected": True, "searchable": True}
    entry = {"type": "AES_256_GCM", "key": "GOLDEN_KEY"}
    cipher = build_ciphers(generation([spec], {"secret": entry}), GOLDEN_ENV)[("things", "secret")]
    assert same(cipher.decrypt(bytes.fromhex(stored), associated_data("things", "secret", key)), value)
    assert cipher.blind(value).hex() == index and cipher.search_terms(value) == (bytes.fromhex(index),)
    opened = cipher.decrypt_many([None, bytes.fromhex(stored)], [key_suffix([2]), key_suffix(key)])  # a page's way
    assert opened[0] is None and same(opened[1], value)
    assert cipher.blind_many([value, None]) == [bytes.fromhex(index), None]


# --- columns: a page or a bulk write at once ----------------------------------------------------------------

@pytest.mark.parametrize(("field_type", "value"), VALUES)
def test_a_column_seals_and_opens_as_single_values_do(field_type: str, value: Any) -> None:
    cipher = cipher_for(field_type, searchable=field_type != "any")
    keys = [[1], [2], [3], [10**20]]
    suffixes = [key_suffix(key) for key in keys]
    sealed = cipher.encrypt_many([value, None, value, value], suffixes)
    assert sealed[1] is None and len({s[10:22] for s in sealed if s is not None}) == 3  # a nonce per value
    for stored, key in zip(sealed, keys, strict=True):  # each one readable alone, for its own row only
        assert stored is None or same(cipher.decrypt(stored, associated_data("things", "secret", key)), value)
    assert all(same(v, w) for v, w in zip(cipher.decrypt_many(sealed, suffixes), [value, None, value, value],
                                         strict=True))
    with pytest.raises(DecryptionFailed, match="another row or column"):
        cipher.decrypt_many(sealed, [suffixes[0], suffixes[1], suffixes[3], suffixes[2]])  # two rows swapped


@pytest.mark.parametrize("position", [0, 3, 7])
@pytest.mark.parametrize(("bad", "reason"), [
    (lambda s: _flip(s, 30), "does not authenticate"),
    (lambda s: _flip(s, 3), "not this field's key"),
    (lambda s: s[:25], "truncated"),
    (lambda s: b"\x02" + s[1:], "unknown format version"),
], ids=["tampered", "key-id", "truncated", "version"])
def test_one_bad_value_fails_its_column(position: int, bad: Callable[[bytes], bytes], reason: str) -> None:
    cipher = cipher_for()
    suffixes = [key_suffix([i]) for i in range(8)]
    sealed: list[bytes | None] = list(cipher.encrypt_many([f"plain {i}" for i in range(8)], suffixes))
    sealed[position] = bad(sealed[position])  # type: ignore[arg-type]
    with pytest.raises(DecryptionFailed, match=reason) as caught:
        cipher.decrypt_many(sealed, suffixes)
    assert "plain" not in str(caught.value)


def test_a_column_mixes_current_and_previous_keys_while_rotation_runs() -> None:
    before, during = cipher_for(key="KEY_A"), cipher_for(key="KEY_B", previous=("KEY_A",))
    suffixes = [key_suffix([i]) for i in range(4)]
    old, new = before.encrypt_many(["a", "b", "c", "d"], suffixes), during.encrypt_many(["a", "b", "c", "d"], suffixes)
    mixed = [old[0], new[1], old[2], new[3]]
    assert during.decrypt_many(mixed, suffixes) == ["a", "b", "c", "d"]
    assert [during.needs_rotation(s) for s in mixed] == [True, False, True, False]
    with pytest.raises(DecryptionFailed, match="not this field's key"):
        before.decrypt_many(mixed, suffixes)


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_the_blind_indexer_is_hmac_sha256(key: bytes, message: bytes) -> None:
    assert blind.indexer(key)(message) == blind.index(key, message) == hmac.new(key, message, "sha256").digest()


@given(st.integers(-(2**70), 2**70))
def test_integer_keys_bind_as_exact_numbers(key: int) -> None:
    """The fast path for integer row keys writes the same associated data as any other number would."""
    assert key_suffix([key]) == key_suffix([Decimal(key)]) == associated_data("t", "c", [key])[len(
        column_prefix("t", "c")):]
