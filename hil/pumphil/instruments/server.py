"""Loopback TCP line server shared by the virtual instruments (one thread per connection).

An instrument implements ``handle_line(line, session) -> list[str]`` (responses, without
termination) and declares ``write_termination``. Lines arrive terminated by LF (a preceding CR is
stripped), like a raw-socket LAN instrument (port 5025 style). State lives in the instrument, so
several connections share it like a real instrument's front panel.

A session may ask for unsolicited periodic output (MT-SICS ``SIR``): set ``session.stream`` to a
callable returning one line and ``session.stream_period_s``; any new command cancels it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Protocol, Self


class Session:
    """Per-connection state."""

    def __init__(self) -> None:
        self.stream: Callable[[], str] | None = None
        self.stream_period_s = 0.1


class LineInstrument(Protocol):
    write_termination: str

    def handle_line(self, line: str, session: Session) -> list[str]: ...


class LineServer:
    """Serve one instrument on host:port (port 0 = ephemeral; see ``port`` after start())."""

    def __init__(self, instrument: LineInstrument, host: str = "127.0.0.1", port: int = 0) -> None:
        self.instrument = instrument
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(8)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept_thread: threading.Thread | None = None

    @property
    def resource(self) -> str:
        """The VISA resource string for pyvisa-py."""
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    def start(self) -> LineServer:
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"visa-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=2)
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        session = Session()
        term = self.instrument.write_termination
        buf = b""
        try:
            while not self._stop.is_set():
                conn.settimeout(session.stream_period_s if session.stream else 0.5)
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    if session.stream is not None:
                        conn.sendall((session.stream() + term).encode("ascii"))
                    continue
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.rstrip(b"\r").decode("ascii", errors="replace")
                    session.stream = None
                    replies = self.instrument.handle_line(line, session)
                    if replies:
                        conn.sendall("".join(r + term for r in replies).encode("ascii"))
                    if session.stream is not None:
                        conn.sendall((session.stream() + term).encode("ascii"))
        except OSError:
            return
        finally:
            conn.close()
            if conn in self._conns:
                self._conns.remove(conn)
