"""Fixtures for emulator tests: a started Emulator (virtual time) with keys in a private
ITPUMP_HOME, and a PumpClient connected to it through the real socket transport."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pumphil.emulator import Emulator
from pumphost.client import PumpClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))  # rx_helpers


@pytest.fixture
def itpump_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "itpump-home"
    monkeypatch.setenv("ITPUMP_HOME", str(home))
    return home


@pytest.fixture
def emu(itpump_home: Path, tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path / "state", seed=1) as e:
        yield e


@pytest.fixture
def client(emu: Emulator) -> Iterator[PumpClient]:
    c = PumpClient.open(emu.serial_url, key_file=emu.key_file)
    try:
        yield c
    finally:
        c.close()
