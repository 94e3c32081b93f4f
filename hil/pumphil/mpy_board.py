"""The emulator's ``micropython`` runtime: the unchanged firmware (shell and core) on the real
MicroPython interpreter, the plant and the flash in this CPython process.

The interpreter is the official WebAssembly build (``@micropython/micropython-webassembly-pyscript``,
pinned in package.json) in a Node process (``pumphil/mpy/bridge.mjs``). It runs the board's
wake-up loop itself (``pumphil/mpy/mp_board.py``: VirtualBoard's semantics: virtual clock, 30-bit
ticks, watchdog, hangs, resets) and crosses to this process only for what the plant and the flash
own: strokes, pressure captures, the battery, the self-test's sample, littlefs file operations,
and (batched with the next crossing, in order) serial output, indications, boots/resets and the
plant's per-wake-up battery charge. ``MpyBoard`` offers VirtualBoard's surface to the Emulator, so
``Emulator(runtime="micropython")`` is a constructor choice (docs/emulator.md, "Runtimes").

Not offered on this runtime (refused with MicroPythonRuntimeUnsupported): observers on the
firmware's objects (``on_power_on``, the campaign's detector probe) and HAL wrappers
(``wrap_hal``, tests/verify), which need the App in this process.
"""

from __future__ import annotations

import errno
import io
import json
import subprocess
import sys
import tempfile
import threading
from array import array
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .board import PressureTrace, VirtualClock, sensor_self_test
from .flash import Flash
from .mpy_runtime import FIRMWARE_DIR, check_available, node_executable
from .plant import Plant

BRIDGE = Path(__file__).resolve().parent / "mpy" / "bridge.mjs"
MP_BOARD_DIR = Path(__file__).resolve().parent / "mpy"      # mp_board.py, mounted at /mpyboard
HEAP_BYTES = 2 * 1024 * 1024     # grows when a call needs more; measured fastest (docs/emulator.md)


class MicroPythonRuntimeUnsupported(ValueError):
    """An emulator feature this runtime cannot offer (named in the message)."""

    reason = "not_on_micropython"


class MicroPythonRuntimeError(RuntimeError):
    """The interpreter raised outside the firmware's own handlers, or its process ended."""

    reason = "micropython_runtime"


class MpyBoard:
    """VirtualBoard's surface (power, run_until, poke, hang, boots/resets, pressure trace) with
    the firmware in a MicroPython process. Every call is synchronous; callers serialise them
    (the Emulator's lock). State read here (now, next wake-up, powered, halted, hang) is the
    interpreter's as of the end of the last call."""

    def __init__(self, plant: Plant, flash: Flash, clock: VirtualClock,
                 output: Callable[[bytes, int | None], None], trace_captures: int = 20_000) -> None:
        check_available()
        self.plant = plant
        self.flash = flash
        self.clock = clock
        self.output = output
        self.rx: deque[tuple[int, bytes]] = deque()     # input not yet handed to the interpreter
        self.button = False
        self.indications: list[tuple[int, str | None]] = []
        self.powered = False
        self.halted = False
        self.hang_until_ms: int | None = None
        self.next_wake_ms = 0
        self.resets: list[tuple[int, str]] = []
        self.boots: list[tuple[int, str]] = []
        self.steps = 0
        self.crossings = 0          # requests from the interpreter served (benchmarks)
        self.trace = PressureTrace(trace_captures)
        self._lock = threading.Lock()   # one command at a time on the pipe, whoever calls
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [node_executable(), str(BRIDGE), "--heap", str(HEAP_BYTES),
             "--mount", f"{FIRMWARE_DIR}:/firmware", "--mount", f"{MP_BOARD_DIR}:/mpyboard"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0,
            cwd=FIRMWARE_DIR.parent)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._w = self._proc.stdin
        self._r = io.BufferedReader(self._proc.stdout, 1 << 16)   # type: ignore[type-var]
        self._started = False
        self._command("from mp_board import B\nB.done()")
        self._started = True

    # -- refused features ----------------------------------------------------------------------------
    @property
    def app(self) -> None:
        """The firmware's App lives in the interpreter: never available here."""
        return None

    @property
    def on_power_on(self) -> None:
        return None

    @on_power_on.setter
    def on_power_on(self, fn: Any) -> None:
        if fn is not None:
            raise MicroPythonRuntimeUnsupported(
                "observers on the firmware's objects (on_power_on: the campaign's detector probe) "
                "need the cpython runtime")

    @property
    def wrap_hal(self) -> None:
        return None

    @wrap_hal.setter
    def wrap_hal(self, fn: Any) -> None:
        if fn is not None:
            raise MicroPythonRuntimeUnsupported("HAL wrappers (wrap_hal) need the cpython runtime")

    # -- power and reset -------------------------------------------------------------------------
    def power_on(self, cause: str = "power_on") -> None:
        self._command(f"B.power_on({cause!r})\nB.done()")

    def power_off(self) -> None:
        self.rx.clear()
        self._command("B.power_off()\nB.done()")

    def reset(self, why: str) -> None:
        self._command(f"B.reset({why!r})\nB.done()")

    def answers(self) -> bool:
        """As VirtualBoard.answers, once a command in flight (another thread's) has ended."""
        with self._lock:
            return self.powered and not self.halted and self.hang_until_ms is None

    def hang(self, ms: int, every_boot: bool = False) -> None:
        """As VirtualBoard.hang: the firmware's main loop stops for ms (watchdog included)."""
        self._command(f"B.hang({int(ms)}, {bool(every_boot)})\nB.done()")

    # -- running ---------------------------------------------------------------------------------
    def run_until(self, target_ms: int) -> None:
        """Every wake-up up to target_ms, then the clock at target_ms (in slices of the
        interpreter's SLICE_STEPS wake-ups: its collector runs between them)."""
        code = f"B.run_until({int(target_ms)})"
        while self._command(code):
            pass

    def poke(self) -> None:
        """Input arrived (rx, button): the firmware wakes now if it answers."""
        items = [[link, data.hex()] for link, data in self.rx]
        self.rx.clear()
        button = self.button
        self.button = False
        self._command(f"B.poke({items!r}, {button})")

    def pressure_trace(self, t0_ms: int, t1_ms: int) -> list[tuple[int, int]]:
        return self.trace.window(t0_ms, t1_ms)

    def close(self) -> None:
        """End the interpreter's process (idempotent)."""
        with self._lock:
            self._end()

    def _end(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            self._w.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._r.close()
        self._stderr.close()

    # -- the bridge ------------------------------------------------------------------------------
    def _command(self, code: str) -> bool:
        """Run code as one top-level call in the interpreter (the clock first set to ours),
        serving its crossings until it reports done. Returns the board's `more` flag."""
        with self._lock:
            return self._exchange(code)

    def _exchange(self, code: str) -> bool:
        if self._proc is None:
            raise MicroPythonRuntimeError("the micropython runtime is closed")
        if self._started:
            code = f"B.now_ms = {self.clock.now_ms}\n{code}"
        self._w.write(json.dumps(code).encode() + b"\n")
        read = self._r.readline
        while True:
            msg = read()
            kind = msg[:1]
            if kind == b"C":
                events, op, args = json.loads(msg[1:])
                if events:
                    self._events(events)
                self.crossings += 1
                try:
                    reply = [0, self._serve(op, args)]
                except OSError as exc:
                    reply = [exc.errno or errno.EIO, None]
                self._w.write(json.dumps(reply).encode() + b"\n")
            elif kind == b"D":
                events, _, state = json.loads(msg[1:])
                self._events(events)
                (self.clock.now_ms, self.next_wake_ms, self.powered, self.halted,
                 self.hang_until_ms, self.steps, more) = state
                return bool(more)
            elif kind == b"E":
                raise MicroPythonRuntimeError(json.loads(msg[1:]))
            else:
                self._died()

    def _died(self) -> None:
        proc = self._proc
        rc = None if proc is None else proc.poll()
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace")
        self._end()
        raise MicroPythonRuntimeError(f"the micropython runtime ended (exit {rc}): {tail}")

    def _events(self, events: list[Any]) -> None:
        """What happened in the interpreter since the last crossing, in its order."""
        wake = self.plant.wake
        for ev in events:
            if type(ev) is int:
                if ev >= 0:
                    wake(ev, True)
                else:
                    wake(-1 - ev, False)
                continue
            kind = ev[0]
            if kind == "o":
                self.output(bytes.fromhex(ev[2]), ev[1])
            elif kind == "i":
                self.indications.append((ev[1], ev[2]))
            elif kind == "b":
                self.boots.append((ev[1], ev[2]))
            elif kind == "r":
                self.resets.append((ev[1], ev[2]))
            elif kind == "s":
                self.flash.sync()

    def _serve(self, op: str, args: list[Any]) -> Any:
        """One HAL request from the interpreter: the plant's or the flash's answer."""
        plant = self.plant
        if op == "capture":
            t, period, n = args
            out = array("i", bytes(4 * n))
            plant.capture(t, period, out, n)
            self.trace.record(t, period, out, 0, n)
            if sys.byteorder != "little":
                out.byteswap()
            return out.tobytes().hex()      # the interpreter's int32 array (wasm32: little-endian)
        if op == "stroke":
            return plant.stroke(args[0])
        if op == "battery":
            return plant.battery_mv()
        if op == "self_test":
            return sensor_self_test(plant, args[0])
        flash = self.flash
        if op == "read":
            with flash.open(args[0], "rb") as f:
                return f.read().hex()
        if op == "write":
            path, mode, data = args
            with flash.open(path, mode) as f:
                f.write(bytes.fromhex(data))
            return None
        if op == "rename":
            flash.rename(args[0], args[1])
            return None
        if op == "remove":
            flash.remove(args[0])
            return None
        if op == "stat":
            return list(flash.stat(args[0]))
        raise MicroPythonRuntimeError(f"unknown request from the interpreter: {op!r}")
