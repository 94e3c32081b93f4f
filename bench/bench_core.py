"""Core step throughput under CPython and MicroPython, and bytes allocated per steady-state step
under MicroPython (target 0). Prints figures; asserts nothing."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))

import rx_helpers  # noqa: E402
from pump_helpers import programmed, run  # noqa: E402
from pumphil.mpy_runtime import run_micropython  # noqa: E402


def cpython_figures() -> None:
    p = programmed(rx_helpers.simple_rx(20000))
    run(p, 3_600_000)
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        p.advance(45_000)
    dt = time.perf_counter() - t0
    print(f"core step (CPython {sys.version.split()[0]}): {n / dt:,.0f} steps/s, "
          f"{dt / n * 1e6:.1f} us/step (one stroke per step)")
    p = programmed(rx_helpers.morphine_rx())
    t0 = time.perf_counter()
    for _ in range(30 * 24):
        p.advance(3_600_000)
    dt = time.perf_counter() - t0
    print(f"core-only 30 days of morphine_rx in 1-h steps: {dt:.3f} s "
          f"({30 * 86400 / dt:,.0f}x real time), {p.status()['strokes']} strokes")


def micropython_figures() -> None:
    res = run_micropython(ROOT / "bench" / "mp_core_bench.py",
                          mounts={ROOT / "firmware": "/firmware", ROOT / "tests" / "core": "/tests/core"})
    if res.returncode != 0:
        print("MicroPython benchmark failed:", res.stderr[-500:])
        return
    fig = dict(line.split(" ", 1) for line in res.stdout.split("\n") if " " in line)
    steps, ms = int(fig["steps"]), int(fig["ms"])
    print(f"core step (MicroPython 1.27 WebAssembly on Node): {steps * 1000 / max(ms, 1):,.0f} steps/s, "
          f"{ms * 1000 / steps:.1f} us/step")
    print(f"bytes allocated per steady-state step (MicroPython): {fig['bytes_per_step'].strip()}")


if __name__ == "__main__":
    cpython_figures()
    micropython_figures()
