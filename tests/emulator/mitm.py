"""A man in the middle on the emulator's socket: a TCP proxy that passes lines both ways, records
what the host sends, and may rewrite or drop what the pump sends (re-sealing the CRC, as an
attacker would: a CRC is no protection)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Self

from pumpcore import wire


class LineProxy:
    def __init__(self, target_url: str) -> None:
        host, port = target_url.removeprefix("socket://").rsplit(":", 1)
        self.target = (host, int(port))
        self.rewrite: Callable[[str], str | None] | None = None   # pump -> host lines
        self.sent: list[str] = []                                  # host -> pump lines
        self._srv = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self._srv.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                host_side, _ = self._srv.accept()
            except OSError:
                return
            pump_side = socket.create_connection(self.target)
            self._socks += [host_side, pump_side]
            for src, dst, up in ((host_side, pump_side, True), (pump_side, host_side, False)):
                t = threading.Thread(target=self._pipe, args=(src, dst, up), daemon=True)
                t.start()
                self._threads.append(t)

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                data = src.recv(4096)
            except OSError:
                break
            if not data:
                break
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line: str | None = raw.decode("latin-1")
                if up:
                    assert line is not None
                    self.sent.append(line)
                elif self.rewrite is not None:
                    line = self.rewrite(line)
                if line is not None:
                    try:
                        dst.sendall(line.encode("latin-1") + b"\n")
                    except OSError:
                        return
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        for s in [self._srv, *self._socks]:
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def change_data(kind: str, change: Callable[[dict], dict]) -> Callable[[str], str | None]:
    """A rewrite that changes the JSON data of every `kind` line ("=", "!", "~"), keeps its
    tag field(s) and re-seals the CRC."""
    def f(line: str) -> str | None:
        if not line.startswith(kind):
            return line
        parsed = wire.parse_reply(line)
        if parsed is None:
            return line
        body, data = parsed[4], parsed[2]
        new_body = body[:body.index("{")] + wire.encode(change(dict(data)))
        return wire.seal(new_body + line[len(body):line.rfind(" ")])
    return f
