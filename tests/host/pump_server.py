"""A Dispatcher + pump behind a real TCP socket, served from a thread (tests and bench).

Clients connect with ``socket://127.0.0.1:PORT``. Fault injection: ``reply_filter(line)`` may
return the line, a corrupted line, or None (drop it); ``request_filter(data)`` may alter incoming
bytes. ``reboot()`` models a pump reset: RAM state (replay cache) is lost, persisted counters are
kept, the connection drops.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from pumpcore.auth import Auth, wire_key
from pumpcore.dispatch import Dispatcher
from pumphost.keys import KeySet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from library_helpers import core_library
from proto_helpers import KIDS, FakePump

__all__ = ["INFO", "PumpServer", "core_library"]

INFO = {"firmware": "0.1.0-test", "device_id": "TESTPUMP01", "board": "tcp-test"}


class PumpServer:
    def __init__(self, keyset: KeySet, pump: Any = None, info: dict[str, str] | None = None,
                 persist: bool = True) -> None:
        self.pump = pump if pump is not None else FakePump()
        self.info = dict(info or INFO)
        self.keyset = keyset
        self.persisted: dict[str, Any] | None = None
        self.persist = persist
        self.lock = threading.RLock()
        self.reply_filter: Callable[[str], str | None] | None = None
        self.request_filter: Callable[[bytes], bytes] | None = None
        self.received: list[bytes] = []
        self._new_dispatcher()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._conn: socket.socket | None = None
        self._link = 0            # each connection is a new link of the dispatcher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _save(self, snap: dict[str, Any]) -> None:
        self.persisted = snap

    def _new_dispatcher(self) -> None:
        # provisioned as pumpfw.storage does: wire keys for the host's role keys and key ids
        auth = Auth({r: wire_key(k, KIDS[r]) for r, k in self.keyset.keys.items()}, KIDS)
        if self.persisted is not None:
            auth.restore(self.persisted)
        auth.next_boot()
        self.auth = auth
        self.dispatcher = Dispatcher(self.pump, auth, self.info,
                                     self._save if self.persist else None)

    def reboot(self) -> None:
        with self.lock:
            if self.auth.dirty or self.persisted is None:
                self.persisted = self.auth.snapshot()
            self._new_dispatcher()
            self.drop_connection()

    def drop_connection(self) -> None:
        with self.lock:
            if self._conn is not None:
                try:
                    self._conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._conn.close()
                self._conn = None

    def send_events(self, events: list[Any] | None = None) -> None:
        with self.lock:
            self._send(self.dispatcher.event_lines(events))

    def _send(self, lines: list[str]) -> None:
        conn = self._conn
        if conn is None:
            return
        for line in lines:
            if self.reply_filter is not None:
                out = self.reply_filter(line)
                if out is None:
                    continue
                line = out
            try:
                conn.sendall(line.encode("ascii", errors="replace") + b"\n")
            except OSError:
                return

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(0.05)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.drop_connection()
                self._conn = conn
                self._link += 1
                link = self._link
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                with self.lock:
                    if conn is not self._conn:
                        break
                    self.received.append(data)
                    if self.request_filter is not None:
                        data = self.request_filter(data)
                    self._send(self.dispatcher.feed(data, link))
                    self._send(self.dispatcher.event_lines())
            with self.lock:
                if self._conn is conn:
                    self._conn = None
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.drop_connection()
        self._sock.close()
        self._thread.join(2)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
