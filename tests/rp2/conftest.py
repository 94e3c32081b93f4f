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
def report(record_property: Any) -> Any:
    """Report a figure: printed in the run's "figures" section (tests/conftest.py)."""

    def write(line: str) -> None:
        record_property("figure", line)
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
    outcome: Any = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each xdist_group on one worker under `--dist loadgroup` (make test). pytest-xdist
    3.8 tags a grouped test by rewriting `item._nodeid` with an "@group" suffix, which pytest 9
    no longer reads (the id is `item._id`), so its scheduler spreads the group; this gives the
    suffix to the id pytest reads. Without it the story modules here fail (their tests share one
    board and run in order)."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId  # pytest's own node id type (no public constructor)

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]
