"""Fixtures: a PrestaShop emulator on loopback per test, and the key it accepts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockq.integrations.prestashop.emulator import EmulatorHandle, start_emulator

KEY = "K3Y5ECRETK3Y5ECRETK3Y5ECRETK3Y5E"
assert len(KEY) == 32


@pytest.fixture
def shop() -> Iterator[EmulatorHandle]:
    handle = start_emulator(key=KEY)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from stockq.integrations.prestashop import client

    monkeypatch.setattr(client, "DEFAULT_RETRY", client.RetryPolicy(attempts=2, backoff=(0.01,)))
