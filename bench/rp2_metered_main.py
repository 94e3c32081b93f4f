# The firmware's main.py with a metering HAL, for bench/bench_rp2_heap.py only (it is spliced
# into main.py in place of `hal = PicoHal()`; the firmware itself never carries it). On the real
# rp2 port it prints, on the USB-CDC console:
#   HEAP <ticks_ms> <live bytes> <free bytes>   every hour, after gc.collect(), plus
#                                               micropython.mem_info() (largest free block)
#   ALLOC <steps> <bytes> for each kind of step: a wake-up that only feeds the watchdog, a
#         stroke (with its capture), a sensing window, a step that wrote a record, a step that
#         read host input (a command and its reply: not steady state); over a window
#         of steps right after each HEAP, with the collector off (no threshold collection
#         either) and a gc.collect() before each step. Bytes are net: allocated minus what the
#         VM freed explicitly (a string or list shrunk or moved as it grew).
# wait() (it runs between steps) does the metering; serial_read() only notes that input came
# (an attribute set, nothing allocated); a step's other kinds are read from the application's
# own counters afterwards, so the metering adds nothing to the step itself.
import array
import gc
import time

import micropython

_HOUR_MS = 3600000
_WINDOW_STEPS = 120
_WAKE, _STROKE, _SENSE, _SAVE, _HOST = 0, 1, 2, 3, 4
_KINDS = 5


class MeteredHal(PicoHal):  # noqa: F821  (main.py imports PicoHal before this text)
    def __init__(self):
        PicoHal.__init__(self)  # noqa: F821
        self.m_steps = array.array("i", [0] * _KINDS)
        self.m_bytes = array.array("i", [0] * _KINDS)
        self.m_a0 = -1
        self.m_window = 0
        self.m_writes = 0
        self.m_strokes = 0
        self.m_samples = 0
        self.m_next = time.ticks_ms()   # the first wait: the boot checkpoint
        self.m_host = False

    def serial_read(self):
        data = PicoHal.serial_read(self)  # noqa: F821
        if data is not None:
            self.m_host = True
        return data

    def _kind(self):
        a = app  # noqa: F821  (main.py's, bound before app.run())
        sup = a.supervisor
        if self.m_host:
            return _HOST
        if a.storage.writes != self.m_writes:
            return _SAVE
        if sup.strokes_made != self.m_strokes:
            return _STROKE
        if sup.samples - self.m_samples >= 100:
            return _SENSE
        return _WAKE

    def wait(self, ms):
        if self.m_a0 >= 0:
            d = gc.mem_alloc() - self.m_a0
            k = self._kind()
            self.m_steps[k] += 1
            self.m_bytes[k] += d
            self.m_window -= 1
            if self.m_window <= 0 or gc.mem_free() < 30000:
                gc.threshold(GC_THRESHOLD)  # noqa: F821  (main.py's)
                gc.enable()
                self.m_a0 = -1
                s, b = self.m_steps, self.m_bytes
                print("ALLOC", s[0], b[0], s[1], b[1], s[2], b[2], s[3], b[3], s[4], b[4])
                for i in range(_KINDS):
                    s[i] = 0
                    b[i] = 0
        if time.ticks_diff(time.ticks_ms(), self.m_next) >= 0:
            self.m_next = time.ticks_add(self.m_next, _HOUR_MS)
            gc.collect()
            print("HEAP", time.ticks_ms(), gc.mem_alloc(), gc.mem_free())
            micropython.mem_info()
            gc.threshold(-1)           # the allocation threshold collects even when disabled
            gc.disable()
            self.m_window = _WINDOW_STEPS
        if self.m_window > 0:
            gc.collect()               # each step starts clean: its delta is its own
            a = app  # noqa: F821
            self.m_writes = a.storage.writes
            self.m_strokes = a.supervisor.strokes_made
            self.m_samples = a.supervisor.samples
            self.m_host = False
            self.m_a0 = gc.mem_alloc()
        PicoHal.wait(self, ms)  # noqa: F821
