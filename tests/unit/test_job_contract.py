from __future__ import annotations

import datetime as dt
import json

import pytest

import stockq
from stockq import errors
from stockq.queue import payload
from stockq.queue.registry import Registry
from stockq.redact import MASK, redact, register_secret


class Ok(stockq.Job):
    def handle(self) -> None:
        pass


class Tuned(stockq.Job):
    name = "tests.unit.Tuned"
    queue = "import"
    tries = 4
    timeout = 90
    backoff = [1, 5, 10]
    max_exceptions = 2
    retry_until = dt.timedelta(hours=1)
    fail_on_timeout = True


def test_job_kwargs_are_attributes_and_payload() -> None:
    job = Ok(n=1, sku="A-1")
    assert job.n == 1
    assert job.sku == "A-1"
    assert job.payload_data == {"n": 1, "sku": "A-1"}


def test_job_name_defaults_to_dotted_path_and_registers() -> None:
    assert Ok.job_name() == "tests.unit.test_job_contract.Ok"
    assert stockq.default_registry.get(Ok.job_name()) is Ok
    assert stockq.default_registry.get("tests.unit.Tuned") is Tuned


def test_job_rejects_positional_and_reserved_arguments() -> None:
    with pytest.raises(TypeError, match="keyword arguments only"):
        Ok(1)
    with pytest.raises(TypeError, match="reserved"):
        Ok(queue="x")


def test_envelope_carries_limits_in_laravel_keys() -> None:
    env = Tuned(profile_id=7).envelope(now=1_000_000)
    doc = json.loads(env.encode())
    assert doc["job"] == "tests.unit.Tuned"
    assert doc["displayName"] == "tests.unit.Tuned"
    assert doc["maxTries"] == 4
    assert doc["timeout"] == 90
    assert doc["backoff"] == "1,5,10"
    assert doc["maxExceptions"] == 2
    assert doc["failOnTimeout"] is True
    assert doc["retryUntil"] == 1_000_000 + 3600
    assert doc["data"] == {"profile_id": 7}
    assert payload.decode(env.encode()) == env


@pytest.mark.parametrize(
    "value",
    [dt.date(2026, 1, 1), {1: "int key"}, float("nan"), object(), [1, {2, 3}]],
)
def test_unserializable_payload_is_refused_at_dispatch(value: object) -> None:
    with pytest.raises(errors.PayloadNotSerializable, match="'bad'"):
        Ok(bad=value).envelope()


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"uuid": "x"}', "names no job"),
        ('{"job": "X", "data": [1]}', "data is not a JSON object"),
        ('{"job": "X", "maxTries": "many"}', "invalid field"),
    ],
)
def test_decode_rejects_corrupt_payloads(raw: str, message: str) -> None:
    with pytest.raises(errors.InvalidPayload, match=message):
        payload.decode(raw)


def test_backoff_list_repeats_its_last_value() -> None:
    backoff = payload.parse_backoff("1,5,10")
    assert [payload.backoff_for(backoff, n) for n in (1, 2, 3, 4, 9)] == [1, 5, 10, 10, 10]
    assert payload.backoff_for(None, 3) == 0
    assert payload.parse_backoff(30) == (30,)
    with pytest.raises(ValueError):
        payload.parse_backoff("-1")


def test_registry_refuses_a_name_taken_by_another_class() -> None:
    registry = Registry()

    class A(stockq.Job):
        abstract = True
        name = "same"

    class B(stockq.Job):
        abstract = True
        name = "same"

    registry.register(A)
    with pytest.raises(errors.ConfigurationError, match="taken"):
        registry.register(B)
    with pytest.raises(errors.UnknownJob):
        registry.get("nothing")


def test_redact_masks_registered_secrets_and_ws_key() -> None:
    register_secret("SECRETKEY123456")
    text = redact("failed: https://shop/api?ws_key=OTHERKEY&x=1 with SECRETKEY123456 and http://u:p@host/")
    assert "SECRETKEY123456" not in text
    assert "OTHERKEY" not in text
    assert "u:p@" not in text
    assert MASK in text


def test_fast_encoding_matches_the_envelope_in_laravels_key_order() -> None:
    uuid, raw = Tuned(profile_id=7).encoded(delay=5, now=1_000_000)
    doc = json.loads(raw)
    expected = json.loads(Tuned(profile_id=7).envelope(delay=5, now=1_000_000).encode())
    expected["uuid"] = uuid
    assert doc == expected
    assert list(doc) == ["uuid", "displayName", "job", "maxTries", "maxExceptions", "failOnTimeout", "backoff",
                         "timeout", "retryUntil", "data", "createdAt", "delay"]  # fmt: skip
    with pytest.raises(errors.PayloadNotSerializable):
        Ok(bad=object()).encoded()
