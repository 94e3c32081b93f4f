"""A serial port in memory: the pyserial surface ``PumpClient`` uses (``timeout``, ``write``,
``read``, ``in_waiting``, ``reset_input_buffer``, ``close``) over an input buffer the board's side
fills. One implementation for every host that talks to a board in its own process: the emulator's
``LocalPort`` (``itpump simulate``) and the in-process rig's ``InProcessPort`` (tests/verify).

Contract: a subclass sends with ``_send(data)`` (the board's input; it may answer before returning,
in the writer's thread); the board's replies arrive through ``deliver(data)``, from any thread.
``read`` returns what is buffered, waiting up to ``timeout`` s for the first byte when there is
none (``timeout`` 0: never waits; None: until bytes come or the port closes).
"""

from __future__ import annotations

import threading

import serial


class MemoryPort:
    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._in = bytearray()
        self._ready = threading.Condition()
        self.closed = False

    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    # -- the board's side ---------------------------------------------------------------------------
    def deliver(self, data: bytes) -> None:
        with self._ready:
            self._in.extend(data)
            self._ready.notify_all()

    # -- the host's side (pyserial) -----------------------------------------------------------------
    def write(self, data: bytes) -> int:
        if self.closed:
            raise serial.SerialException("port closed")
        self._send(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        with self._ready:
            if not self._in and self.timeout != 0 and not self.closed:
                self._ready.wait(self.timeout)
            n = min(size, len(self._in)) if size > 0 else 0
            out = bytes(self._in[:n])
            del self._in[:n]
            return out

    @property
    def in_waiting(self) -> int:
        return len(self._in)

    def reset_input_buffer(self) -> None:
        with self._ready:
            self._in.clear()

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify_all()
