"""The virtual board: the unchanged firmware (firmware/pumpfw + firmware/pumpcore) on simulated
hardware, in virtual time.

Only the HAL is simulated (pumpfw.app's HAL contract): a virtual clock whose ``ticks_ms`` wraps at
2**30 exactly like the Pico's, a motor whose strokes move fluid in the plant and give (or, when
stalled, withhold) the feedback pulse, a pressure sensor sampling the plant, buzzer/LED
indications, a patient button, a watchdog that really resets the board when it is not fed, a flash
holding a real littlefs image, and a serial port.

Scheduling: the firmware's main loop is ``App.step()`` followed by a sleep of the returned ms. The
board runs steps at their wake-up times as virtual time is advanced (``run_until``), and runs one
extra step at the current time when serial input arrives (``poke``), which is what the Pico's
``poll`` wake-up on input does. Blocking HAL calls (pressure captures, strokes) advance the
virtual clock by their duration, as they take real time on the device.
"""

from __future__ import annotations

import sys
from array import array
from collections import deque
from collections.abc import Callable, MutableSequence
from pathlib import Path
from typing import Any

import pumphil

from .flash import Flash
from .plant import Plant

# from the package's __init__ (this module's own __file__ is in build/accel when it runs compiled)
FIRMWARE_DIR = Path(pumphil.__file__).resolve().parents[2] / "firmware"
if str(FIRMWARE_DIR) not in sys.path:
    sys.path.insert(0, str(FIRMWARE_DIR))

from pumpfw import board as fw_board  # noqa: E402  (the firmware package from firmware/)
from pumpfw.app import App  # noqa: E402

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
TICKS_HALF = TICKS_PERIOD >> 1
STROKE_MS = 50                 # a stroke takes 50 ms of motor time
WDT_TIMEOUT_MS = fw_board.WDT_TIMEOUT_MS


class BoardReset(BaseException):
    """Raised inside a blocking HAL call when the watchdog fires: the board's step unwinds and the
    board reboots. A BaseException, so no `except Exception` in the firmware can swallow it."""


class VirtualClock:
    """Virtual ms since the emulator started (an unbounded int); ticks wrap like the Pico's."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms

    def ticks_ms(self) -> int:
        return self.now_ms & TICKS_MAX

    @staticmethod
    def ticks_diff(a: int, b: int) -> int:
        return ((a - b + TICKS_HALF) & TICKS_MAX) - TICKS_HALF


class VirtualHal:
    """The HAL object handed to the firmware's App (see pumpfw/app.py for the contract)."""

    board_name = "emulator"   # what `hello` reports as the board: never mistaken for a Pico

    def __init__(self, board: VirtualBoard) -> None:
        self.board = board
        self.fs = board.flash
        self.ticks_ms = board.clock.ticks_ms
        self.ticks_diff = VirtualClock.ticks_diff

    def wait(self, ms: int) -> None:  # the board schedules wake-ups itself (run_until)
        raise RuntimeError("VirtualHal.wait is not used: the board drives App.step()")

    def serial_read(self) -> tuple[int, bytes] | None:
        rx = self.board.rx
        return rx.popleft() if rx else None

    def serial_write(self, data: bytes, link: int | None = None) -> None:
        self.board.output(data, link)

    def button_pressed(self) -> bool:
        p = self.board.button
        self.board.button = False
        return p

    def motor_stroke(self) -> bool:
        b = self.board
        t = b.clock.now_ms
        b.block(t, STROKE_MS)
        ok = b.plant.stroke(t)
        b.clock.now_ms = t + STROKE_MS
        return ok

    def motor_off(self) -> None:
        pass  # strokes are atomic here: nothing is in flight between steps

    def read_pressure(self, buf: MutableSequence[int], n: int, period_ms: int,
                      start: int = 0) -> None:
        b = self.board
        t = b.clock.now_ms
        b.block(t, n * period_ms)
        b.plant.capture(t, period_ms, buf, n, start)
        b.trace.record(t, period_ms, buf, start, n)
        b.clock.now_ms = t + n * period_ms

    def battery_mv(self) -> int:
        return self.board.plant.battery_mv()

    def indicate(self, pattern: str | None) -> None:
        self.board.indications.append((self.board.clock.now_ms, pattern))

    def wdt_feed(self) -> None:
        self.board.last_feed_ms = self.board.clock.now_ms

    def reset_cause(self) -> str:
        return self.board.cause

    def self_test(self) -> str | None:
        return sensor_self_test(self.board.plant, self.board.clock.now_ms)


def sensor_self_test(plant: Plant, t_ms: int) -> str | None:
    """The HAL's self_test on the emulator: one pressure sample at t_ms in the sensor's range
    (both runtimes' HALs use it)."""
    one = [0]
    plant.capture(t_ms, 0, one, 1)
    if not -1500 <= one[0] <= 15000:
        return "pressure sensor out of range"
    return None


class PressureTrace:
    """The pressure samples the firmware took: the newest captures, each kept as (t0_ms,
    period_ms, samples) so recording costs one copy per capture, not per sample."""

    def __init__(self, captures: int) -> None:
        self._trace: deque[tuple[int, int, array[int]]] = deque(maxlen=captures)

    def record(self, t0: int, period: int, buf: MutableSequence[int], start: int, n: int) -> None:
        """Keep buf[start:start + n], sampled from t0 every period ms (a copy, as an array)."""
        self._trace.append((t0, period, array("i", buf[start:start + n])))

    def window(self, t0_ms: int, t1_ms: int) -> list[tuple[int, int]]:
        """(t_ms, Pa) of every recorded sample with t0_ms <= t <= t1_ms, in order."""
        out = []
        for start, period, samples in self._trace:
            if start > t1_ms or start + period * len(samples) < t0_ms:
                continue
            for i, pa in enumerate(samples):
                t = start + i * period
                if t0_ms <= t <= t1_ms:
                    out.append((t, pa))
        return out


class VirtualBoard:
    """One Pico running the firmware. ``output(data, link)`` receives every byte the firmware
    writes, with the link it is for (None: every link); ``rx`` holds (link, bytes) input."""

    def __init__(self, plant: Plant, flash: Flash, clock: VirtualClock,
                 output: Callable[[bytes, int | None], None], trace_captures: int = 20_000) -> None:
        self.plant = plant
        self.flash = flash
        self.clock = clock
        self.output = output
        self.rx: deque[tuple[int, bytes]] = deque()
        self.button = False
        self.indications: list[tuple[int, str | None]] = []
        self.app: App | None = None
        self.hal: VirtualHal | None = None
        self.powered = False
        self.next_wake_ms = 0
        self.last_feed_ms = 0
        self.resets: list[tuple[int, str]] = []
        self.boots: list[tuple[int, str]] = []   # (virtual ms, reset cause) of every boot
        self.cause = "power_on"        # what reset_cause() reports for the current boot
        # a firmware hang: the main loop stops (no step, no watchdog feed) until hang_until_ms;
        # with hang_every_boot_ms it happens again right after every boot (a hang in the firmware
        # that each boot reaches)
        self.hang_until_ms: int | None = None
        self.hang_every_boot_ms = 0
        self.steps = 0
        # called with each new App (power-on and every reset) before it boots: observers such as
        # the campaign's detector probe (pumphil.campaign.probe) attach there; None = nobody
        self.on_power_on: Callable[[App], None] | None = None
        # test seam: wraps the HAL handed to each new App, to observe the firmware's HAL calls
        # as it makes them (tests/verify: strokes, serial output, flash writes); None = the
        # firmware gets the HAL itself
        self.wrap_hal: Callable[[VirtualHal], Any] | None = None
        self.trace = PressureTrace(trace_captures)   # the samples the firmware took

    # -- power and reset -------------------------------------------------------------------------
    def power_on(self, cause: str = "power_on") -> None:
        self.powered = True
        self.cause = cause
        self.boots.append((self.clock.now_ms, cause))
        self.hal = VirtualHal(self)
        self.app = App(self.hal if self.wrap_hal is None else self.wrap_hal(self.hal))
        if self.on_power_on is not None:
            self.on_power_on(self.app)
        self.last_feed_ms = self.clock.now_ms
        self.app.boot()
        self.next_wake_ms = self.clock.now_ms
        self.hang_until_ms = None
        if self.hang_every_boot_ms:
            self.hang(self.hang_every_boot_ms)

    def answers(self) -> bool:
        """True when the firmware can answer host input now (powered, not halted, not hung)."""
        return self.powered and self.app is not None and not self.app.halted \
            and self.hang_until_ms is None

    def hang(self, ms: int, every_boot: bool = False) -> None:
        """The firmware's main loop stops for ms (from now): no steps, no watchdog feeding. The
        watchdog resets the board if the hang outlasts it. every_boot: hang like this after every
        boot from now on (ms = 0 with every_boot ends that)."""
        if every_boot:
            self.hang_every_boot_ms = ms
        self.hang_until_ms = self.clock.now_ms + ms if ms > 0 else None

    def power_off(self) -> None:
        self.powered = False
        self.app = None
        self.rx.clear()
        self.flash.sync()

    def reset(self, why: str) -> None:
        """A reset that keeps the flash (why: "watchdog", "soft", "power_on"): the next boot's
        reset_cause()."""
        self.resets.append((self.clock.now_ms, why))
        self.power_off()
        self.power_on(why)

    # -- running ---------------------------------------------------------------------------------
    def run_until(self, target_ms: int) -> None:
        """Run every wake-up up to target_ms, then leave the clock at target_ms."""
        clock = self.clock
        while self.powered and self.app is not None:
            app = self.app
            hang = self.hang_until_ms
            if app.halted or hang is not None:
                fire = self.last_feed_ms + WDT_TIMEOUT_MS
                if hang is not None and not app.halted and hang < fire:
                    # the loop comes back before the watchdog fires
                    if hang > target_ms:
                        break
                    self.hang_until_ms = None
                    if self.next_wake_ms < hang:
                        self.next_wake_ms = hang
                    continue
                if fire > target_ms:
                    break
                clock.now_ms = max(clock.now_ms, fire)
                self.reset("watchdog")
                continue
            if self.next_wake_ms > target_ms:
                break
            if self.next_wake_ms > clock.now_ms:
                clock.now_ms = self.next_wake_ms
            self._step()
        if target_ms > clock.now_ms:
            clock.now_ms = target_ms

    def poke(self) -> None:
        """Input arrived: the firmware wakes now (the Pico's poll returns on input). A wake-up
        that only host input caused is powered by the host link, not the cell (docs/emulator.md,
        "Battery")."""
        if self.answers():
            self._step(self.clock.now_ms >= self.next_wake_ms)

    def _step(self, own_wake: bool = True) -> None:
        app = self.app
        assert app is not None
        self.steps += 1
        clock = self.clock
        self.plant.wake(clock.now_ms, own_wake)
        try:
            ms = app.step()
        except BoardReset:
            self.reset("watchdog")  # it fired inside a blocking HAL call (block())
            return
        except Exception as exc:  # the firmware's own fail-safe handler, as App.run() does
            app.fail_safe(exc)
            return
        now = clock.now_ms
        if now - self.last_feed_ms > WDT_TIMEOUT_MS:
            self.reset("watchdog")  # a step blocked longer than the watchdog allows
            return
        self.next_wake_ms = now + (ms if ms > 0 else 1)

    def block(self, t_ms: int, duration_ms: int) -> None:
        """A blocking HAL call from t_ms for duration_ms (a capture, a stroke). The watchdog runs
        on meanwhile: when it fires before the call ends, the clock stops at the firing time and
        BoardReset unwinds the firmware's step (the call never completes), as on the Pico."""
        fire = self.last_feed_ms + WDT_TIMEOUT_MS
        if t_ms + duration_ms > fire:
            if fire > self.clock.now_ms:
                self.clock.now_ms = fire
            raise BoardReset()

    # -- pressure trace ------------------------------------------------------------------------------
    def pressure_trace(self, t0_ms: int, t1_ms: int) -> list[tuple[int, int]]:
        return self.trace.window(t0_ms, t1_ms)

    def close(self) -> None:
        """Nothing to release (the micropython runtime's board ends its interpreter here)."""
