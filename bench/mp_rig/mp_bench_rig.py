# The laptop MicroPython benches' rig (bench/mp_step_alloc.py, bench/mp_shell_heap.py): the
# unchanged App (pumpfw.app) on a HAL of this file's, provisioned, driven over the protocol with
# the clinician's key. Runs under MicroPython only (mounted at /mprig by the benches and by
# tests/test_shell_alloc_on_micropython.py), with rx.json beside it.
#
# The HAL allocates nothing itself (an integer line-pressure model from tables), so what a bench
# meters is the firmware's. File systems: MemFs keeps files in the interpreter's heap (no VFS
# calls: the allocation meter), OsFs puts them on the interpreter's VFS under a root (the heap
# bench: records do not count as live heap).
import json
import os

from pumpcore import auth as A
from pumpcore import wire
from pumpfw import storage
from pumpfw.app import App
from pumpfw.storage import provision

TICKS_MASK = (1 << 30) - 1
_HERE = __file__.rsplit("/", 1)[0]    # where this rig is mounted
KEYS = {"clinician": "00" * 32, "patient": "11" * 32, "readonly": "22" * 32}

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


class OsFs:
    def __init__(self, root):
        self.root = root
        try:
            os.mkdir(root)
        except OSError:
            pass

    def open(self, path, mode):
        return open(self.root + path, mode)

    def rename(self, src, dst):
        os.rename(self.root + src, self.root + dst)

    def remove(self, path):
        os.remove(self.root + path)

    def stat(self, path):
        return os.stat(self.root + path)


class IntHal:
    """The HAL contract with virtual time; allocation-free on every steady-state call."""

    board_name = "emulator"

    def __init__(self, fs):
        self.fs = fs
        self.now = 0                 # virtual ms (ticks wrap at 2**30 like the Pico's)
        self.rx = []
        self.stroke_at = -100000
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
        self.strokes += 1
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


_n = [0]


def _not_random_hex(n):
    # this build has no os.urandom: the device key and key ids come from a counter (a bench, not a
    # pump)
    _n[0] += 1
    return ("%02x" % (_n[0] & 0xFF)) * n


class Rig:
    """A provisioned App on an IntHal over fs; `request` sends one authenticated command and runs
    the step it wakes."""

    def __init__(self, fs, device_id, library):
        storage._random_hex = _not_random_hex
        provision(fs, device_id, KEYS, library=library)
        self.hal = IntHal(fs)
        self.app = None
        self.counter = 0

    def boot(self):
        self.app = App(self.hal)
        self.app.boot()

    def request(self, cmd, args):
        self.counter += 1
        app = self.app
        key = A.wire_key(bytes.fromhex(KEYS["clinician"]), app.auth.kids()["clinician"])
        body = wire.request_body("r%d" % self.counter, "clinician", self.counter, cmd, args)
        self.hal.rx.append(wire.request_line(body, A.tag(key, body)).encode() + b"\n")
        self.hal.wait(app.step())

    def run_until(self, t_end):
        hal = self.hal
        app = self.app
        while hal.now < t_end:
            hal.wait(app.step())

    def program(self, rate_nl_per_h):
        """Clock, the benches' program (rx.json beside this file, also the rp2 bench's) at
        rate_nl_per_h, prime, start: the pump runs."""
        with open(_HERE + "/rx.json") as f:
            rx = json.load(f)
        rx["basal"]["steps"] = [[0, rate_nl_per_h]]
        self.request("set_clock", {"day": 9500, "ms_of_day": 28800000})
        self.request("stage", {"rx": rx})
        self.request("commit", {"checksum": self.app.pump.review()[1]["checksum"],
                                "confirm_soft": True, "bridge": False})
        self.request("prime", {"volume_nl": 2000})
        self.run_until(self.hal.now + 60000)
        self.request("start", {})
