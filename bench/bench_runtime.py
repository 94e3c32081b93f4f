"""Benchmark: the reference 30-day scenario on both emulator runtimes, side by side in one run
(issue 12, item 5): the firmware on CPython (the default) and on the real MicroPython
(`--runtime micropython`: the WebAssembly build in Node, plant and flash bridged to CPython).

Prints each month's wall time, their ratio, the bridge's crossings (HAL requests the interpreter
sent to CPython) per simulated day, where the MicroPython month's wall time went (CPU of the
interpreter's Node process, CPU of this CPython process, the rest waiting: scheduling between
the two processes and other load), the bridge's bare round-trip rate (crossings/s of a request
that does no work) and the machine's load average (is it quiet?). Goal: the month under
MicroPython <= 60 s. A benchmark that prints figures, not a timed test.

    .venv/bin/python bench/bench_runtime.py [SCENARIO] [--only micropython]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from pumphil import accel, scenario, simulate
from pumphil.emulator import Emulator
from pumphil.mpy_board import MpyBoard

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "examples" / "month-morphine-clonidine.toml"
GOAL_S = 60.0
BARE_CROSSINGS = 20_000


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process pid (Linux /proc; 0.0 where unreadable), or of this
    process for None."""
    if pid is None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def month(sc: scenario.Scenario, runtime: str) -> dict[str, float]:
    out: dict[str, float] = {}
    emu = simulate.start_emulator(sc, runtime=runtime)     # as `itpump simulate` runs it
    try:
        node = emu.board._proc.pid if isinstance(emu.board, MpyBoard) and emu.board._proc else None
        with simulate.open_client(emu) as c:
            cpu0, node0 = _cpu_s(None), _cpu_s(node) if node else 0.0
            t0 = time.perf_counter()
            simulate.Runner(sc, emu, c).run()
            out["run"] = time.perf_counter() - t0
            out["cpython_cpu"] = _cpu_s(None) - cpu0
            if node:
                out["node_cpu"] = _cpu_s(node) - node0
        out["steps"] = emu.board.steps
        if isinstance(emu.board, MpyBoard):
            out["crossings"] = emu.board.crossings
    finally:
        emu.close()
    return out


def bare_crossings() -> float:
    """Round trips per second of the bridge alone: the interpreter asks for the battery voltage
    BARE_CROSSINGS times in one top-level call."""
    emu = Emulator(runtime="micropython").start()
    try:
        assert isinstance(emu.board, MpyBoard)
        t = time.perf_counter()
        emu.board._command("from mp_board import cross\n"
                           f"for _ in range({BARE_CROSSINGS}):\n    cross('battery', [])\n"
                           "B.done()")
        return BARE_CROSSINGS / (time.perf_counter() - t)
    finally:
        emu.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default=str(REFERENCE))
    ap.add_argument("--only", choices=("micropython",), default=None,
                    help="skip the CPython month (no ratio)")
    args = ap.parse_args(argv)
    sc = scenario.load(args.scenario)
    days = sc.duration_ms / 86_400_000
    print(f"bench_runtime: {sc.name} ({days:g} days, {len(sc.events)} events)")
    print(f"  emulator (CPython side): {accel.describe()}")
    load0 = os.getloadavg()[0]
    cp = None if args.only else month(sc, "cpython")
    mp = month(sc, "micropython")
    if cp is not None:
        print(f"  cpython runtime:     {cp['run']:7.2f} s  ({cp['steps']:,.0f} wake-ups)")
    print(f"  micropython runtime: {mp['run']:7.2f} s  ({mp['steps']:,.0f} wake-ups, "
          f"{mp['crossings'] / days:,.0f} crossings per simulated day, "
          f"{mp['steps'] / mp['run']:,.0f} wake-ups/s)")
    if mp.get("node_cpu"):
        wait = mp["run"] - mp["node_cpu"] - mp["cpython_cpu"]
        print(f"    where it went: interpreter (Node) CPU {mp['node_cpu']:.1f} s, CPython CPU "
              f"{mp['cpython_cpu']:.1f} s (the emulator and the host), waiting {wait:.1f} s")
    if cp is not None:
        print(f"  ratio micropython / cpython: {mp['run'] / cp['run']:.1f}x (same run, same machine)")
    print(f"  bridge alone: {bare_crossings():,.0f} crossings/s (round trips, no work)")
    print(f"  load average (1 min) {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
          f"on {os.cpu_count()} CPUs ({'quiet' if load0 < 1.0 else 'loaded'} when it started)")
    print(f"  {'MEETS' if mp['run'] <= GOAL_S else 'MISSES'} the {GOAL_S:g}-s goal for the month "
          "under MicroPython")
    return 0


if __name__ == "__main__":
    sys.exit(main())
