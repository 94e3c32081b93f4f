"""An in-process virtual rig: the virtual board (unchanged firmware), the plant and a littlefs flash,
driven synchronously from the caller's thread, with a pyserial-like port for ``PumpClient``.

Where ``pumphil.emulator.Emulator`` serves the board on a TCP socket from threads, this rig has no
socket, no thread and no real time: ``InProcessPort.write`` hands the bytes to the board and runs
the firmware's step at once (what the Pico's ``poll`` wake-up on serial input does), and the
firmware's reply is in the port's input buffer before ``write`` returns. Virtual time moves only
with :meth:`InProcessRig.advance`. That makes long random sequences of commands, clock changes,
power cuts and resets fast and deterministic (tests/verify drives it with hypothesis).

The flash is a littlefs image file in a private temporary directory: a power cut writes the chip's
bytes out and the next power-on mounts a fresh filesystem object from them, so nothing that only
lived in littlefs' RAM caches survives a cut.

Who uses it: tests (tests/verify); not the CLI.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import serial
from pumphost import keys as host_keys
from pumphost.client import PumpClient

from .board import VirtualBoard, VirtualClock, VirtualHal
from .flash import Flash
from .memport import MemoryPort
from .plant import Plant, PlantParams

_TEMPLATES: dict[str, tuple[bytes, host_keys.KeySet]] = {}


def provisioned_image(device_id: str) -> tuple[bytes, host_keys.KeySet]:
    """A flash image provisioned as the emulator provisions a new board (identity, per-role keys,
    factory state record, the example drug library) and its host key set. Made once per device
    id and process."""
    got = _TEMPLATES.get(device_id)
    if got is None:
        from pumpfw.storage import provision  # firmware module (pumphil.board put it on the path)
        from pumphost.library_file import example

        keyset = host_keys.generate(device_id)
        flash = Flash(None)
        # the project's example drug library, as the factory (and the emulator) loads it
        provision(flash, device_id, keyset.hex_keys(), library=example().record)
        got = (bytes(flash.lfs.context.buffer), keyset)
        _TEMPLATES[device_id] = got
    return got


class InProcessPort(MemoryPort):
    """The in-memory port (pumphil.memport) onto a board in this thread. ``write`` runs the step
    the input wakes, so the reply is buffered before it returns and ``read`` never waits
    (timeout 0). ``write`` on an unpowered board raises ``serial.SerialException`` (the client
    reports a ``TransportError`` at once: nothing listens)."""

    LINK = 1    # the one connection this port is (the firmware addresses replies by link)

    def __init__(self, board: VirtualBoard | None = None) -> None:
        super().__init__(timeout=0.0)
        self.board = board            # set before the first write (the board needs feed first)

    def feed(self, data: bytes, link: int | None = None) -> None:
        """The board's output callback: what the firmware writes to this link (a reply) or to
        every link (link None: events)."""
        if link is None or link == self.LINK:
            self.deliver(data)

    def _send(self, data: bytes) -> None:
        b = self.board
        if b is None or not b.powered or b.app is None:
            raise serial.SerialException("the board is powered off")
        b.rx.append((self.LINK, data))
        b.poke()


class InProcessRig:
    """Plant + flash + virtual board + port, all in this thread. ``image``: flash bytes to start
    from (default: a freshly provisioned board, see :func:`provisioned_image`)."""

    def __init__(self, device_id: str = "INPROC-0001", seed: int = 0,
                 plant_params: PlantParams | None = None, image: bytes | None = None) -> None:
        template, self.keyset = provisioned_image(device_id)
        self.device_id = device_id
        self._tmp = tempfile.TemporaryDirectory(prefix="itpump-inproc-")
        self.image_path = Path(self._tmp.name) / "flash.img"
        self.image_path.write_bytes(template if image is None else image)
        self.clock = VirtualClock()
        self.plant = Plant(seed=seed, params=plant_params)
        self.flash = Flash(self.image_path)
        self.port = InProcessPort()
        self.board = VirtualBoard(self.plant, self.flash, self.clock, self.port.feed)
        self.port.board = self.board

    # -- lifecycle ---------------------------------------------------------------------------------
    def power_on(self) -> None:
        """Cold boot from flash (a new filesystem object mounted from the chip's bytes)."""
        if self.board.powered:
            return
        self.plant.power(True)
        self.flash = Flash(self.image_path)
        self.board.flash = self.flash
        self.board.power_on()

    def power_off(self) -> None:
        """Power cut: RAM is lost, the chip keeps what was programmed."""
        if not self.board.powered:
            return
        self.board.power_off()        # syncs the chip's bytes to the image file
        self.plant.power(False)

    def close(self) -> None:
        self.port.close()
        self._tmp.cleanup()

    def __enter__(self) -> InProcessRig:
        self.power_on()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- time ----------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.clock.now_ms

    def advance(self, ms: int) -> None:
        """Move virtual time on by ms; the firmware runs every wake-up on the way."""
        if ms < 0:
            raise ValueError("cannot go back in time")
        self.board.run_until(self.clock.now_ms + ms)
        self.plant.advance_to(self.clock.now_ms)

    # -- host side -------------------------------------------------------------------------------------
    def client(self, timeout_s: float = 0.05) -> PumpClient:
        """A PumpClient on the port with the board's keys. A reply is in the buffer when write()
        returns, so a short timeout only bounds how long a missing reply is waited for, and no
        request is resent (a resend could only meet the same silence)."""
        return PumpClient(self.port, self.keyset, timeout_s=timeout_s, retries=0,
                          lookup_keys=False)

    def wrap_hal(self, wrapper: Any) -> None:
        """Install a HAL wrapper for every App the board creates from now on (VirtualBoard.wrap_hal)."""
        self.board.wrap_hal = wrapper


__all__ = ["InProcessPort", "InProcessRig", "VirtualHal", "provisioned_image"]
