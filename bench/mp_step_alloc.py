# Bytes the device shell (pumpfw.app.App, unchanged) allocates per steady-state step, under the
# laptop MicroPython (the WebAssembly build, 31-bit small ints like the rp2 port). Run through
# pumphil.mpy_runtime by bench/bench_rp2_heap.py and tests/test_shell_alloc_on_micropython.py.
#
# The rig (bench/mp_rig/mp_bench_rig.py: the integer HAL, an in-memory file system, or a board's
# own flash) allocates nothing itself, so every byte counted is the firmware's. Each step runs
# with the collector off and is metered alone (gc.mem_alloc() before and after App.step()); the
# VM's own explicit frees (a frame too large for the C stack, freed on return) are netted out, as
# on the real port. Steps are classed as bench/rp2_metered_main.py classes them, from the
# application's own counters.
#
# ARGV: [script, rate_nl_per_h, steady_steps, library record as JSON]. Prints "state <pump
# state>" and "alloc <kind> <steps> <bytes>" lines; exits with an error if the pump is not
# running. Also runs on a board (bench_rp2_heap.py's probe): there it uses the board's flash.
import gc
import json

try:
    # on the laptop MicroPython, the emulator runtime's base64 (pumphil/mpy/mp_binascii.py, when
    # mounted): that build's own is O(n**2) pure Python, the Pico's is C
    import binascii

    import mp_binascii
    binascii.b2a_base64 = mp_binascii.b2a_base64
    binascii.a2b_base64 = mp_binascii.a2b_base64
except ImportError:
    pass

from mp_bench_rig import MemFs, Rig

RATE = int(ARGV[1]) if len(ARGV) > 1 else 30000  # noqa: F821  (set by the runner)
STEADY = int(ARGV[2]) if len(ARGV) > 2 else 400  # noqa: F821
LIBRARY = json.loads(ARGV[3]) if len(ARGV) > 3 else None  # noqa: F821
KINDS = ("wake", "stroke", "sense", "save")

try:
    import machine  # noqa: F401  (a board: its own flash file system, as the firmware uses it)
    from pumpfw.flashfs import FlashFs
    fs = FlashFs()
except ImportError:
    fs = MemFs()
rig = Rig(fs, "MP-ALLOC", LIBRARY)
rig.boot()
rig.program(RATE)
rig.run_until(rig.hal.now + 3600000)   # settle: first windows, minute supervision, records
app = rig.app
hal = rig.hal
print("state", app.pump.state)
if app.pump.state != "running":
    raise SystemExit("pump not running: " + str(app.pump.state))

steps = [0, 0, 0, 0]
nbytes = [0, 0, 0, 0]
sup = app.supervisor
st = app.storage
gc.threshold(-1)              # the allocation threshold collects even while disabled
gc.disable()
for _ in range(STEADY):
    gc.collect()              # each step starts clean (a board's heap is small)
    w, s, m = st.writes, sup.strokes_made, sup.samples
    a0 = gc.mem_alloc()
    ms = app.step()
    d = gc.mem_alloc() - a0
    k = 3 if st.writes != w else 1 if sup.strokes_made != s else 2 if sup.samples - m >= 100 else 0
    steps[k] += 1
    nbytes[k] += d
    hal.now += ms
gc.enable()
for k in range(4):
    print("alloc", KINDS[k], steps[k], nbytes[k])
