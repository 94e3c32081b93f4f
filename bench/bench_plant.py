"""Benchmark: cost per call of the emulator's plant (hil/pumphil/plant), the calls a month makes
most (issue 4): Plant.capture for n = 1, 5, 20, 30 and 100 samples at 40 ms, Plant.wake and
Plant.stroke.

Each capture size is measured in two states: right after a stroke (the line over-pressure is
still decaying: the stroke-response captures) and at steady state a minute after the last stroke
(the pre-stroke samples and the sensing windows), after a warm-up capture (the plant builds its
table of the CSF tones once a tone setting has served a few thousand samples, as any month does in
its first hour). Figures are the best of a few repeats (the machine is shared: timings are noisy),
in microseconds per call. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_plant.py [--repeat N]
"""

from __future__ import annotations

import argparse
import time
from array import array

from pumphil import accel
from pumphil.plant import Plant

STROKES = 40  # strokes per capture measurement
CALLS = 250  # captures per stroke (each at its own start time)
SIZES = (1, 5, 20, 30, 100)
WARM_UP = 10_000  # samples


def capture_us(n: int, steady: bool) -> float:
    """us per capture of n samples at 40 ms, after a stroke or at steady state."""
    plant = Plant(1)
    plant.capture(0, 40, array("i", [0] * WARM_UP), WARM_UP)
    out = array("i", [0] * n)
    capture = plant.capture
    spent = 0.0
    calls = 0
    for k in range(STROKES):
        t_stroke = 500_000 + k * 120_000
        plant.stroke(t_stroke)
        first = t_stroke + (60_000 if steady else 40)
        t = time.perf_counter()
        for j in range(CALLS):
            capture(first + j, 40, out, n)
        spent += time.perf_counter() - t
        calls += CALLS
    return spent / calls * 1e6


def wake_us() -> float:
    plant = Plant(1)
    wake = plant.wake
    plant.stroke(0)
    n = 100_000
    t = time.perf_counter()
    for k in range(1, n + 1):
        wake(k * 7)
    return (time.perf_counter() - t) / n * 1e6


def stroke_us() -> float:
    plant = Plant(1)
    stroke = plant.stroke
    n = 20_000
    t = time.perf_counter()
    for k in range(n):
        stroke(1_000 + k * 10_000)
    return (time.perf_counter() - t) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    rep = max(1, args.repeat)
    print(f"bench_plant: us per call, best of {rep}; plant {accel.describe()}")
    one = 0.0
    for n in SIZES:
        after = min(capture_us(n, False) for _ in range(rep))
        steady = min(capture_us(n, True) for _ in range(rep))
        line = f"  capture n={n:<3d}  after a stroke {after:6.2f} us   steady {steady:6.2f} us"
        if n == 1:
            one = after
        else:
            line += f"   ({(after - one) / (n - 1):.3f} us per extra sample)"
        print(line)
    print(f"  wake            {min(wake_us() for _ in range(rep)):6.2f} us")
    print(f"  stroke          {min(stroke_us() for _ in range(rep)):6.2f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
