"""False alarms over N simulated days (default 90) of normal physiology with sensor noise and
drift, and detection latencies for every injected catheter fault, on the integer contract plant
of tests/core/signals.py fed to the pumpcore detectors as the Pump feeds them. Then the same
detectors against the emulator's own plant (pumphil.plant, float physics, 12-bit ADC), with the
first stroke-response sample 40 ms after the stroke and at the stroke instant. Prints figures.

Run: .venv/bin/python bench/bench_false_alarms.py [DAYS] [SEEDS]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))

from pumpcore.detect_catheter import CatheterDetector
from pumpcore.detect_occlusion import OcclusionDetector
from pumphil.plant.model import Plant as EmuPlant
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


def emulator_plant_run(seed: int, fault: str, t_fault_ms: int, hours: int, first_at_stroke: bool,
                       bolus_at_ms: int | None = None) -> list[tuple[str, bool, int, int]]:
    """Lowest rate on pumphil's plant; returns (code, on, strokes, windows) after the fault."""
    r = random.Random(seed)
    p = EmuPlant(seed=seed)
    p.set_csf(0, cardiac_hz=r.uniform(0.8, 2.0), respiratory_hz=r.uniform(0.15, 0.5))
    occ, cat = OcclusionDetector(), CatheterDetector()
    events: list[tuple[str, bool, int, int]] = []
    pre5, cap, win = [0] * 5, [0] * 50, [0] * 100
    counts = [0, 0]
    base = [0, 0]

    def note(ev: tuple[str, bool] | None) -> None:
        if ev is not None:
            events.append((ev[0], ev[1], counts[0] - base[0], counts[1] - base[1]))

    def stroke(ts: int, n: int) -> None:
        p.capture(ts - 200, 40, pre5, 5)
        p.stroke(ts)
        p.capture(ts if first_at_stroke else ts + 40, 40, cap, n)
        counts[0] += 1
        note(occ.stroke(sum(pre5) // 5, cap, n))
        cat.note_stroke(occ.last_class)

    ns, nw, done = 450000, 300000, False
    while True:
        t = min(ns, nw)
        if t > hours * 3600000:
            break
        if not done and t >= t_fault_ms:
            done = True
            base[0], base[1] = counts
            if fault == "complete":
                p.occlude("complete", t_ms=t_fault_ms)
            elif fault == "partial":
                p.occlude("partial", t_ms=t_fault_ms)
            elif fault == "dislodgement":
                p.dislodge(t_ms=t_fault_ms)
            elif fault == "leak":
                p.leak(t_ms=t_fault_ms)
        if bolus_at_ms is not None and t >= bolus_at_ms:
            for k in range(60):
                stroke(t + 1000 + k * 1000, 20)
            bolus_at_ms = None
            ns, nw = max(ns, t + 62000), max(nw, t + 62000)
            continue
        if t == ns:
            stroke(ns, 50)
            ns += 450000
        else:
            p.capture(nw, 40, win, 100)
            counts[1] += 1
            note(cat.window(win))
            note(occ.window(cat.baseline_pa, cat.pulsatile))
            nw += 300000
    return events


def emulator_plant(seeds: int) -> None:
    print(f"on the emulator plant (pumphil.plant; {seeds} seeds, lowest rate):")
    for first in (False, True):
        label = "1st sample at the stroke" if first else "1st sample 40 ms after"
        fa = sum(len(emulator_plant_run(s, "none", 10**12, 24, first, 5 * 3600000 + 123))
                 for s in range(seeds))
        print(f"  {label}: false alarms in {seeds} x 24 h (with a 60-stroke bolus each): {fa}")
        for fault in ("complete", "partial", "dislodgement", "leak"):
            firsts = []
            for s in range(seeds):
                t_fault = 3600000 + random.Random(s).randint(0, 450000)
                ev = [e for e in emulator_plant_run(s, fault, t_fault, 5, first) if e[1]]
                firsts.append(ev[0] if ev else None)
            codes = sorted({e[0] for e in firsts if e})
            missed = sum(1 for e in firsts if e is None)
            got = [e for e in firsts if e]
            sm = max(e[2] for e in got) if got else None
            wm = max(e[3] for e in got) if got else None
            print(f"    {fault:13s}: codes {codes}, strokes max {sm}, windows max {wm}, "
                  f"missed {missed}")


if __name__ == "__main__":
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 90
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    latency(seeds)
    false_alarms(days)
    emulator_plant(min(seeds, 10))
