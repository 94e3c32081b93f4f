"""Detector cost under the real MicroPython interpreter (WebAssembly build, 32-bit like the Pico)
and under CPython: time per sensing window / per stroke capture / per sample, and bytes allocated
per call in steady state (target 0). Prints figures; asserts nothing.

Run: .venv/bin/python bench/bench_detectors.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))

from pumphil.mpy_runtime import MicroPythonUnavailable, run_micropython

# Runs under MicroPython; prints "key value" lines.
MP_SCRIPT = r"""
import gc
import time
from signals import bench_inputs
from pumpcore.detect_catheter import CatheterDetector
from pumpcore.detect_occlusion import OcclusionDetector
from pumpcore.detect_motor import MotorDetector
from pumpcore.detect_battery import BatteryDetector

wins, caps = bench_inputs()
cat = CatheterDetector()
occ = OcclusionDetector()
mot = MotorDetector()
bat = BatteryDetector()

def measure(name, n, fn):
    fn(0)
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    for i in range(n):
        fn(i)
    t1 = time.ticks_us()
    a1 = gc.mem_alloc()
    gc.enable()
    print(name, time.ticks_diff(t1, t0) // n, (a1 - a0) // n)

def f_win(i):
    cat.window(wins[i & 7])
def f_occ(i):
    p, c = caps[i & 7]
    occ.stroke(p, c, 50)
def f_occ_short(i):
    p, c = caps[i & 7]
    occ.stroke(p, c, 20)
def f_occ_win(i):
    occ.window(1300, True)
def f_mot(i):
    mot.note_command(250)
    mot.note_feedback(250)
    mot.stroke_result(True)
    mot.advance(60000)
def f_bat(i):
    bat.note_strokes(1)
    bat.note_samples(55)
    bat.advance(450000)

measure("catheter_window", 200, f_win)
measure("occlusion_stroke_full", 400, f_occ)
measure("occlusion_stroke_short", 400, f_occ_short)
measure("occlusion_window", 2000, f_occ_win)
measure("motor_step", 2000, f_mot)
measure("battery_step", 2000, f_bat)
"""


def cpython_figures() -> None:
    from pumpcore.detect_catheter import CatheterDetector
    from pumpcore.detect_occlusion import OcclusionDetector
    from signals import bench_inputs

    wins, caps = bench_inputs()
    cat = CatheterDetector()
    occ = OcclusionDetector()
    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        cat.window(wins[i & 7])
    dt = (time.perf_counter() - t0) / n
    print(f"CPython catheter window: {dt * 1e6:.0f} us/window ({dt * 1e4:.1f} us/sample)")
    t0 = time.perf_counter()
    for i in range(n):
        p, c = caps[i & 7]
        occ.stroke(p, c, 50)
    dt = (time.perf_counter() - t0) / n
    print(f"CPython occlusion stroke (50 samples): {dt * 1e6:.0f} us/capture")


def micropython_figures() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "mp_detectors_bench.py"
        script.write_text(MP_SCRIPT)
        res = run_micropython(script, mounts={ROOT / "firmware": "/firmware",
                                              ROOT / "tests" / "core": "/tests/core"})
    if res.returncode != 0:
        print("MicroPython benchmark failed:", res.stderr[-800:])
        return
    samples = {"catheter_window": 100, "occlusion_stroke_full": 55, "occlusion_stroke_short": 25}
    print("MicroPython (WebAssembly on Node, this laptop; the Pico is slower: not measured here):")
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        name, us, alloc = parts[0], int(parts[1]), int(parts[2])
        per = samples.get(name)
        extra = f", {us / per:.1f} us/sample" if per else ""
        print(f"  {name}: {us} us/call{extra}, {alloc} bytes allocated/call")


if __name__ == "__main__":
    cpython_figures()
    try:
        micropython_figures()
    except MicroPythonUnavailable as e:
        print("MicroPython unavailable:", e)
