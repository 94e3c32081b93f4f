"""The real rp2 port (official MicroPython v1.28.0 RPI_PICO firmware) in an emulated RP2040
(rp2040js): fixtures shared by tests/rp2.

A board is expensive to boot (~5-10 s wall: the chip runs busy Python at a fraction of real
time), so each test module drives ONE board through a story, test by test, in file order; a
module-scoped fixture owns it. A hang of the port or of Node fails the test with the board's
console (pumphil.rp2.target.Rp2Error), and the board is killed when the module ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pumphil.rp2.target import Rp2Board
from pumphost.deploy import FirmwareBuild, build_firmware
from rp2_helpers import board_failed

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "core"))  # rx_helpers

@pytest.fixture(scope="session")
def fw_build() -> FirmwareBuild:
    return build_firmware()


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Any:
    """Print a figure to the terminal (shown in `make test` output, not only on failure)."""

    def write(line: str) -> None:
        with capsys.disabled():
            print(f"\n[rp2] {line}", flush=True)
    return write


@pytest.fixture(autouse=True)
def _console_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failing rp2 test prints the tail of its board's console."""
    yield
    rep = getattr(request.node, "rep_call", None)
    board = request.node.funcargs.get("board") if hasattr(request.node, "funcargs") else None
    if rep is not None and rep.failed and isinstance(board, Rp2Board):
        sys.stderr.write(board_failed(board, f"{request.node.nodeid} failed") + "\n")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
