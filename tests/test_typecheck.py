"""Typed host/HIL code passes mypy; the firmware type-checks against the MicroPython rp2 stubs
(micropython-rp2-rpi-pico-stubs + micropython-stdlib-stubs as the typeshed), so a call to a
CPython-only API in pumpcore/pumpfw is caught without a board."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mypy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, check=False)


@pytest.mark.timeout(600)
def test_host_and_hil_code_type_checks() -> None:
    r = _mypy("host/pumphost", "hil/pumphil")
    assert r.returncode == 0, r.stdout[-3000:]


@pytest.mark.timeout(600)
def test_firmware_type_checks_against_micropython_stubs() -> None:
    env = dict(os.environ, MYPYPATH="firmware")
    shed = sysconfig.get_paths()["purelib"]
    assert (Path(shed) / "stdlib" / "VERSIONS").exists(), "micropython-stdlib-stubs not installed"
    r = _mypy("--custom-typeshed-dir", shed, "-p", "pumpfw", "-p", "pumpcore", env=env)
    assert r.returncode == 0, r.stdout[-3000:]
