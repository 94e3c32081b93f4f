# Device entry point: wiring only. The Pico boots into the pump application; the protocol shares
# USB-CDC with the REPL (Ctrl-C interrupts, so mpremote can still reach the board).
# `hal` and `app` stay in the REPL's namespace after an interrupt (diagnostics, benchmarks).
import gc

from pumpfw.app import App
from pumpfw.hal_rp2 import PicoHal

# Collect after every GC_THRESHOLD bytes allocated instead of only when the heap is full: garbage
# is reclaimed while it is still young and low in the heap, so the long-lived objects stay packed
# and the free space stays contiguous. Measured on the rp2 port (tests/rp2, bench_rp2_heap.py):
# without it, after programming, 92 KB were free but no block above 3 KB, and the next state
# record (a 2.5-KB JSON body) failed with MemoryError; with it the largest free block stays ~31 KB.
GC_THRESHOLD = 8192
gc.threshold(GC_THRESHOLD)

hal = PicoHal()
app = App(hal)
# `itpump flash` writes the build's content hash here after verifying every file; hello then
# reports the firmware as "<version>+<hash[:16]>" (semver build metadata). A hand copy has none.
try:
    with open("/build.txt") as f:
        app.info["firmware"] += "+" + f.read(16)
except OSError:
    pass
try:
    app.run()
finally:
    hal.motor_off()    # an interrupt (Ctrl-C, mpremote) never leaves the pump driver energised
