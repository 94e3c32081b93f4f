"""The device shell's steady-state step allocates nothing, on the real MicroPython (the
WebAssembly build: 31-bit small ints like the Pico's rp2 port, so a counter or a product leaving
the small-int range allocates here as it would there).

bench/mp_step_alloc.py runs the unchanged App (boot, program, prime, start over the protocol,
one settling hour) on an integer HAL that allocates nothing itself, then meters several hundred
steps one by one with the collector off: watchdog-only wake-ups, stroke steps with their
captures and sensing windows must each allocate 0 bytes. Steps that write a state record may
allocate (JSON, MAC); they are counted, not judged. The real port's figures: bench_rp2_heap.py."""

from __future__ import annotations

import json
import re

import pytest
from pumphil.mpy_board import MP_BOARD_DIR
from pumphil.mpy_runtime import REPO_ROOT, run_micropython
from pumphost.library_file import example

STEADY_STEPS = 600          # ~1 h of therapy at 30 uL/h: ~120 strokes, ~12 windows


@pytest.mark.timeout(120)
def test_steady_state_steps_allocate_nothing() -> None:
    res = run_micropython(REPO_ROOT / "bench" / "mp_step_alloc.py",
                          args=["30000", str(STEADY_STEPS), json.dumps(example().record)],
                          mounts={REPO_ROOT / "firmware": "/firmware", MP_BOARD_DIR: "/mpyboard",
                                  REPO_ROOT / "bench" / "mp_rig": "/mprig"},
                          heap_bytes=2 * 1024 * 1024, timeout_s=110)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "state running" in res.stdout, res.stdout
    per_kind = {kind: (int(steps), int(nbytes)) for kind, steps, nbytes in
                re.findall(r"^alloc (\w+) (\d+) (-?\d+)$", res.stdout, re.M)}
    assert set(per_kind) == {"wake", "stroke", "sense", "save"}, res.stdout
    for kind in ("wake", "stroke", "sense"):
        steps, nbytes = per_kind[kind]
        assert steps > 0, f"no {kind} step was metered: {res.stdout}"
        assert nbytes == 0, f"{kind} steps allocated {nbytes} B over {steps} steps"
