# The device shell (pumpfw.app.App, unchanged) under the laptop MicroPython (the WebAssembly
# build, run by bench/bench_rp2_heap.py through pumphil.mpy_runtime): its live heap after boot,
# after programming and after every simulated day. The HAL below is the bench's own (a virtual
# clock and a small line-pressure model).
#
# This build's collector frees nothing while Python code runs (it cannot scan the WebAssembly
# stack), so this script only defines the phases; the bench runs each phase, `gc.collect()` and
# `heap(name)` as separate top-level calls (mpy_runtime's `then`). Prints "key value..." lines.
# ARGV: [script, rate_nl_per_h, library record as JSON]
import gc
import json
import math
import os

from pumpcore import auth as A
from pumpcore import wire
from pumpfw import storage
from pumpfw.app import App
from pumpfw.storage import provision

RATE = int(ARGV[1]) if len(ARGV) > 1 else 30000  # noqa: F821  (set by the runner)
LIBRARY = json.loads(ARGV[2]) if len(ARGV) > 2 else None  # noqa: F821
TICKS_MASK = (1 << 30) - 1
DAY_MS = 86400000


class Fs:
    def __init__(self, root):
        self.root = root

    def open(self, path, mode):
        return open(self.root + path, mode)

    def rename(self, src, dst):
        os.rename(self.root + src, self.root + dst)

    def remove(self, path):
        os.remove(self.root + path)

    def stat(self, path):
        return os.stat(self.root + path)


class BenchHal:
    """Virtual time; the line pressure is CSF baseline + pulsations + each stroke's decaying
    bump (tau 0.3 s), so the occlusion and catheter detectors see a healthy line."""

    def __init__(self, fs):
        self.fs = fs
        self.now = 0                 # virtual ms (unbounded; ticks wrap like the Pico's)
        self.rx = []
        self.stroke_at = -10 ** 9
        self.bump = 0.0
        self.seed = 12345
        self.strokes = 0

    def ticks_ms(self):
        return self.now & TICKS_MASK

    def ticks_diff(self, a, b):
        return ((a - b + (1 << 29)) & TICKS_MASK) - (1 << 29)

    def wait(self, ms):
        self.now += ms

    def serial_read(self):
        if not self.rx:
            return None
        return (0, self.rx.pop(0))

    def serial_write(self, data, link=None):
        pass

    def button_pressed(self):
        return False

    def motor_stroke(self):
        self.bump = self._line(self.now) + 250.0
        self.stroke_at = self.now
        self.now += 50
        self.strokes += 1
        return True

    def motor_off(self):
        pass

    def _line(self, t):
        dt = t - self.stroke_at
        return self.bump * math.exp(-dt / 300.0) if dt < 5000 else 0.0

    def read_pressure(self, buf, n, period_ms, start=0):
        for i in range(n):
            t = self.now
            self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
            noise = (self.seed >> 16) % 31 - 15
            p = 1300 + self._line(t) + 61.0 * math.sin(0.00754 * t) + 90.0 * math.sin(0.00157 * t)
            buf[start + i] = int(p) + noise
            if i + 1 < n:
                self.now += period_ms

    def battery_mv(self):
        return 3600

    def indicate(self, pattern):
        pass

    def wdt_feed(self):
        pass

    def self_test(self):
        return None

    def reset_cause(self):
        return "power_on"


def heap(name):
    print("heap", name, gc.mem_alloc(), gc.mem_free())


root = "/benchfs"
try:
    os.mkdir(root)
except OSError:
    pass
KEYS = {"clinician": "00" * 32, "patient": "11" * 32, "readonly": "22" * 32}
fs = Fs(root)
# this build has no os.urandom: the device key and key ids come from a counter (a bench, not a pump)
_n = [0]


def _not_random_hex(n):
    _n[0] += 1
    return ("%02x" % (_n[0] & 0xFF)) * n


storage._random_hex = _not_random_hex
provision(fs, "MP-BENCH", KEYS, library=LIBRARY)
hal = BenchHal(fs)
app = None
counter = [0]


def boot():
    global app
    app = App(hal)
    app.boot()


def request(cmd, args):
    counter[0] += 1
    key = A.wire_key(bytes.fromhex(KEYS["clinician"]), app.auth.kids()["clinician"])
    body = wire.request_body("b%d" % counter[0], "clinician", counter[0], cmd, args)
    line = wire.request_line(body, A.tag(key, body))
    hal.rx.append(line.encode() + b"\n")
    app.step()


def program():
    rx = {"reservoir": {"capacity_nl": 20000000, "fill_nl": 20000000, "low_alert_nl": 2000000,
                        "empty_nl": 500000},
          "catheter": {"volume_nl": 2000},
          "drugs": [{"name": "morphine", "conc_ug_per_ml": 10000, "hard_ng_per_day": None,
                     "soft_ng_per_day": None}],
          "basal": {"steps": [[0, RATE]], "days": None}, "periodic": [],
          "patient": {"volume_nl": 1000, "duration_ms": 60000, "lockout_ms": 3600000,
                      "max_per_24h": 4}}
    request("set_clock", {"day": 9500, "ms_of_day": 28800000})
    request("stage", {"rx": rx})
    request("commit", {"checksum": app.pump.review()[1]["checksum"], "confirm_soft": True,
                       "bridge": False})
    request("prime", {"volume_nl": 2000})
    run_until(hal.now + 60000)
    request("start", {})
    print("state", app.pump.state)


def run_until(t_end):
    while hal.now < t_end:
        hal.wait(app.step())


def day():
    run_until((hal.now // DAY_MS + 1) * DAY_MS)
    print("day", hal.now // DAY_MS, hal.strokes, app.pump.state)
