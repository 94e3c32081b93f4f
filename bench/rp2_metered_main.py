# The firmware's main.py with a metering HAL, for bench/bench_rp2_heap.py only (it is spliced
# into main.py in place of `hal = PicoHal()`; the firmware itself never carries it). On the real
# rp2 port it prints, on the USB-CDC console:
#   HEAP <ticks_ms> <live bytes> <free bytes>   every hour, after gc.collect(), plus
#                                               micropython.mem_info() (largest free block)
#   ALLOC <steps> <bytes> for each kind of step: a wake-up that only feeds the watchdog, a
#         stroke (with its capture), a sensing window, a step that wrote a record; over a window
#         of steps right after each HEAP, with the collector off (no threshold collection
#         either) and a gc.collect() before each step. Bytes are net: allocated minus what the
#         VM freed explicitly (a string or list shrunk or moved as it grew).
import array
import gc
import time

import micropython
from pumpfw.flashfs import FlashFs

_HOUR_MS = 3600000
_WINDOW_STEPS = 120
_WAKE, _STROKE, _SENSE, _SAVE = 0, 1, 2, 3
_KINDS = 4


class _MeteredFs(FlashFs):
    def __init__(self, hal):
        self.hal = hal

    def open(self, path, mode):
        if "w" in mode or "a" in mode:
            self.hal.m_kind = _SAVE
        return open(path, mode)


class MeteredHal(PicoHal):  # noqa: F821  (main.py imports PicoHal before this text)
    def __init__(self):
        PicoHal.__init__(self)  # noqa: F821
        self.fs = _MeteredFs(self)
        self.m_steps = array.array("i", [0] * _KINDS)
        self.m_bytes = array.array("i", [0] * _KINDS)
        self.m_kind = _WAKE
        self.m_a0 = -1
        self.m_window = 0
        self.m_next = time.ticks_ms()  # the first wait: the boot checkpoint

    def motor_stroke(self):
        if self.m_kind < _STROKE:
            self.m_kind = _STROKE
        return PicoHal.motor_stroke(self)  # noqa: F821  (super() would allocate)

    def read_pressure(self, buf, n, period_ms, start=0):
        if self.m_kind < _SENSE and n == len(buf) and n > 50:   # the 100-sample window
            self.m_kind = _SENSE
        PicoHal.read_pressure(self, buf, n, period_ms, start)  # noqa: F821

    def wait(self, ms):
        if self.m_a0 >= 0:
            k = self.m_kind
            self.m_steps[k] += 1
            self.m_bytes[k] += gc.mem_alloc() - self.m_a0
            self.m_window -= 1
            if self.m_window <= 0 or gc.mem_free() < 30000:
                gc.threshold(GC_THRESHOLD)  # noqa: F821  (main.py's)
                gc.enable()
                self.m_a0 = -1
                s, b = self.m_steps, self.m_bytes
                print("ALLOC", s[0], b[0], s[1], b[1], s[2], b[2], s[3], b[3])
                for i in range(_KINDS):
                    s[i] = 0
                    b[i] = 0
        if time.ticks_diff(time.ticks_ms(), self.m_next) >= 0:
            self.m_next = time.ticks_add(self.m_next, _HOUR_MS)
            gc.collect()
            print("HEAP", time.ticks_ms(), gc.mem_alloc(), gc.mem_free())
            micropython.mem_info()
            gc.collect()
            gc.threshold(-1)           # the allocation threshold collects even when disabled
            gc.disable()
            self.m_window = _WINDOW_STEPS
        if self.m_window > 0:
            gc.collect()               # each step starts clean: its delta is its own
            self.m_kind = _WAKE
            self.m_a0 = gc.mem_alloc()
        PicoHal.wait(self, ms)  # noqa: F821
