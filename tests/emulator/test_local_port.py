"""The emulator's in-process link (Emulator.local_port, what `itpump simulate` talks through): a
link like a socket connection, without the socket. Replies go to the asker, events to every
link, a closed link is gone."""

from __future__ import annotations

import socket
import time

import pytest
import serial
from pumphil import simulate
from pumphil.emulator import MAX_CONNECTIONS, Emulator, LocalPort


def _drain(sock: socket.socket) -> list[str]:
    sock.settimeout(0.5)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except TimeoutError:
        pass
    return got.decode().splitlines()


def test_a_local_link_is_a_link_beside_the_socket_ones(emu: Emulator) -> None:
    host, port = emu.serial_url.removeprefix("socket://").rsplit(":", 1)
    bystander = socket.create_connection((host, int(port)))   # a host that only listens
    deadline = time.monotonic() + 30
    while not emu._clients:       # the emulator's accept thread takes it on (a loaded machine)
        assert time.monotonic() < deadline, "the emulator never accepted the connection"
        time.sleep(0.01)
    with simulate.open_client(emu) as c:
        before = emu.clock.now_ms
        assert c.status()["state"] == "stopped"          # a verified reply through the link
        c.call("set_clock", 20_000, 3_600_000)
        assert emu.clock.now_ms == before                 # talking moves no virtual time
        emu.advance(60_000)
        assert c.status()["clock"] is not None
        kinds = {e.get("kind") for e in c.poll_events()}
        assert "clock_set" in kinds                       # the pump's event reached this link
        (link,) = [k for k, v in emu._clients.items() if isinstance(v, LocalPort)]
    assert link not in emu._clients                       # closing the client frees the link
    lines = _drain(bystander)
    bystander.close()
    # the socket host got the same event lines and none of the local link's replies
    assert lines and all(ln.startswith("~") for ln in lines), lines[:3]
    assert any('"clock_set"' in ln for ln in lines)


def test_a_closed_local_port_refuses_writes_and_links_are_bounded(emu: Emulator) -> None:
    ports = [emu.local_port() for _ in range(MAX_CONNECTIONS)]
    with pytest.raises(RuntimeError, match="connections"):
        emu.local_port()
    ports[0].close()
    with pytest.raises(serial.SerialException):
        ports[0].write(b"x\n")
    emu.local_port().close()                              # a freed place can be taken again
    for p in ports[1:]:
        p.close()
