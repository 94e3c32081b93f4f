"""False alarms over N simulated days (default 90) of normal physiology with sensor noise and
drift, and detection latencies for every injected catheter fault, on the integer contract plant
of tests/core/signals.py fed to the pumpcore detectors as the Pump feeds them. Prints figures.

Run: .venv/bin/python bench/bench_false_alarms.py [DAYS] [SEEDS]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))

from signals import make_rig, normal_day

WINDOW_MS = 300000
STROKE_MS = 450000


def false_alarms(days: int) -> None:
    t0 = time.perf_counter()
    rig = make_rig(90)
    for d in range(days):
        normal_day(9000 + d, hours=24, rig=rig)
    dt = time.perf_counter() - t0
    raised = rig.raised()
    print(f"false alarms in {days} simulated days of normal physiology: {len(raised)} "
          f"({rig.windows} windows, {rig.strokes} strokes incl. {4 * days} boluses of 40 strokes; "
          f"{dt:.0f} s)")
    for e in raised[:10]:
        print("   ", e)


def latency(seeds: int) -> None:
    faults = {
        "complete occlusion": lambda r: r.p.complete_occlusion(),
        "partial occlusion k=10": lambda r: r.p.partial_occlusion(10),
        "dislodgement": lambda r: r.p.dislodge(),
        "leak": lambda r: r.p.leak(),
    }
    print(f"latency after onset ({seeds} seeds, random physiology and onset time):")
    for name, f in faults.items():
        for mode in ("lowest rate", "bolus 1 stroke/s"):
            strokes = []
            windows = []
            wrong = 0
            missed = 0
            for seed in range(1, seeds + 1):
                rig = make_rig(seed)
                rig.run(3600000)
                s0, w0, e0 = rig.strokes, rig.windows, len(rig.events)
                if mode == "lowest rate":
                    rig.p.idle(seed * 7919 % WINDOW_MS)
                    f(rig)
                    rig.run(12 * STROKE_MS)
                else:
                    rig.bolus(3)
                    s0 = rig.strokes
                    f(rig)
                    rig.bolus(15)
                ev = [e for e in rig.events[e0:] if e[2]]
                if not ev:
                    missed += 1
                    continue
                code = ev[0][1]
                expect = {"dislodgement": "dislodgement", "leak": "leak"}.get(name, "occlusion")
                if code != expect:
                    wrong += 1
                strokes.append(ev[0][3] - s0)
                windows.append(ev[0][4] - w0)
            if strokes:
                print(f"  {name:24s} {mode:17s}: strokes max {max(strokes)} mean "
                      f"{sum(strokes) / len(strokes):.1f}; windows max {max(windows)}; "
                      f"missed {missed}, wrong code {wrong}")
            else:
                print(f"  {name:24s} {mode:17s}: no alarm in {missed} runs (no sensing window "
                      f"during a bolus)")


if __name__ == "__main__":
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 90
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    latency(seeds)
    false_alarms(days)
