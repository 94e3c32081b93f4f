# Bytes the device shell (pumpfw.app.App, unchanged) allocates per steady-state step, under the
# laptop MicroPython (the WebAssembly build, 31-bit small ints like the rp2 port). Run through
# pumphil.mpy_runtime by bench/bench_rp2_heap.py and tests/test_shell_alloc_on_micropython.py.
#
# The HAL here allocates nothing itself (integer line-pressure model from tables; an in-memory
# file system, or a board's own flash), so every byte counted is the firmware's. Each step runs
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

from pumpcore import auth as A
from pumpcore import wire
from pumpfw import storage
from pumpfw.app import App
from pumpfw.storage import provision

RATE = int(ARGV[1]) if len(ARGV) > 1 else 30000  # noqa: F821  (set by the runner)
STEADY = int(ARGV[2]) if len(ARGV) > 2 else 400  # noqa: F821
LIBRARY = json.loads(ARGV[3]) if len(ARGV) > 3 else None  # noqa: F821
TICKS_MASK = (1 << 30) - 1
KINDS = ("wake", "stroke", "sense", "save")

# A stroke's pressure response: 250 Pa decaying with tau 300 ms, sampled every 40 ms (Pa).
BUMP = [250 * 1000 // (1000 + 133 * k + 9 * k * k) for k in range(64)]
# Two pulsations (cardiac ~1.2 Hz, respiratory ~0.25 Hz) as 25-Hz tables (Pa).
CARDIAC = [0, 36, 58, 58, 36, 0, -36, -58, -58, -36, 0, 36, 58, 58, 36, 0, -36, -58, -58, -36, 0]
RESP = [0, 22, 43, 61, 75, 85, 90, 89, 83, 72, 57, 39, 19, -2, -23, -44, -62, -76, -85, -90, -89,
        -83, -72, -57, -39, -19, 2, 23, 44, 61, 75, 85, 90, 89, 83, 72, 57, 39, 19, -2, -23, -44,
        -62, -76, -85, -90, -89, -83, -72, -57, -39, -19, 2, 23, 44, 61, 75, 85, 90, 89, 83, 72,
        57, 39, 19, -2, -23, -44, -62, -76, -85, -90, -89, -83, -72, -57, -39, -19, 2, 23, 44, 61,
        75, 85, 90, 89, 83, 72, 57, 39, 19, -2, -23, -44, -62, -76, -85, -90, -89, -83, -72, -57]


class MemFile:
    def __init__(self, fs, path, mode):
        self.fs = fs
        self.path = path
        self.data = fs.files.get(path, b"") if ("r" in mode or "a" in mode) else b""
        self.pos = 0
        self.mode = mode
        self.parts = []

    def read(self, size=-1):
        end = len(self.data) if size is None or size < 0 else min(len(self.data), self.pos + size)
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def readline(self):
        nl = self.data.find(b"\n", self.pos)
        end = len(self.data) if nl < 0 else nl + 1
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def seek(self, off, whence=0):
        self.pos = max(0, (0, self.pos, len(self.data))[whence] + off)
        return self.pos

    def write(self, b):
        self.parts.append(bytes(b))
        return len(b)

    def close(self):
        if "r" not in self.mode:
            self.fs.files[self.path] = self.data + b"".join(self.parts)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MemFs:
    def __init__(self):
        self.files = {}

    def open(self, path, mode):
        if "r" in mode and path not in self.files:
            raise OSError(2)
        return MemFile(self, path, mode)

    def rename(self, src, dst):
        if src not in self.files:
            raise OSError(2)
        self.files[dst] = self.files.pop(src)

    def remove(self, path):
        if path not in self.files:
            raise OSError(2)
        del self.files[path]

    def stat(self, path):
        if path == "/":
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if path not in self.files:
            raise OSError(2)
        return (0x8000, 0, 0, 0, 0, 0, len(self.files[path]), 0, 0, 0)


class IntHal:
    """The HAL contract with virtual time; allocation-free on every steady-state call."""

    board_name = "emulator"

    def __init__(self, fs):
        self.fs = fs
        self.now = 0                 # virtual ms (ticks wrap at 2**30 like the Pico's)
        self.rx = []
        self.stroke_at = -100000

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
        self.stroke_at = self.now
        self.now += 50
        return True

    def motor_off(self):
        pass

    def read_pressure(self, buf, n, period_ms, start=0):
        for i in range(n):
            t = self.now
            k = (t - self.stroke_at) // 40
            p = 1300 + CARDIAC[(t // 40) % 21] + RESP[(t // 40) % 100]
            if k < 64:
                p += BUMP[k]
            buf[start + i] = p
            self.now = t + period_ms

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


KEYS = {"clinician": "00" * 32, "patient": "11" * 32, "readonly": "22" * 32}
try:
    import machine  # noqa: F401  (a board: its own flash file system, as the firmware uses it)
    from pumpfw.flashfs import FlashFs
    fs = FlashFs()
except ImportError:
    fs = MemFs()
_n = [0]


def _not_random_hex(n):
    # this build has no os.urandom: key ids from a counter (a measurement, not a pump)
    _n[0] += 1
    return ("%02x" % (_n[0] & 0xFF)) * n


storage._random_hex = _not_random_hex
provision(fs, "MP-ALLOC", KEYS, library=LIBRARY)
hal = IntHal(fs)
app = App(hal)
app.boot()
counter = [0]


def request(cmd, args):
    counter[0] += 1
    key = A.wire_key(bytes.fromhex(KEYS["clinician"]), app.auth.kids()["clinician"])
    body = wire.request_body("a%d" % counter[0], "clinician", counter[0], cmd, args)
    hal.rx.append(wire.request_line(body, A.tag(key, body)).encode() + b"\n")
    hal.wait(app.step())


def run_for(ms):
    end = hal.now + ms
    while hal.now < end:
        hal.wait(app.step())


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
run_for(60000)
request("start", {})
run_for(3600000)                     # settle: first windows, minute supervision, records
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
