"""The dependency rule of docs/architecture.md and the portability rules of DESIGN.md, enforced.

pumpcore -> pumpcore only (+ hashlib, array, binascii; itertools/math/operator only in the CPython
fast path under `if VECTOR:`); pumpfw -> pumpcore + MicroPython modules;
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

CORE_ALLOWED = {"pumpcore", "hashlib", "array", "binascii", "micropython", "sys", "gc"}
# pumpcore may only touch micropython/sys/gc for allocation proofs guarded by sys.implementation;
# they are checked below to be used nowhere but in such guards.
# The CPython forms of the hot loops (pumpcore.dsp.VECTOR) may use these C-level helpers, imported
# only inside an `if VECTOR:` / `if dsp.VECTOR:` block, so the Pico never imports them.
CPYTHON_FAST_PATH = {"itertools", "math", "operator"}
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


def _vector_guarded_lines(path: Path) -> set[int]:
    """Lines inside an `if VECTOR:` or `if dsp.VECTOR:` block (the CPython fast path)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.If) and (
                (isinstance(node.test, ast.Name) and node.test.id == "VECTOR")
                or (isinstance(node.test, ast.Attribute) and node.test.attr == "VECTOR")):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def test_pumpcore_imports_only_pumpcore() -> None:
    bad = []
    for path in _py_files(PUMPCORE):
        guarded = _vector_guarded_lines(path)
        for mod, line in _imports(path):
            if mod in CPYTHON_FAST_PATH and line in guarded:
                continue
            if mod not in CORE_ALLOWED:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_cpython_fast_path_guard_is_recognised() -> None:
    # the exemption above is narrow: the same import outside the guard is still a violation
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "m.py"
        f.write_text("import math\nif VECTOR:\n    import operator\nif dsp.VECTOR:\n    import itertools\n")
        guarded = _vector_guarded_lines(f)
        assert [(m, ln in guarded) for m, ln in _imports(f)] == [
            ("math", False), ("operator", True), ("itertools", True)]


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
