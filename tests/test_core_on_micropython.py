"""The tests/core suite under the real MicroPython interpreter: same tests, same results."""

from __future__ import annotations

import re

import pytest
from pumphil.mpy_runtime import REPO_ROOT, run_micropython

CORE_DIR = REPO_ROOT / "tests" / "core"


def _cpython_test_ids() -> set[str]:
    ids = set()
    for path in sorted(CORE_DIR.glob("test_*.py")):
        for m in re.finditer(r"^def (test_\w+)\(\):", path.read_text(), re.M):
            ids.add(f"{path.stem}.{m.group(1)}")
    return ids


@pytest.mark.timeout(900)
def test_core_suite_passes_under_micropython() -> None:
    result = run_micropython(
        REPO_ROOT / "tests" / "mp_core_runner.py",
        mounts={REPO_ROOT / "firmware": "/firmware", CORE_DIR: "/tests/core"},
    )
    lines = result.stdout.splitlines()
    failures = [ln for ln in lines if ln.startswith("FAIL")]
    assert not failures, "\n".join(failures) + "\n" + result.stderr[-4000:]
    assert result.returncode == 0, result.stderr[-4000:]
    ran = {ln.split()[1] for ln in lines if ln.startswith("PASS")}
    expected = _cpython_test_ids()
    assert expected, "no core tests found"
    assert ran == expected, f"only on CPython: {expected - ran}; only on MicroPython: {ran - expected}"
