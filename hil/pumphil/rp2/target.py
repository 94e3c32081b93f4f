"""The emulated RP2040 board: the official MicroPython rp2 firmware running the project's
firmware in rp2040js (Node, ``runner.mjs``), wired to the project's plant and to the host.

    with Rp2Board(build_image(build, provision=(...)), plant=Plant()) as board:
        client = PumpClient.open(board.serial_url)       # or board.open_pty() for mpremote
        board.advance(60_000)                              # one virtual minute of therapy

What is connected (pins from pumpfw.board, docs/hardware.md):
  * USB-CDC -> a TCP port (``socket://127.0.0.1:PORT``, one host at a time) and, on request, a
    pty bridged to it (``/dev/pts/N``): what pyserial, PumpClient and mpremote open.
  * With a plant: every ADC read of the pressure sensor (ADC0) and the cell voltage (ADC2) is
    answered from the plant at that virtual instant, through the sensor's transfer function
    (pumpfw.board constants); every rising edge of the step output (GP2) is a plant stroke whose
    result drives the feedback input (GP3). The chip waits for each answer (lockstep).
    Without a plant: fixed ADC values and the step output wired to the feedback input.
  * The bolus button (GP14): :meth:`press_button`. Power: :meth:`power_cut` / the plant's
    power switch. The watchdog really resets the chip (runner.mjs).

Time: virtual time runs at most ``speed`` x wall time (the device idles at that pace while the
host talks to it) plus whatever :meth:`advance` grants, which the board then runs through as fast
as it can (idle time skipped; busy Python at ~0.5x real time).

Failure is loud, never a hang: every wait has a wall-clock timeout and raises :class:`Rp2Error`
with the tail of the console (everything the board printed); Node is killed on close, exits when
this process goes away, and stops itself after ``wall_timeout_s``.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import select
import socket
import subprocess
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any

from ..board import fw_board
from ..flash import Flash
from ..mpy_runtime import REPO_ROOT, node_executable
from ..plant import Plant
from .image import read_image

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "runner.mjs"
FIRMWARE_UF2 = HERE / "firmware" / "micropython-v1.28.0-RPI_PICO.uf2"
FIRMWARE_SHA256 = "11daab5f3e4604be295d614fb41a04f7d2610848535274f9b0fd2974bbbac6a1"
BOOTROM = HERE / "firmware" / "bootrom-b1.mjs"
ADC_MAX = 4095
PRESSURE_CH, BATTERY_CH = 0, 2       # ADC0 = GP26, ADC2 = GP28 (pumpfw.board)
STATIC_PRESSURE_PA = 1000            # without a plant: a quiet line at 1 kPa ...
STATIC_BATTERY_MV = 3600             # ... and a healthy cell


class Rp2Error(RuntimeError):
    """The emulated board failed, hung or did not answer in time (message ends with the tail
    of its console)."""


class Rp2Unavailable(Rp2Error):
    """Node, the npm packages or the vendored firmware are missing (run `make setup`)."""


def pressure_to_raw(pa: float) -> int:
    """The ADC code the pressure sensor gives for pa: the inverse of pumpfw.pressure."""
    raw = round((pa - fw_board.PRESSURE_OFFSET_PA) * ADC_MAX / fw_board.PRESSURE_FULL_SCALE_PA)
    return max(0, min(ADC_MAX, raw))


def battery_to_raw(mv: float) -> int:
    """The ADC code the cell-voltage divider gives for mv: the inverse of pumpfw.battery."""
    raw = round(mv * ADC_MAX / (fw_board.ADC_VREF_MV * fw_board.BATTERY_DIVIDER))
    return max(0, min(ADC_MAX, raw))


def check_available() -> None:
    try:
        node_executable()
    except RuntimeError as e:
        raise Rp2Unavailable(str(e)) from None
    for pkg in ("rp2040js", "uf2"):
        if not (REPO_ROOT / "node_modules" / pkg).is_dir():
            raise Rp2Unavailable(f"node_modules/{pkg} missing: run `make setup` (npm ci)")
    if not FIRMWARE_UF2.exists() or \
            hashlib.sha256(FIRMWARE_UF2.read_bytes()).hexdigest() != FIRMWARE_SHA256:
        raise Rp2Unavailable(f"{FIRMWARE_UF2} missing or not the vendored v1.28.0 build "
                             "(firmware/PROVENANCE.md)")


class Rp2Board:
    def __init__(self, image: bytes | None = None, *, plant: Plant | None = None,
                 speed: float = 1.0, workdir: Path | None = None,
                 wall_timeout_s: float = 900.0, firmware: Path | None = None) -> None:
        """image: the filesystem region (pumphil.rp2.image.build_image); None = erased flash,
        which the rp2 port formats at its first boot. plant: answers the sensors and strokes
        (None: fixed values). speed: pacing of virtual time while nothing is advanced (0: none).
        firmware: another RPI_PICO .uf2 (e.g. a build with frozen modules; default the vendored
        v1.28.0, checked by its sha256)."""
        check_available()
        self.firmware = firmware if firmware is not None else FIRMWARE_UF2
        self.plant = plant
        self.speed = speed
        self.wall_timeout_s = wall_timeout_s
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="itpump-rp2-")
            workdir = Path(self._tmp.name)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.console_path = self.workdir / "console.log"
        self.console_path.write_bytes(b"")
        self.image_path: Path | None = None
        if image is not None:
            self.image_path = self.workdir / "fs-in.img"
            self.image_path.write_bytes(image)
        self.port = 0
        self.resets: list[tuple[int, str]] = []   # (virtual ms, "watchdog" | "force")
        self.strokes = 0                            # rising edges of the step output (plant)
        self._proc: subprocess.Popen[str] | None = None
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._wlock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._pty: tuple[int, int] | None = None
        self._pty_stop = threading.Event()
        self._pty_thread: threading.Thread | None = None
        self._off_at_ms: int | None = None
        self.last_sim_ms = 0
        self.errors: list[str] = []
        # ADC channel -> fixed 12-bit code that replaces the plant's answer (a sensor fault:
        # a disconnected sensor on its pull-down reads 0)
        self.adc_override: dict[int, int] = {}
        if plant is not None:
            plant.add_power_listener(self._on_plant_power)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Rp2Board:
        cmd = [node_executable(), str(RUNNER), "--uf2", str(self.firmware), "--bootrom",
               str(BOOTROM), "--serial-port", "0", "--speed", str(self.speed), "--console-log",
               str(self.console_path), "--timeout", str(self.wall_timeout_s)]
        if self.image_path is not None:
            cmd += ["--fs", str(self.image_path)]
        if self.plant is not None:
            cmd.append("--plant")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1,
                                      cwd=REPO_ROOT)
        self._reader = threading.Thread(target=self._read_events, name="rp2-events", daemon=True)
        self._reader.start()
        ready = self._wait_event(lambda e: e["ev"] == "ready", 30.0, "the runner to start")
        self.port = int(ready["port"])
        if self.plant is None:
            self._send(cmd="adc", ch=PRESSURE_CH, raw=pressure_to_raw(STATIC_PRESSURE_PA))
            self._send(cmd="adc", ch=BATTERY_CH, raw=battery_to_raw(STATIC_BATTERY_MV))
            self._send(cmd="link", out=fw_board.PIN_MOTOR_STEP, **{"in": fw_board.PIN_MOTOR_FEEDBACK})
        self._send(cmd="pin", pin=fw_board.PIN_BUTTON, value=1)   # released (pull-up)
        return self

    def close(self) -> None:
        self._pty_stop.set()
        if self._pty_thread is not None:
            self._pty_thread.join(timeout=2)
        if self._pty is not None:
            for fd in self._pty:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._pty = None
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.write('{"cmd":"quit"}\n')
                    proc.stdin.flush()
                proc.wait(timeout=3)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:   # stdin of a runner that already exited
                        pass
        if self._reader is not None:
            self._reader.join(timeout=2)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Rp2Board:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the control channel -----------------------------------------------------------------------
    def _send(self, **msg: Any) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise self._error("the runner is not running")
        with self._wlock:
            try:
                proc.stdin.write(json.dumps(msg) + "\n")
                proc.stdin.flush()
            except (OSError, ValueError) as e:
                raise self._error(f"the runner's control channel broke: {e}") from None

    def _read_events(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                self.errors.append(f"runner said: {line.strip()}")
                continue
            if "sim_ms" in ev:
                self.last_sim_ms = int(ev["sim_ms"])
            kind = ev.get("ev")
            try:
                if kind == "adc_read":
                    self._send(cmd="reply", raw=self._adc_value(int(ev["ch"]), int(ev["sim_ms"])))
                    continue
                if kind == "stroke":
                    self.strokes += 1
                    assert self.plant is not None
                    self._send(cmd="reply", ok=self.plant.stroke(int(ev["sim_ms"])))
                    continue
            except Exception as e:  # noqa: BLE001  # a plant failure must not hang the chip
                self.errors.append(f"plant request {ev} failed: {e!r}")
                self._send(cmd="reply", raw=0, ok=False)
                continue
            if kind == "reset":
                self.resets.append((int(ev["sim_ms"]), str(ev["why"])))
            elif kind == "error":
                self.errors.append(str(ev.get("msg")))
            self._events.put(ev)
        self._events.put({"ev": "exit"})

    def _adc_value(self, ch: int, t_ms: int) -> int:
        plant = self.plant
        assert plant is not None
        if ch in self.adc_override:
            return self.adc_override[ch]
        if ch == PRESSURE_CH:
            return pressure_to_raw(plant.pressure_pa(t_ms))
        return battery_to_raw(plant.battery_mv())

    def _wait_event(self, pred: Any, timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._error(f"timed out after {timeout_s:g} s waiting for {what}")
            try:
                ev = self._events.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self._proc is None or self._proc.poll() is not None:
                    raise self._error(f"the runner exited while waiting for {what}") from None
                continue
            if ev["ev"] == "exit":
                raise self._error(f"the runner exited while waiting for {what}")
            if ev["ev"] == "timeout":
                raise self._error(f"the runner hit its wall timeout while waiting for {what}")
            if pred(ev):
                return ev

    def _error(self, msg: str) -> Rp2Error:
        stderr = ""
        proc = self._proc
        if proc is not None and proc.poll() is not None and proc.stderr is not None:
            stderr = proc.stderr.read()[-2000:]
        extra = "".join(f"\n  {e}" for e in self.errors[-5:])
        return Rp2Error(f"rp2 board: {msg}{extra}\n--- node stderr ---\n{stderr}"
                        f"\n--- console (last 3000 chars) ---\n{self.console()[-3000:]}")

    # -- time ----------------------------------------------------------------------------------------
    def advance(self, ms: int, timeout_s: float | None = None) -> int:
        """Let ms of virtual time pass (the firmware runs through it as fast as it can); returns
        the virtual ms reached. timeout_s: wall seconds allowed (default: 30 s + 0.5x real time
        for the whole span, the slowest a busy board runs)."""
        if ms < 0:
            raise ValueError("cannot go back in time")
        wall = timeout_s if timeout_s is not None else 30.0 + ms / 500.0
        self._send(cmd="advance", ms=ms)
        ev = self._wait_event(lambda e: e["ev"] == "advanced", wall, f"{ms} virtual ms to pass")
        return int(ev["sim_ms"])

    def status(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Virtual ms, resets, flash operations, USB state, as the runner sees them."""
        self._send(cmd="status")
        return self._wait_event(lambda e: e["ev"] == "status", timeout_s, "the runner's status")

    def sim_ms(self) -> int:
        return int(self.status()["sim_ms"])

    def wait_usb(self, timeout_s: float = 30.0) -> None:
        """Until the board's USB-CDC has enumerated (MicroPython started)."""
        if self.status().get("usb"):
            return
        self._wait_event(lambda e: e["ev"] == "usb", timeout_s, "USB-CDC enumeration")

    # -- inputs ------------------------------------------------------------------------------------
    def press_button(self, hold_ms: int = 100) -> None:
        """The patient presses the bolus button (pulled low for hold_ms virtual ms)."""
        self._send(cmd="press", pin=fw_board.PIN_BUTTON, ms=hold_ms)

    def power_cut(self, off_ms: int) -> None:
        """Cut the board's power for off_ms virtual ms (through the plant's switch when there is
        a plant); the flash keeps what was programmed, the chip restarts with a power-on reset."""
        if self.plant is not None:
            t = self.sim_ms()
            self.plant.advance_to(max(t, self.plant.now_ms))
            self.plant.power(False)
            self.plant.advance_to(self.plant.now_ms + off_ms)
            self.plant.power(True)
        else:
            self._send(cmd="power", on=False)
            self._wait_event(lambda e: e["ev"] == "power", 10.0, "the power cut")
            self._send(cmd="power", on=True, off_ms=off_ms)
            self._wait_event(lambda e: e["ev"] == "power", 10.0, "power-on")

    def _on_plant_power(self, on: bool) -> None:
        assert self.plant is not None
        if not on:
            self._off_at_ms = self.plant.now_ms
            self._send(cmd="power", on=False)
            self._wait_event(lambda e: e["ev"] == "power", 10.0, "the power cut")
        else:
            off = self.plant.now_ms - (self._off_at_ms if self._off_at_ms is not None
                                       else self.plant.now_ms)
            self._send(cmd="power", on=True, off_ms=max(0, off))
            self._wait_event(lambda e: e["ev"] == "power", 10.0, "power-on")

    # -- flash and console -------------------------------------------------------------------------
    def dump_flash(self, timeout_s: float = 10.0) -> Flash:
        """The filesystem as the board has programmed it so far (a copy, mounted with littlefs)."""
        path = self.workdir / f"fs-dump-{time.monotonic_ns()}.img"
        self._send(cmd="dump", path=str(path))
        self._wait_event(lambda e: e["ev"] == "dumped", timeout_s, "the flash dump")
        return read_image(path)

    def console(self) -> str:
        """Everything the board printed on USB-CDC (and the runner's markers) so far."""
        try:
            return self.console_path.read_bytes().decode("latin-1")
        except OSError:
            return ""

    def wait_console(self, text: str, since: int = 0, timeout_s: float = 120.0) -> int:
        """Until the console shows text after character offset since (e.g. an application's
        boot event after a reset); returns the offset just past it. Virtual time runs at the
        board's pacing meanwhile."""
        deadline = time.monotonic() + timeout_s
        while True:
            i = self.console().find(text, since)
            if i >= 0:
                return i + len(text)
            if self._proc is None or self._proc.poll() is not None:
                raise self._error(f"the runner exited while waiting for {text!r} on the console")
            if time.monotonic() > deadline:
                raise self._error(f"timed out after {timeout_s:g} s waiting for {text!r} on the "
                                  "console")
            time.sleep(0.05)

    @property
    def runner_pid(self) -> int | None:
        """The Node process's id (None when not running)."""
        return None if self._proc is None else self._proc.pid

    @property
    def serial_url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    # -- pty -------------------------------------------------------------------------------------------
    def open_pty(self) -> str:
        """A pty bridged to the USB-CDC port (what `mpremote connect /dev/pts/N` opens). While a
        program has it open, the bridge holds the board's one host connection."""
        if self._pty is None:
            master, slave = os.openpty()
            tty.setraw(slave)
            self._pty = (master, slave)
            self._pty_thread = threading.Thread(target=self._bridge_pty, name="rp2-pty",
                                                daemon=True)
            self._pty_thread.start()
        return os.ttyname(self._pty[1])

    def _bridge_pty(self) -> None:
        assert self._pty is not None
        master = self._pty[0]
        sock: socket.socket | None = None
        while not self._pty_stop.is_set():
            fds: list[Any] = [master] + ([sock] if sock is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.1)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    if fd is master:
                        data = os.read(master, 4096)
                        if sock is None:
                            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        sock.sendall(data)
                    else:
                        assert sock is not None
                        data = sock.recv(4096)
                        if not data:
                            sock.close()
                            sock = None
                        else:
                            os.write(master, data)
                except OSError:
                    if sock is not None:
                        sock.close()
                    sock = None
        if sock is not None:
            sock.close()


__all__ = ["Rp2Board", "Rp2Error", "Rp2Unavailable", "battery_to_raw", "check_available",
           "pressure_to_raw"]

