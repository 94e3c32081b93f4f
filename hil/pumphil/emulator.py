"""The emulator: a virtual rig on a laptop.

``Emulator`` = virtual board (unchanged firmware, simulated HAL) + plant physics + serial endpoint
(``socket://127.0.0.1:PORT`` and optionally a pty) + optional virtual instruments (SCPI / MT-SICS
on loopback TCP). Time either follows the wall clock times ``speed`` or is advanced by the
controller (tests, scenarios) with ``advance(ms)``; in both cases the board answers serial requests
at the current virtual time between advances.

Keys: a new emulator provisions its flash (identity with the device key, the security record,
factory state record) through the firmware's own provisioning function, as the physical channel
does on a Pico, and writes the host key file both into its state directory and to
``$ITPUMP_HOME/keys/<device_id>.json``, where the ``itpump`` CLI looks by default.
:meth:`Emulator.rekey` is the physical-channel re-key (docs/protocol.md, "Lifecycle").

Several hosts: the serial endpoint accepts up to MAX_CONNECTIONS connections at once (a clinician
console, a monitor, a test harness); nobody is evicted. Each connection is its own link to the
firmware (a small int; the pty is link 0): replies go to the connection that asked, event lines to
every connection. A Pico has one USB-CDC port, i.e. one link (docs/protocol.md, "Several hosts").
A host in this process (``itpump simulate``) takes a link without a socket: :meth:`Emulator.local_port`.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from pumphost import keys as host_keys

from .board import VirtualBoard, VirtualClock
from .flash import Flash
from .memport import MemoryPort
from .mpy_board import MpyBoard
from .plant import Plant, PlantParams

MAX_CONNECTIONS = 8       # simultaneous socket connections; one more is closed at once
LOCK_FILE = "emulator.lock"


class _Connection(Protocol):
    """What the firmware's output is written to per link: a TCP socket, or a LocalPort."""

    def sendall(self, data: bytes) -> None: ...
    def shutdown(self, how: int) -> None: ...
    def close(self) -> None: ...


class LocalPort(MemoryPort):
    """One link to the emulator for a host in the same process: the in-memory port
    (pumphil.memport), no socket, no reader thread. ``write`` hands the bytes to the board, which
    answers at once (the step the input wakes runs in the writer's thread, under the emulator's
    lock), so the reply is usually in the buffer when ``write`` returns; ``read`` waits up to
    ``timeout`` s for bytes (a board that answers from another thread, or not at all). Same lines,
    same links, same order as a socket connection: only the transport differs. Who makes it:
    :meth:`Emulator.local_port`."""

    def __init__(self, emulator: Emulator, link: int) -> None:
        super().__init__(timeout=0.05)
        self._emu = emulator
        self.link = link

    # -- the emulator's side (_Connection) ---------------------------------------------------------
    def sendall(self, data: bytes) -> None:
        if self.closed:
            raise OSError("port closed")
        self.deliver(data)

    def shutdown(self, how: int) -> None:
        self.close()

    # -- the host's side ---------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self._emu._input(self.link, data)

    def close(self) -> None:
        if not self.closed:
            self._emu._clients.pop(self.link, None)
        super().close()


class StateDirInUse(RuntimeError):
    """Another emulator runs on this state directory (two boards cannot share one flash)."""

    reason = "state_dir_in_use"


def lock_state_dir(state_dir: Path) -> int:
    """An exclusive lock on the state directory (flock on LOCK_FILE, holding our pid), released
    when the fd is closed or the process ends in any way, kill -9 included. Raises
    StateDirInUse naming the other emulator's pid."""
    import fcntl

    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StateDirInUse(f"{state_dir} is in use by another emulator (pid {other}): stop it "
                            "or give another --state-dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd
# The interpreter the firmware runs on: "cpython" (this process, pumphil.board.VirtualBoard) or
# "micropython" (the real MicroPython WebAssembly build in Node, pumphil.mpy_board.MpyBoard;
# docs/emulator.md, "Runtimes").
RUNTIMES = ("cpython", "micropython")


class Emulator:
    def __init__(self, state_dir: Path | None = None, seed: int = 0, speed: float | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 0), pty: bool = False,
                 runtime: str = "cpython", instruments: bool = False,
                 plant_params: PlantParams | None = None) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r} not available (have: {', '.join(RUNTIMES)})")
        if speed is not None and speed <= 0:
            raise ValueError("speed must be > 0")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="itpump-emu-")
            state_dir = Path(self._tmp.name)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = lock_state_dir(self.state_dir)
        self.seed = seed
        self.speed = speed
        self.listen = listen
        self.want_pty = pty
        self.want_instruments = instruments
        self.lock = threading.RLock()
        self.clock = VirtualClock()
        self.plant = Plant(seed=seed, params=plant_params)
        self.flash = Flash(self.state_dir / "flash.img")
        self.runtime = runtime
        self.board: VirtualBoard | MpyBoard
        if runtime == "micropython":
            try:
                self.board = MpyBoard(self.plant, self.flash, self.clock, self._output)
            except BaseException:
                # no emulator after all: the state directory is free again
                self.flash.close()
                os.close(self._lock_fd)
                if self._tmp is not None:
                    self._tmp.cleanup()
                raise
        else:
            self.board = VirtualBoard(self.plant, self.flash, self.clock, self._output)
        self.plant.add_power_listener(self._on_power)
        self.device_id = ""
        self.key_file = self.state_dir / "keys.json"
        self.rig: Any = None
        self.pty_path: str | None = None
        self._pty_master: int | None = None
        self._server: socket.socket | None = None
        self._clients: dict[int, _Connection] = {}   # link -> connection (socket or LocalPort)
        self._next_link = 1
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._wall0 = 0.0
        self._virt0 = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Emulator:
        self._provision()
        with self.lock:
            self.board.power_on()
        self._server = socket.create_server(self.listen)
        self._spawn(self._serve_socket)
        if self.want_pty:
            self._open_pty()
        if self.want_instruments:
            from .instruments import VirtualRig
            self.rig = VirtualRig(self.plant, seed=self.seed).start()
        if self.speed is not None:
            self._wall0 = time.monotonic()
            self._virt0 = self.clock.now_ms
            self._spawn(self._realtime)
        return self

    def close(self) -> None:
        self._stop.set()
        for s in (*list(self._clients.values()), self._server):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)   # wakes a thread blocked in accept()/recv()
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass
        if self._pty_master is not None:
            master, self._pty_master = self._pty_master, None
            self._stop.set()
            for t in self._threads:
                if t.name == "pty":
                    t.join(timeout=1)
            os.close(master)
            os.close(self._pty_slave)
        if self.rig is not None:
            self.rig.close()
        for t in self._threads:
            t.join(timeout=2)
        with self.lock:
            self.board.close()
            self.flash.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- time ------------------------------------------------------------------------------------
    def advance(self, ms: int) -> None:
        """Move virtual time on by ms; the firmware runs every wake-up on the way."""
        if ms < 0:
            raise ValueError("cannot go back in time")
        with self.lock:
            self.board.run_until(self.clock.now_ms + ms)
            self.plant.advance_to(self.clock.now_ms)

    def now_ms(self) -> int:
        """The virtual time once the board is between steps: a step in flight (serving a
        request from a socket thread: its reply may already be out) moves the clock on, so
        this waits for it."""
        with self.lock:
            return self.clock.now_ms

    def pressure_trace(self, t0_ms: int, t1_ms: int) -> list[tuple[int, int]]:
        with self.lock:
            return self.board.pressure_trace(t0_ms, t1_ms)

    def press_button(self) -> None:
        """The patient's bolus button on the device."""
        with self.lock:
            self.board.button = True
            self.board.poke()

    @property
    def serial_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.getsockname()[:2]
        return f"socket://{host}:{port}"

    def local_port(self) -> LocalPort:
        """A new link for a host in this process (pumphil.simulate): a LocalPort, counted among
        MAX_CONNECTIONS like a socket connection. start() first."""
        assert self._server is not None, "start() first"
        if len(self._clients) >= MAX_CONNECTIONS:
            raise RuntimeError(f"the emulator has {MAX_CONNECTIONS} connections already")
        link = self._next_link
        self._next_link += 1
        port = LocalPort(self, link)
        self._clients[link] = port
        return port

    @property
    def visa_resources(self) -> dict[str, str]:
        return {} if self.rig is None else dict(self.rig.resources)

    # -- provisioning ------------------------------------------------------------------------------
    def _provision(self) -> None:
        from pumpfw.storage import LIBRARY, device_identity, install_library, provision
        from pumphost.library_file import example

        library = example().record     # the project's example library, as the factory loads it
        ident = self.state_dir / "identity.json"
        if ident.exists() and self.key_file.exists():
            self.device_id = json.loads(ident.read_text())["device_id"]
            keyset = host_keys.load(self.key_file)
            if device_identity(self.flash) is None:
                # a state directory from protocol v1 (no device key on its flash): provisioned
                # again for the same keys; its pump state starts from the factory record
                with self.lock:
                    provision(self.flash, self.device_id, keyset.hex_keys(), library=library)
                    self.flash.sync()
            else:
                try:
                    self.flash.stat(LIBRARY)
                except OSError:
                    # made before the library was a record: the factory's library is installed
                    # over the physical channel (a damaged record is left for the pump to report)
                    with self.lock:
                        install_library(self.flash, library)
                        self.flash.sync()
        else:
            self.device_id = "EMU-" + secrets.token_hex(6).upper()
            keyset = host_keys.generate(self.device_id)
            host_keys.save(keyset, self.key_file, overwrite=True)
            ident.write_text(json.dumps({"device_id": self.device_id}))
            with self.lock:
                provision(self.flash, self.device_id, keyset.hex_keys(), library=library)
                self.flash.sync()
        host_keys.save(keyset, host_keys.default_key_path(self.device_id), overwrite=True)

    def rekey(self, roles: tuple[str, ...] | None = None) -> host_keys.KeySet:
        """Re-key roles (default: all) over the physical channel, as `mpremote` does on a Pico:
        new random role keys, fresh key ids and zero counters on the pump (the firmware's
        pumpfw.storage.rekey), the host key files updated, the board reset. The way out of a
        locked pump (damaged security record) and of an exhausted counter."""
        from pumpfw.storage import rekey as fw_rekey

        old = host_keys.load(self.key_file)
        fresh = host_keys.generate(self.device_id, tuple(roles or host_keys.ROLES))
        keys = dict(old.keys)
        keys.update(fresh.keys)
        keyset = host_keys.KeySet(self.device_id, keys)
        with self.lock:
            was_on = self.board.powered
            if was_on:
                self.board.power_off()
            fw_rekey(self.flash, fresh.hex_keys())
            self.flash.sync()
            if was_on:
                self.board.power_on()
        host_keys.save(keyset, self.key_file, overwrite=True)
        host_keys.save(keyset, host_keys.default_key_path(self.device_id), overwrite=True)
        return keyset

    # -- power -------------------------------------------------------------------------------------
    def _on_power(self, on: bool) -> None:
        with self.lock:
            if on and not self.board.powered:
                self.board.power_on()
            elif not on and self.board.powered:
                self.board.power_off()

    # -- serial ------------------------------------------------------------------------------------
    def _output(self, data: bytes, link: int | None) -> None:
        """The firmware's serial output: to one link (a reply) or, link None, to all (events)."""
        if link is None:
            targets = list(self._clients.items())
        else:
            c = self._clients.get(link)
            targets = [(link, c)] if c is not None else []
        for lk, conn in targets:
            try:
                conn.sendall(data)
            except OSError:
                self._clients.pop(lk, None)
        if self._pty_master is not None and link in (None, 0):
            try:
                os.write(self._pty_master, data)
            except OSError:
                pass

    def _input(self, link: int, data: bytes) -> None:
        with self.lock:
            self.board.rx.append((link, data))
            self.board.poke()

    def _serve_socket(self) -> None:
        srv = self._server
        assert srv is not None
        while not self._stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if len(self._clients) >= MAX_CONNECTIONS:
                conn.close()
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = self._next_link
            self._next_link += 1
            self._clients[link] = conn      # several hosts at once; nobody is evicted
            self._spawn(self._read_client, conn, link)

    def _read_client(self, conn: socket.socket, link: int) -> None:
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if not data:
                self._clients.pop(link, None)
                try:
                    conn.close()
                except OSError:
                    pass
                return
            self._input(link, data)

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        import tty
        tty.setraw(slave)
        self._pty_master = master
        self.pty_path = os.ttyname(slave)
        self._pty_slave = slave
        self._spawn(self._read_pty, name="pty")

    def _read_pty(self) -> None:
        import select
        master = self._pty_master
        while not self._stop.is_set() and master is not None:
            try:
                r, _, _ = select.select([master], [], [], 0.2)
                data = os.read(master, 4096) if r else b""
            except (OSError, ValueError):   # closed by close() meanwhile
                return
            if data:
                self._input(0, data)

    # -- real time -----------------------------------------------------------------------------------
    def _realtime(self) -> None:
        assert self.speed is not None
        while not self._stop.is_set():
            target = self._virt0 + int((time.monotonic() - self._wall0) * 1000 * self.speed)
            with self.lock:
                if target > self.clock.now_ms:
                    self.board.run_until(target)
                    self.plant.advance_to(self.clock.now_ms)
                wake = self.board.next_wake_ms - self.clock.now_ms
            pause = max(0.001, min(0.05, wake / 1000 / self.speed))
            self._stop.wait(pause)

    def _spawn(self, fn: Any, *args: Any, name: str | None = None) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True, name=name)
        t.start()
        self._threads.append(t)
