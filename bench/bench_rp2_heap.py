"""Heap budget of the device shell, measured on the real rp2 port (MicroPython v1.28.0 RPI_PICO
in rp2040js, the firmware as `itpump flash` deploys it: .mpy, plant-wired) and on the laptop
MicroPython (the WebAssembly build). Prints figures; asserts nothing.

Real port: bench/rp2_metered_main.py is spliced into main.py (a HAL subclass that prints the
heap every virtual hour and the bytes each step allocates with the collector off); the pump is
programmed over the protocol and runs ITPUMP_BENCH_RP2_HOURS virtual hours (default 13: the
growth is the slope from hour 1 to hour 13, scaled to a day).
Laptop: bench/mp_shell_heap.py runs the unchanged App on a bench HAL for ITPUMP_BENCH_MP_DAYS
days (default 3), the collector run between days at top level (that build frees nothing while
Python code runs); bench/mp_step_alloc.py meters the bytes each steady-state step allocates, step
by step with the collector off, on an integer HAL that allocates nothing itself (the same check
tests/test_shell_alloc_on_micropython.py makes).

"Live heap" is gc.mem_alloc() right after gc.collect(); "largest free block" is mem_info's
"max free sz" (16-B blocks). Goals (issue 12): live heap <= 96 KB, no growth over days, no
allocation in the steady-state step.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MP_RIG_DIR = ROOT / "bench" / "mp_rig"      # the laptop benches' rig (mp_bench_rig.py)
sys.path.insert(0, str(ROOT / "tests" / "core"))

from pumphil.mpy_board import MP_BOARD_DIR
from pumphil.mpy_runtime import run_micropython
from pumphil.plant import Plant
from pumphil.rp2.image import build_image
from pumphil.rp2.target import Rp2Board
from pumphost import keys
from pumphost.client import PumpClient
from pumphost.deploy import build_firmware
from pumphost.library_file import example

HOUR = 3_600_000
RATE_NL_PER_H = 30_000          # 0.72 mL/day: a stroke every 30 s
KIB = 1024


def _rx() -> dict[str, Any]:
    """The benches' program (bench/mp_rig/rx.json, the laptop benches' too) at RATE_NL_PER_H."""
    rx: dict[str, Any] = json.loads((MP_RIG_DIR / "rx.json").read_text())
    rx["basal"]["steps"] = [[0, RATE_NL_PER_H]]
    return rx


def metered_main() -> bytes:
    main = (ROOT / "firmware" / "main.py").read_text()
    hook = "hal = PicoHal()\n"
    if hook not in main:
        raise SystemExit(f"firmware/main.py no longer has {hook!r}: update bench_rp2_heap.py")
    metered = (ROOT / "bench" / "rp2_metered_main.py").read_text()
    return main.replace(hook, metered + "\nhal = MeteredHal()\n").encode()


def rp2_figures(hours: int) -> None:
    build = build_firmware()
    files = {f.path: f.data for f in build.files}
    files["/main.py"] = metered_main()
    keyset = keys.generate("RP2-BENCH")
    image = build_image(None, files=files, provision=("RP2-BENCH", keyset.hex_keys()))
    t0 = time.perf_counter()
    with Rp2Board(image, plant=Plant(seed=3), speed=1.0, wall_timeout_s=4 * 3600) as board:
        board.wait_console('"kind":"boot"')
        with PumpClient.open(board.serial_url, keyset=keyset, timeout_s=10.0) as c:
            c.set_clock(9500, 8 * HOUR)
            rx = _rx()
            c.commit(c.stage(rx)["checksum"], confirm_soft=True)
            c.prime(2_000)
            board.advance(60_000)
            c.start()
            for _ in range(hours):
                board.advance(HOUR, timeout_s=3600)
            st = c.status()
        console = board.console()
        wall = time.perf_counter() - t0
    heaps = [(int(t), int(live), int(free)) for t, live, free in
             re.findall(r"HEAP (\d+) (\d+) (\d+)", console)]
    largest = [int(n) * 16 for n in re.findall(r"max free sz: (\d+)", console)]
    allocs = [tuple(map(int, m)) for m in
              re.findall(r"ALLOC" + r" (\d+) (-?\d+)" * 5, console)]
    print(f"rp2 port (MicroPython 1.28.0 RPI_PICO in rp2040js; firmware as .mpy): {hours} h of "
          f"therapy at {RATE_NL_PER_H // 1000} uL/h ({st['strokes']} strokes, state "
          f"{st['state']}) in {wall:.0f} s wall")
    if not heaps:
        print("  no HEAP lines on the console: the metered firmware did not run")
        return
    total = heaps[0][1] + heaps[0][2]
    print(f"  heap total {total / KIB:.1f} KiB; live after boot {heaps[0][1] / KIB:.1f} KiB, "
          f"after programming + 1 h {heaps[min(1, len(heaps) - 1)][1] / KIB:.1f} KiB")
    peak = max(live for _, live, _ in heaps)
    print(f"  peak live heap (hourly, after gc.collect): {peak / KIB:.1f} KiB "
          f"(goal <= 96 KiB); smallest largest-free-block {min(largest) / KIB:.1f} KiB")
    for day in range(1, hours // 24 + 1):
        if len(heaps) > 24 * day:
            print(f"  live heap after day {day}: {heaps[24 * day][1] / KIB:.1f} KiB")
    if len(heaps) > 3:
        per_day = (heaps[-1][1] - heaps[1][1]) * 24 / (len(heaps) - 2)
        print(f"  growth: {per_day / KIB:+.2f} KiB per simulated day (hour 1 to hour "
              f"{len(heaps) - 1}, linear)")
    steady = allocs[1:]     # the first window covers boot
    if steady:
        n = [sum(a[i] for a in steady) for i in range(10)]
        names = ("wake-up (watchdog only)", "stroke step (with capture)", "sensing window",
                 "step writing a record", "step with host input (command and reply)")
        for k, name in enumerate(names):
            steps, nbytes = n[2 * k], n[2 * k + 1]
            per = f"{nbytes / steps:,.0f} B/step net" if steps else "none seen"
            print(f"  allocation per {name}: {per} ({steps} steps)")


def micropython_figures(days: int) -> None:
    then = ["gc.collect()", "heap('imports')", "boot()", "gc.collect()", "heap('boot')",
            "program()", "gc.collect()", "heap('program')"]
    for _ in range(days):
        then += ["day()", "gc.collect()", "heap('day')"]
    t0 = time.perf_counter()
    res = run_micropython(ROOT / "bench" / "mp_shell_heap.py",
                          args=[str(RATE_NL_PER_H), json.dumps(example().record)],
                          mounts={ROOT / "firmware": "/firmware", MP_RIG_DIR: "/mprig"}, then=then,
                          timeout_s=3600)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        print("laptop MicroPython heap benchmark failed:", res.stderr[-800:])
        return
    heap = [(name, int(live)) for name, live, _ in
            re.findall(r"heap (\w+) (\d+) (\d+)", res.stdout)]
    print(f"laptop MicroPython 1.27 (WebAssembly, firmware as .py): {days} days in {wall:.0f} s "
          "wall")
    named = dict(heap[:3])
    print(f"  live heap: imports {named['imports'] / KIB:.1f} KiB, boot {named['boot'] / KIB:.1f}"
          f" KiB, programmed {named['program'] / KIB:.1f} KiB")
    days_live = [live for name, live in heap if name == "day"]
    if days_live:
        print("  live heap per day: " + ", ".join(f"{v / KIB:.1f}" for v in days_live) + " KiB")
    if len(days_live) > 1:
        per_day = (days_live[-1] - days_live[0]) / (len(days_live) - 1)
        print(f"  growth: {per_day / KIB:+.2f} KiB per simulated day")
    res = run_micropython(ROOT / "bench" / "mp_step_alloc.py",
                          args=[str(RATE_NL_PER_H), "2000", json.dumps(example().record)],
                          mounts={ROOT / "firmware": "/firmware", MP_BOARD_DIR: "/mpyboard",
                                  MP_RIG_DIR: "/mprig"},
                          heap_bytes=8 * 1024 * 1024, timeout_s=600)
    if res.returncode != 0:
        print("  laptop MicroPython step allocation failed:", res.stderr[-800:])
        return
    names = {"wake": "wake-up (watchdog only)", "stroke": "stroke step (with capture)",
             "sense": "sensing window", "save": "step writing a record"}
    for kind, steps, nbytes in re.findall(r"^alloc (\w+) (\d+) (-?\d+)$", res.stdout, re.M):
        per = f"{int(nbytes) / int(steps):,.0f} B/step net" if int(steps) else "none seen"
        print(f"  allocation per {names[kind]} (integer bench HAL): {per} ({steps} steps)")


if __name__ == "__main__":
    micropython_figures(int(os.environ.get("ITPUMP_BENCH_MP_DAYS", "3")))
    rp2_figures(int(os.environ.get("ITPUMP_BENCH_RP2_HOURS", "13")))
