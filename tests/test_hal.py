"""Every HAL implements all of pumpfw.hal: the Pico's (pumpfw.hal_rp2.PicoHal, read from its
source here since `machine` exists only on the device; tests/rp2 checks the running one on the
real port), the emulator's (pumphil.board.VirtualHal) and the MicroPython runtime's
(pumphil/mpy/mp_board.py BridgedHal, read from its source: it imports the bridge that exists only
inside the interpreter; tests/emulator/test_runtime_conformance.py runs it). Same names, same
parameters; the `fs` object too."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pumphil.board import VirtualBoard, VirtualClock, VirtualHal
from pumphil.flash import Flash
from pumphil.plant import Plant

# pumphil.board has put firmware/ on sys.path
hal = importlib.import_module("pumpfw.hal")

ROOT = Path(__file__).resolve().parents[1]
PUMPFW = ROOT / "firmware" / "pumpfw"


def _params(fn: Callable[..., Any]) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def contract(cls: type) -> dict[str, list[str] | None]:
    """Public calls of an interface class -> parameter names; attributes -> None."""
    out: dict[str, list[str] | None] = {}
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        out[name] = _params(value) if inspect.isfunction(value) else None
    return out


HAL = contract(hal.Hal)
FS = contract(hal.Fs)


def test_the_contract_names_every_call_the_shell_makes() -> None:
    # every hal.<call> in pumpfw's application code is in the contract (and `fs`)
    used: set[str] = set()
    for path in (PUMPFW / "app.py", PUMPFW / "supervisor.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "hal":
                used.add(node.attr)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "hal":
                used.add(node.attr)
    assert used, "no HAL calls found: the scan is broken"
    assert used <= set(HAL), sorted(used - set(HAL))
    assert {"battery_mv", "reset_cause", "fs"} <= set(HAL)


# --- the Pico HAL, from its source ----------------------------------------------------------------
def _class_members(path: Path, cls_name: str) -> dict[str, list[str] | None]:
    tree = ast.parse(path.read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls_name)
    out: dict[str, list[str] | None] = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = [a.arg for a in node.args.args if a.arg != "self"]
        elif isinstance(node, ast.Assign):     # ticks_ms = staticmethod(time.ticks_ms)
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out.setdefault(t.id, None)
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
                None)
    for node in ast.walk(init) if init else ():
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "self" and isinstance(node.ctx, ast.Store):
            out.setdefault(node.attr, None)
    return out


PICO = _class_members(PUMPFW / "hal_rp2.py", "PicoHal")
PICO_FS = _class_members(PUMPFW / "flashfs.py", "FlashFs")
MP_BOARD = ROOT / "hil" / "pumphil" / "mpy" / "mp_board.py"
# the HALs read from their source: (class members, fs class members) per implementation
FROM_SOURCE = {
    "pico": (PICO, PICO_FS),
    "micropython-runtime": (_class_members(MP_BOARD, "BridgedHal"),
                            _class_members(MP_BOARD, "BridgedFs")),
}


@pytest.mark.parametrize("impl,name", [(i, n) for i in FROM_SOURCE for n in sorted(HAL)])
def test_the_hals_read_from_source_implement(impl: str, name: str) -> None:
    members = FROM_SOURCE[impl][0]
    assert name in members, f"{impl} HAL lacks {name}"
    if HAL[name] is not None and members[name] is not None:
        assert members[name] == HAL[name]


@pytest.mark.parametrize("impl,name", [(i, n) for i in FROM_SOURCE for n in sorted(FS)])
def test_the_fs_read_from_source_implement(impl: str, name: str) -> None:
    assert FROM_SOURCE[impl][1].get(name) == FS[name], f"{impl} fs.{name}"


def test_the_source_reading_sees_a_missing_call(tmp_path: Path) -> None:
    # the check above can fail: a HAL without battery_mv is reported
    src = tmp_path / "h.py"
    src.write_text("class PicoHal:\n    def __init__(self):\n        self.fs = 1\n"
                   "    def wait(self, ms):\n        pass\n")
    members = _class_members(src, "PicoHal")
    assert "battery_mv" not in members and members["wait"] == ["ms"] and "fs" in members


# --- the emulator's virtual HAL -----------------------------------------------------------------
def _virtual_hal() -> VirtualHal:
    board = VirtualBoard(Plant(seed=0), Flash(None), VirtualClock(), lambda data: None)
    return VirtualHal(board)


IMPLEMENTATIONS: dict[str, Callable[[], Any]] = {"virtual": _virtual_hal}
# Calls an implementation does not have yet, by who adds them (strict: this fails once they do,
# so the entry is removed then).
PENDING: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("impl,name", [
    pytest.param(impl, name, marks=pytest.mark.xfail(strict=True, reason=PENDING[(impl, name)]))
    if (impl, name) in PENDING else (impl, name)
    for impl in IMPLEMENTATIONS for name in sorted(HAL)])
def test_every_hal_implements(impl: str, name: str) -> None:
    h = IMPLEMENTATIONS[impl]()
    assert hasattr(h, name), f"{impl} HAL lacks {name}"
    value = getattr(h, name)
    if HAL[name] is not None:
        assert callable(value)
        assert _params(value) == HAL[name], f"{impl} HAL: {name}{inspect.signature(value)}"
    if name == "fs":
        for call, params in FS.items():
            assert _params(getattr(value, call)) == params, f"{impl} fs.{call}"
