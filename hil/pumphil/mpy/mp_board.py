# The virtual board on the real MicroPython (the emulator's `micropython` runtime). Runs under
# the WebAssembly interpreter inside Node (pumphil/mpy/bridge.mjs), never under CPython.
#
# It is pumphil.board.VirtualBoard's wake-up loop with the same semantics (virtual clock with the
# Pico's 30-bit ticks, the watchdog with block(), hangs, resets, poke on input), running the
# unchanged firmware (pumpfw.app.App). Only what the CPython side owns crosses the bridge
# (pumphil.mpy_board.MpyBoard answers): the plant (stroke, capture, battery, self-test capture),
# the littlefs flash (file reads and writes, rename, remove, stat, sync) and the serial output.
# The conformance test (tests/emulator/test_runtime_conformance.py) holds the two loops to
# byte-identical transcripts: a change to one is a change to both.
#
# Crossing protocol (itpump_bridge.call(str) -> str, one JSON array each way):
#   request  [events, op, args]   events: what happened since the last crossing, in order, that
#                                 needs no answer: t (an int: plant.wake(t, True)), -1 - t
#                                 (plant.wake(t, False): a wake-up host input caused), ["o",
#                                 link, hex bytes] (serial output), ["i", t, pattern] (indication),
#                                 ["b", t, cause] (boot), ["r", t, why] (reset), ["s"] (flash
#                                 sync: power off)
#   reply    [0, value] or [errno, None] (an OSError the flash raised, re-raised here); bytes
#            cross as lowercase hex, a capture's samples as the hex of their int32 array
#            (little-endian, as this interpreter's)
# Commands from CPython are top-level calls on the board object `B`; each ends with `done()`,
# which sends [events, "done", the board's state] with no reply (itpump_bridge.send). This
# build's garbage collector frees nothing while Python code runs, so run_until does at most
# SLICE_STEPS wake-ups per call (CPython calls again).
import binascii
import json
from array import array

import itpump_bridge
import mp_binascii

# This build's binascii is micropython-lib's pure Python (the Pico's is C; its b2a_base64 is
# O(n**2)): base64 is swapped for mp_binascii's (the same bytes) before the firmware imports it.
binascii.b2a_base64 = mp_binascii.b2a_base64
binascii.a2b_base64 = mp_binascii.a2b_base64

from pumpfw import board as fw_board  # noqa: E402  (after the swap above)
from pumpfw.app import App  # noqa: E402

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
TICKS_HALF = TICKS_PERIOD >> 1
STROKE_MS = 50                 # as pumphil.board.STROKE_MS
WDT_TIMEOUT_MS = fw_board.WDT_TIMEOUT_MS
SLICE_STEPS = 200              # wake-ups per top-level call (the collector runs between calls)

_call = itpump_bridge.call
_events: list = []            # pending events (the protocol above)


def hexstr(data):
    """Lowercase hex of bytes-like data as str (this build's b"".hex() returns b"")."""
    return bytes(data).hex() if len(data) else ""


def cross(op, args):
    """One synchronous request to the CPython side, carrying the pending events."""
    msg = json.dumps([_events, op, args])
    _events.clear()
    err, value = json.loads(_call(msg))
    if err:
        raise OSError(err)
    return value


class BoardReset(BaseException):
    """The watchdog fired inside a blocking HAL call (as pumphil.board.BoardReset)."""


class ReadFile:
    """A file opened "rb": its content, fetched in one crossing at open (a log file is at most
    pumpfw.board.LOG_FILE_MAX bytes; the Pico streams it, this runtime's heap holds it)."""

    def __init__(self, data):
        self._data = data
        self._pos = 0

    def read(self, size=-1):
        start = self._pos
        end = len(self._data) if size is None or size < 0 else min(len(self._data), start + size)
        self._pos = end
        return self._data[start:end]

    def readline(self):
        start = self._pos
        nl = self._data.find(b"\n", start)
        end = len(self._data) if nl < 0 else nl + 1
        self._pos = end
        return self._data[start:end]

    def seek(self, offset, whence=0):
        base = (0, self._pos, len(self._data))[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class WriteFile:
    """Writes are kept here and go to the littlefs flash in one crossing at close(): littlefs
    commits a file at close too, and the firmware opens, writes and closes within one step."""

    def __init__(self, path, mode):
        self._path = path
        self._mode = mode
        self._parts = []

    def write(self, data):
        self._parts.append(bytes(data))
        return len(data)

    def close(self):
        if self._parts is not None:
            data, self._parts = b"".join(self._parts), None
            cross("write", [self._path, self._mode, hexstr(data)])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BridgedFs:
    """The Fs contract (pumpfw/hal.py) on the CPython side's littlefs image."""

    def open(self, path, mode):
        if "r" in mode:
            return ReadFile(bytes.fromhex(cross("read", [path])))
        return WriteFile(path, mode)

    def rename(self, src, dst):
        cross("rename", [src, dst])

    def remove(self, path):
        cross("remove", [path])

    def stat(self, path):
        return tuple(cross("stat", [path]))


class BridgedHal:
    """The HAL contract (pumpfw/hal.py) as pumphil.board.VirtualHal gives it, with the plant and
    the flash across the bridge."""

    board_name = "emulator"

    def __init__(self, board):
        self.board = board
        self.fs = board.fs

    def ticks_ms(self):
        return self.board.now_ms & TICKS_MAX

    def ticks_diff(self, a, b):
        return ((a - b + TICKS_HALF) & TICKS_MAX) - TICKS_HALF

    def wait(self, ms):
        raise RuntimeError("BridgedHal.wait is not used: the board drives App.step()")

    def serial_read(self):
        rx = self.board.rx
        return rx.pop(0) if rx else None

    def serial_write(self, data, link=None):
        _events.append(["o", link, hexstr(data)])

    def button_pressed(self):
        p = self.board.button
        self.board.button = False
        return p

    def motor_stroke(self):
        b = self.board
        t = b.now_ms
        b.block(t, STROKE_MS)
        ok = cross("stroke", [t])
        b.now_ms = t + STROKE_MS
        return ok

    def motor_off(self):
        pass

    def read_pressure(self, buf, n, period_ms, start=0):
        b = self.board
        t = b.now_ms
        b.block(t, n * period_ms)
        # the samples cross as the hex of their int32 array (one C call each way); the firmware's
        # buffers are lists, and a list's slice takes a list (one C call, not a loop per sample)
        samples = array("i", bytes.fromhex(cross("capture", [t, period_ms, n])))
        if type(buf) is array:
            buf[start:start + n] = samples
        else:
            buf[start:start + n] = list(samples)
        b.now_ms = t + n * period_ms

    def battery_mv(self):
        return cross("battery", [])

    def indicate(self, pattern):
        _events.append(["i", self.board.now_ms, pattern])

    def wdt_feed(self):
        self.board.last_feed_ms = self.board.now_ms

    def reset_cause(self):
        return self.board.cause

    def self_test(self):
        return cross("self_test", [self.board.now_ms])


class Board:
    def __init__(self):
        self.fs = BridgedFs()
        self.now_ms = 0
        self.rx = []
        self.button = False
        self.app = None
        self.powered = False
        self.next_wake_ms = 0
        self.last_feed_ms = 0
        self.cause = "power_on"
        self.hang_until_ms = None
        self.hang_every_boot_ms = 0
        self.steps = 0

    # -- the state CPython mirrors, sent with every command's end ---------------------------------
    def done(self, more=False):
        app = self.app
        msg = json.dumps([_events, "done", [self.now_ms, self.next_wake_ms, self.powered,
                                            app is not None and app.halted, self.hang_until_ms,
                                            self.steps, more]])
        _events.clear()
        itpump_bridge.send(msg)

    # -- power and reset ----------------------------------------------------------------------------
    def power_on(self, cause="power_on"):
        self.powered = True
        self.cause = cause
        _events.append(["b", self.now_ms, cause])
        self.app = App(BridgedHal(self))
        self.last_feed_ms = self.now_ms
        self.app.boot()
        self.next_wake_ms = self.now_ms
        self.hang_until_ms = None
        if self.hang_every_boot_ms:
            self.hang(self.hang_every_boot_ms)

    def answers(self):
        return self.powered and self.app is not None and not self.app.halted \
            and self.hang_until_ms is None

    def hang(self, ms, every_boot=False):
        if every_boot:
            self.hang_every_boot_ms = ms
        self.hang_until_ms = self.now_ms + ms if ms > 0 else None

    def power_off(self):
        self.powered = False
        self.app = None
        self.rx.clear()
        _events.append(["s"])

    def reset(self, why):
        _events.append(["r", self.now_ms, why])
        self.power_off()
        self.power_on(why)

    # -- running ------------------------------------------------------------------------------------
    def run_until(self, target_ms):
        """Wake-ups up to target_ms, at most SLICE_STEPS of them; done(more=True) when it stopped
        early (call again), else the clock is left at target_ms."""
        budget = SLICE_STEPS
        while self.powered and self.app is not None:
            app = self.app
            hang = self.hang_until_ms
            if app.halted or hang is not None:
                fire = self.last_feed_ms + WDT_TIMEOUT_MS
                if hang is not None and not app.halted and hang < fire:
                    if hang > target_ms:
                        break
                    self.hang_until_ms = None
                    if self.next_wake_ms < hang:
                        self.next_wake_ms = hang
                    continue
                if fire > target_ms:
                    break
                self.now_ms = max(self.now_ms, fire)
                self.reset("watchdog")
                continue
            if self.next_wake_ms > target_ms:
                break
            if budget == 0:
                return self.done(True)
            budget -= 1
            if self.next_wake_ms > self.now_ms:
                self.now_ms = self.next_wake_ms
            self._step()
        if target_ms > self.now_ms:
            self.now_ms = target_ms
        self.done()

    def poke(self, items, button):
        """Input arrived (items: [link, hex bytes] each; button: a press): one step now when the
        firmware answers (pumphil.board.VirtualBoard.poke)."""
        for link, data_hex in items:
            self.rx.append((link, bytes.fromhex(data_hex)))
        if button:
            self.button = True
        if self.answers():
            self._step(self.now_ms >= self.next_wake_ms)
        self.done()

    def _step(self, own_wake=True):
        app = self.app
        self.steps += 1
        _events.append(self.now_ms if own_wake else -1 - self.now_ms)
        try:
            ms = app.step()
        except BoardReset:
            self.reset("watchdog")
            return
        except Exception as exc:
            app.fail_safe(exc)
            return
        now = self.now_ms
        if now - self.last_feed_ms > WDT_TIMEOUT_MS:
            self.reset("watchdog")
            return
        self.next_wake_ms = now + (ms if ms > 0 else 1)

    def block(self, t_ms, duration_ms):
        fire = self.last_feed_ms + WDT_TIMEOUT_MS
        if t_ms + duration_ms > fire:
            if fire > self.now_ms:
                self.now_ms = fire
            raise BoardReset()


B = Board()
