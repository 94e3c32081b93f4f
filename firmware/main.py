# Device entry point: wiring only. The Pico boots into the pump application; the protocol shares
# USB-CDC with the REPL (Ctrl-C interrupts, so mpremote can still reach the board).
# `hal` and `app` stay in the REPL's namespace after an interrupt (diagnostics, benchmarks).
import gc

# Collect after every GC_THRESHOLD bytes allocated instead of only when the heap is full, from the
# first import on: garbage is reclaimed while it is still young and low in the heap, so the
# long-lived objects (bytecode, the ledger's buckets) stay packed and the free space contiguous.
# Measured on the rp2 port (tests/rp2, bench_rp2_heap.py): set after the imports, the loader's
# garbage left 80 KB free in blocks of at most 2.3 KB and the ledger's 4.6-KB buckets failed with
# MemoryError at every boot; set before them, the largest free block after boot is ~75 KB. Set
# after programming only, the next state record (a 2.5-KB JSON body) failed the same way.
GC_THRESHOLD = 8192
gc.threshold(GC_THRESHOLD)

from pumpfw.app import App  # noqa: E402  (imported after the collector is set, see above)
from pumpfw.hal_rp2 import PicoHal  # noqa: E402

gc.collect()
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
