"""The dependency rule of docs/architecture.md and the portability rules of DESIGN.md, enforced.

pumpcore -> pumpcore only (+ hashlib, array, binascii), with no exception and no code path of a
runtime of its own (`sys.implementation` is never consulted); pumpfw -> pumpcore + MicroPython modules;
pumphost -> pumpcore + pyserial + stdlib; nothing outside tests and the CLI's emulate/simulate
and campaign commands imports pumphil. No float literals or true division in pumpcore.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUMPCORE = ROOT / "firmware" / "pumpcore"
PUMPFW = ROOT / "firmware" / "pumpfw"
PUMPHOST = ROOT / "host" / "pumphost"

CORE_ALLOWED = {"pumpcore", "hashlib", "array", "binascii"}
DEVICE_FORBIDDEN = {"typing", "dataclasses", "enum", "abc", "__future__"}
MICROPYTHON_MODULES = {
    "machine", "time", "os", "gc", "sys", "micropython", "hashlib", "array", "struct",
    "select", "rp2", "errno", "io", "json", "binascii",
}


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append(("<relative>", node.lineno))
            else:
                found.append(((node.module or "").split(".")[0], node.lineno))
    return found


def _py_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_pumpcore_imports_only_pumpcore() -> None:
    bad = []
    for path in _py_files(PUMPCORE):
        for mod, line in _imports(path):
            if mod not in CORE_ALLOWED:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_pumpcore_never_asks_which_runtime_it_runs_on() -> None:
    # one core, the Pico's: no branch on sys.implementation (or anything else) picks other code
    bad = []
    for path in _py_files(PUMPCORE):
        text = path.read_text()
        for needle in ("sys.implementation", "implementation.name", "VECTOR"):
            if needle in text:
                bad.append(f"{path.relative_to(ROOT)} mentions {needle}")
    assert not bad, "\n".join(bad)


def test_pumpcore_has_no_float_literals_or_true_division() -> None:
    bad = []
    for path in _py_files(PUMPCORE):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} float literal {node.value!r}")
            if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Div):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} true division")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} float() call")
    assert not bad, "\n".join(bad)


def test_firmware_avoids_cpython_only_modules() -> None:
    bad = []
    for root in (PUMPCORE, PUMPFW):
        for path in _py_files(root):
            for mod, line in _imports(path):
                if mod in DEVICE_FORBIDDEN:
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    main = ROOT / "firmware" / "main.py"
    if main.exists():
        bad += [f"main.py:{ln} imports {m}" for m, ln in _imports(main) if m in DEVICE_FORBIDDEN]
    assert not bad, "\n".join(bad)


def test_pumpfw_imports_only_pumpcore_pumpfw_and_micropython_modules() -> None:
    allowed = {"pumpcore", "pumpfw"} | MICROPYTHON_MODULES
    bad = []
    for path in _py_files(PUMPFW):
        for mod, line in _imports(path):
            if mod not in allowed:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_nothing_but_tests_and_emulator_cli_imports_pumphil() -> None:
    bad = []
    for root in (PUMPCORE, PUMPFW, PUMPHOST):
        for path in _py_files(root):
            if path.name in ("cli_emulator.py", "cli_campaign.py"):
                continue  # the CLI's emulate/simulate/campaign commands (lazy imports)
            for mod, line in _imports(path):
                if mod == "pumphil":
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports pumphil")
    assert not bad, "\n".join(bad)


def test_pumphost_depends_on_pumpcore_not_pumpfw() -> None:
    bad = []
    for path in _py_files(PUMPHOST):
        for mod, line in _imports(path):
            if mod in {"pumpfw", "machine", "micropython"}:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)
