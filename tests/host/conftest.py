"""Fixtures for host tests: keys in a private ITPUMP_HOME and a TCP pump server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pump_server import INFO, PumpServer
from pumphost import keys


@pytest.fixture
def itpump_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "itpump-home"
    monkeypatch.setenv("ITPUMP_HOME", str(home))
    monkeypatch.delenv("ITPUMP_PORT", raising=False)
    return home


@pytest.fixture
def keyset(itpump_home: Path) -> keys.KeySet:
    ks = keys.generate(INFO["device_id"])
    keys.save(ks, keys.default_key_path(ks.device_id))
    return ks


@pytest.fixture
def server(keyset: keys.KeySet) -> Iterator[PumpServer]:
    with PumpServer(keyset) as s:
        yield s
