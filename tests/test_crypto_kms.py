"""Protected fields under `AWS_AES_Engine`: KMS envelope encryption against moto's real HTTP server.

KMS calls are counted twice: by a botocore event handler on the client (which names the operation) and by
the server's access log over the same window (which does not, but cannot be fooled by a client cache)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from generator.crypto import DecryptionFailed, FieldCipher, associated_data, build_ciphers
from generator.crypto.kms import KmsEngine
from generator.errors import InvalidPayload
from generator.payload import parse_payload
from generator.payload.specs import Generation
from tests.support.moto_server import MotoServer

VALUES = 10_000


class CountingKms:
    """A boto3 KMS client (from the environment, so through AWS_ENDPOINT_URL) that counts its calls."""

    def __init__(self) -> None:
        self.client = boto3.client("kms")
        self.calls: Counter[str] = Counter()
        self.client.meta.events.register("before-call.kms.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def new_key(self) -> str:
        return self.client.create_key(Description="drg test")["KeyMetadata"]["Arn"]


@pytest.fixture
def kms(aws: MotoServer) -> CountingKms:
    return CountingKms()


def generation(entry: dict[str, Any], searchable: bool = False) -> Generation:
    fields = [{"name": "id", "type": "integer"},
              {"name": "ssn", "type": "string", "protected": True, "searchable": searchable}]
    table = {"name": "people", "tableSchema": {"fields": fields, "primaryKey": "id"},
             "encryptionSchema": {"ssn": entry}}
    return parse_payload({"data_resource_schema": {"data": {"dataDictionary": [table]}, "api": {"apiSpec": {}}}})


def cipher(kms: CountingKms, env: dict[str, str], previous: tuple[str, ...] = (), searchable: bool = False,
           **options: Any) -> FieldCipher:
    entry = {"type": "AWS_AES_Engine", "key": "SSN_KMS_KEY", "previousKeys": list(previous)}
    return build_ciphers(generation(entry, searchable), env, kms_client=kms.client, **options)[("people", "ssn")]


def aad(row: int) -> bytes:
    return associated_data("people", "ssn", [row])


def post_lines(server: MotoServer) -> int:
    return sum('"POST / HTTP' in line for line in server.request_lines())


def settled_post_lines(server: MotoServer, expected: int) -> int:
    """The server writes its log line after answering; give it a moment to catch up."""
    deadline = time.monotonic() + 5
    while (count := post_lines(server)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_ten_thousand_values_cost_a_handful_of_kms_calls(kms: CountingKms, aws: MotoServer) -> None:
    env = {"SSN_KMS_KEY": kms.new_key()}
    kms.calls.clear()
    logged = post_lines(aws)
    writer = cipher(kms, env)
    stored = [writer.encrypt(f"{n:09d}", aad(n)) for n in range(VALUES)]
    assert kms.calls == {"GenerateDataKey": 1}
    reader = cipher(kms, env)  # a fresh build (a new process, say): nothing cached yet
    assert [reader.decrypt(value, aad(n)) for n, value in enumerate(stored)] == [f"{n:09d}" for n in range(VALUES)]
    assert kms.calls == {"GenerateDataKey": 1, "Decrypt": 1}
    assert settled_post_lines(aws, logged + 2) - logged == 2  # the server saw exactly those two


def test_data_keys_are_replaced_after_max_uses_and_max_age(kms: CountingKms) -> None:
    now = [0.0]
    engine = KmsEngine(kms.new_key(), client=kms.client, max_uses=100, max_age=60, clock=lambda: now[0])
    kms.calls.clear()
    stored = [engine.encrypt(b"v", aad(n)) for n in range(1000)]
    assert kms.calls == {"GenerateDataKey": 10}
    assert len({engine_wrapped(value) for value in stored}) == 10
    now[0] = 61.0
    engine.encrypt(b"v", aad(0))
    assert kms.calls["GenerateDataKey"] == 11
    assert engine.decrypt(stored[0], aad(0)) == b"v" and kms.calls["Decrypt"] == 1  # its cached key expired too


def engine_wrapped(stored: bytes) -> bytes:
    from generator.crypto import envelope

    return envelope.parse(stored).wrapped


def test_unwrapped_keys_are_bounded(kms: CountingKms) -> None:
    writer = KmsEngine(kms.new_key(), client=kms.client, max_uses=1)
    stored = [writer.encrypt(b"v", aad(n)) for n in range(5)]
    reader = KmsEngine(writer.reference, client=kms.client, max_cached=2)
    kms.calls.clear()
    for _ in range(2):
        for n, value in enumerate(stored):
            reader.decrypt(value, aad(n))
    assert kms.calls == {"Decrypt": 10}  # five keys through a cache of two, in order: every one evicted
    assert len(reader._unwrapped) == 2


def test_threads_share_one_data_key(kms: CountingKms) -> None:
    engine = KmsEngine(kms.new_key(), client=kms.client)
    kms.calls.clear()
    results: list[bytes] = []

    def work() -> None:
        results.extend(engine.encrypt(b"v", aad(n)) for n in range(500))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kms.calls == {"GenerateDataKey": 1} and len(results) == 4000
    assert len({value[-28:] for value in results}) == 4000  # distinct nonces and tags


def test_tampering_and_swapping_fail(kms: CountingKms) -> None:
    env = {"SSN_KMS_KEY": kms.new_key()}
    field = cipher(kms, env)
    stored = field.encrypt("123-45-6789", aad(1))
    wrapped_at = 12  # version, kind, key id, length: the wrapped data key starts here
    for index in (0, 2, wrapped_at + 40, len(stored) - 30, len(stored) - 1):  # moto: key id text first
        tampered = stored[:index] + bytes([stored[index] ^ 1]) + stored[index + 1:]
        with pytest.raises(DecryptionFailed) as caught:
            cipher(kms, env).decrypt(tampered, aad(1))
        assert "123-45-6789" not in str(caught.value)
    with pytest.raises(DecryptionFailed, match="another row or column"):
        field.decrypt(stored, aad(2))


def test_another_kms_key_cannot_read(kms: CountingKms) -> None:
    stored = cipher(kms, {"SSN_KMS_KEY": kms.new_key()}).encrypt("x", aad(1))
    with pytest.raises(DecryptionFailed, match="not this field's key"):
        cipher(kms, {"SSN_KMS_KEY": kms.new_key()}).decrypt(stored, aad(1))


def test_rotation_to_a_new_kms_key(kms: CountingKms) -> None:
    old_key, new_key = kms.new_key(), kms.new_key()
    stored = cipher(kms, {"SSN_KMS_KEY": old_key}).encrypt("x", aad(1))
    rotating = cipher(kms, {"SSN_KMS_KEY": new_key, "OLD": old_key}, previous=("OLD",))
    assert rotating.needs_rotation(stored) and rotating.decrypt(stored, aad(1)) == "x"
    fresh = rotating.reencrypt(stored, aad(1))
    assert not rotating.needs_rotation(fresh)
    assert cipher(kms, {"SSN_KMS_KEY": new_key}).decrypt(fresh, aad(1)) == "x"


def test_searchable_kms_fields_keep_one_wrapped_blind_key(kms: CountingKms) -> None:
    old_key, new_key = kms.new_key(), kms.new_key()
    first = cipher(kms, {"SSN_KMS_KEY": old_key}, searchable=True)
    assert first.blind_key_is_new and first.wrapped_blind_key
    assert first.blind_keys[0] not in first.wrapped_blind_key
    persisted = {("people", "ssn"): first.wrapped_blind_key}
    again = cipher(kms, {"SSN_KMS_KEY": old_key}, searchable=True, wrapped_blind_keys=persisted)
    assert not again.blind_key_is_new and again.blind("123") == first.blind("123")
    rotated = cipher(kms, {"SSN_KMS_KEY": new_key, "OLD": old_key}, previous=("OLD",), searchable=True,
                     wrapped_blind_keys=persisted)
    assert rotated.blind("123") == first.blind("123")  # the index survives the key change: no re-index
    engine = rotated.engine
    assert isinstance(engine, KmsEngine)
    rewrapped = engine.rewrap_key(first.wrapped_blind_key)
    assert cipher(kms, {"SSN_KMS_KEY": new_key}, searchable=True,
                  wrapped_blind_keys={("people", "ssn"): rewrapped}).blind("123") == first.blind("123")


def test_a_foreign_blind_key_blob_is_a_400(kms: CountingKms) -> None:
    blob = cipher(kms, {"SSN_KMS_KEY": kms.new_key()}, searchable=True).wrapped_blind_key
    with pytest.raises(InvalidPayload, match="people.ssn"):
        cipher(kms, {"SSN_KMS_KEY": kms.new_key()}, searchable=True, wrapped_blind_keys={("people", "ssn"): blob})


def test_default_client_honours_the_endpoint(aws: MotoServer) -> None:
    arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
    entry = {"type": "aws_aes_engine", "key": "K"}
    field = build_ciphers(generation(entry), {"K": arn})[("people", "ssn")]
    assert field.decrypt(field.encrypt("x", aad(1)), aad(1)) == "x"


@pytest.mark.parametrize(("env", "expected"), [({}, "K is not set"), ({"K": "two words"}, "K does not hold")])
def test_kms_reference_problems_are_400s(env: dict[str, str], expected: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        build_ciphers(generation({"type": "AWS_AES_Engine", "key": "K"}), env)
    [issue] = caught.value.issues
    assert issue.pointer.endswith("/tableSchema/fields/1") and expected in issue.message


def test_an_unknown_kms_key_is_a_kms_error(kms: CountingKms) -> None:
    from generator.crypto import KmsError

    field = cipher(kms, {"SSN_KMS_KEY": "alias/does-not-exist"})
    with pytest.raises(KmsError, match="GenerateDataKey|generate_data_key"):
        field.encrypt("x", aad(1))
