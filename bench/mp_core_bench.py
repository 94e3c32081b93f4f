# Core step benchmark under the real MicroPython interpreter (run by bench/bench_core.py through
# pumphil.mpy_runtime). Prints "key value" lines.
import gc
import sys
import time

sys.path.append("/tests/core")
import rx_helpers  # noqa: E402
from pump_helpers import programmed, run  # noqa: E402

p = programmed(rx_helpers.simple_rx(20000))
run(p, 3600000)
N = 2000
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
t0 = time.ticks_ms()
strokes = 0
for _ in range(N):
    strokes += p.advance(45000)          # one stroke per step at 20 uL/h
t1 = time.ticks_ms()
a1 = gc.mem_alloc()
gc.enable()
print("steps", N)
print("strokes", strokes)
print("ms", time.ticks_diff(t1, t0))
print("bytes_per_step", (a1 - a0) // N)
