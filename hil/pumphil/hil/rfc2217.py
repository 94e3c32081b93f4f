"""Serve a serial port as RFC 2217 (telnet COM-port control) with pyserial's own server side
(``serial.rfc2217.PortManager``), as ser2net serves a real labgrid exporter's port.

``Rfc2217Server(backing_url).start()`` listens on 127.0.0.1 (ephemeral port unless given); each
client connection opens ``backing_url`` (e.g. the emulator's ``socket://127.0.0.1:PORT``) and
bridges bytes both ways through the PortManager, which answers the client's option negotiation
and applies its settings (baud rate, ...) to the backing port. One client at a time, like a
serial port: a new connection takes over. Clients open ``rfc2217://127.0.0.1:PORT``.
"""

from __future__ import annotations

import socket
import threading

import serial
import serial.rfc2217


class _Connection:
    """What PortManager writes its telnet replies to."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


class Rfc2217Server:
    def __init__(self, backing_url: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backing_url = backing_url
        self._srv = socket.create_server((host, port))
        self.host, self.port = self._srv.getsockname()[:2]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._current: tuple[socket.socket, serial.SerialBase] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"rfc2217://{self.host}:{self.port}"

    def start(self) -> Rfc2217Server:
        self._spawn(self._accept)
        return self

    def close(self) -> None:
        self._stop.set()
        try:
            self._srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._srv.close()
        self._drop()
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> Rfc2217Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, fn: object, *args: object) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _drop(self) -> None:
        with self._lock:
            cur, self._current = self._current, None
        if cur is not None:
            sock, port = cur
            for close in (lambda: sock.shutdown(socket.SHUT_RDWR), sock.close, port.close):
                try:
                    close()
                except (OSError, serial.SerialException):
                    pass

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            self._drop()                       # a new host takes over the port
            try:
                port = serial.serial_for_url(self.backing_url, timeout=0.05)
            except (serial.SerialException, OSError):
                conn.close()
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._current = (conn, port)
            manager = serial.rfc2217.PortManager(port, _Connection(conn))
            self._spawn(self._to_client, conn, port, manager)
            self._spawn(self._from_client, conn, port, manager)

    def _to_client(self, conn: socket.socket, port: serial.SerialBase,
                   manager: serial.rfc2217.PortManager) -> None:
        while not self._stop.is_set():
            try:
                data = port.read(4096)
                if data:
                    conn.sendall(b"".join(manager.escape(data)))
            except (OSError, serial.SerialException, TypeError, AttributeError):
                return                          # closed by a takeover or close()

    def _from_client(self, conn: socket.socket, port: serial.SerialBase,
                     manager: serial.rfc2217.PortManager) -> None:
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                break
            try:
                port.write(b"".join(manager.filter(data)))
            except (OSError, serial.SerialException):
                break
        with self._lock:
            mine = self._current is not None and self._current[0] is conn
        if mine:
            self._drop()
