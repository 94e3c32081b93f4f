# The device shell (pumpfw.app.App, unchanged) under the laptop MicroPython (the WebAssembly
# build, run by bench/bench_rp2_heap.py through pumphil.mpy_runtime): its live heap after boot,
# after programming and after every simulated day. The rig (HAL, provisioning, requests) is
# bench/mp_rig/mp_bench_rig.py's, with the files on the interpreter's file system.
#
# This build's collector frees nothing while Python code runs (it cannot scan the WebAssembly
# stack), so this script only defines the phases; the bench runs each phase, `gc.collect()` and
# `heap(name)` as separate top-level calls (mpy_runtime's `then`). Prints "key value..." lines.
# ARGV: [script, rate_nl_per_h, library record as JSON]
import gc
import json

from mp_bench_rig import OsFs, Rig

RATE = int(ARGV[1]) if len(ARGV) > 1 else 30000  # noqa: F821  (set by the runner)
LIBRARY = json.loads(ARGV[2]) if len(ARGV) > 2 else None  # noqa: F821
DAY_MS = 86400000

rig = Rig(OsFs("/benchfs"), "MP-BENCH", LIBRARY)


def heap(name):
    print("heap", name, gc.mem_alloc(), gc.mem_free())


def boot():
    rig.boot()


def program():
    rig.program(RATE)
    print("state", rig.app.pump.state)


def day():
    hal = rig.hal
    rig.run_until((hal.now // DAY_MS + 1) * DAY_MS)
    print("day", hal.now // DAY_MS, hal.strokes, rig.app.pump.state)
