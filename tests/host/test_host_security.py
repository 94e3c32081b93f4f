"""Attacks through a real TCP transport against Dispatcher + the real pumpcore Pump: a captured
patient-bolus line replayed, reordered, tampered, re-signed with a wrong key, sent after a pump
reset (counter rollback attempt). Attack lines are signed with the wire keys a key holder can
derive (the role key and the key id `hello` reports)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pump_server import PumpServer, core_library
from pumpcore import auth, reasons, wire
from pumpcore.auth import wire_key
from pumpcore.pump import Pump
from pumphost import keys, prescription_file
from pumphost.client import PumpClient

RX = prescription_file.load(Path(__file__).parent / "data" / "morphine.toml")


@pytest.fixture
def running(keyset: keys.KeySet) -> Iterator[PumpServer]:
    pump = Pump(library=core_library())
    pump.boot()
    with PumpServer(keyset, pump=pump) as s:
        with PumpClient.open(s.url, timeout_s=1.0) as c:
            c.set_clock(9824, 8 * 3600000)
            c.commit(c.stage(RX)["checksum"])
            c.prime(150000)
            with s.lock:
                for _ in range(15):
                    pump.advance(60000)
            c.start()
            with s.lock:
                for _ in range(61):   # past the lockout that follows programming
                    pump.advance(60000)
        yield s


def _delivered(s: PumpServer) -> int:
    with s.lock:
        return int(s.pump.status()["patient_bolus"]["delivered"])


class Attacker:
    def __init__(self, s: PumpServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", s.port))
        self.sock.settimeout(2.0)
        self.buf = b""

    def send(self, line: str) -> tuple:
        self.sock.sendall(line.encode("latin-1") + b"\n")
        while True:
            while b"\n" not in self.buf:
                self.buf += self.sock.recv(4096)
            raw, self.buf = self.buf.split(b"\n", 1)
            parsed = wire.parse_reply(raw.decode())
            if parsed is not None and parsed[0] != "~":
                return parsed

    def close(self) -> None:
        self.sock.close()


def _captured_patient_bolus(s: PumpServer) -> str:
    with PumpClient.open(s.url, timeout_s=1.0, role="patient") as c:   # the patient's handset
        c.patient_bolus()
    for chunk in s.received:
        for ln in chunk.decode().splitlines():
            if " patient_bolus " in ln:
                captured = ln
    return captured


def _refusals(s: PumpServer) -> dict[str, int]:
    with s.lock:
        return dict(s.dispatcher._refusals)


def _wire(s: PumpServer, role: str) -> bytes:
    return wire_key(s.keyset.keys[role], s.auth.kids()[role])


def test_replayed_patient_bolus_never_delivers_again(running: PumpServer) -> None:
    line = _captured_patient_bolus(running)
    assert _delivered(running) == 1
    with running.lock:
        for _ in range(61):
            running.pump.advance(60000)      # bolus over and lockout passed
    att = Attacker(running)
    # immediate replay = a resend: the cached reply, not executed again
    assert att.send(line)[0] == "="
    assert _delivered(running) == 1
    att.close()   # the test server serves one connection at a time (like a serial port)
    # once the reply cache has moved on, the replay is refused as stale and logged
    ro = keys.KeySet(running.keyset.device_id, {"readonly": running.keyset.keys["readonly"]})
    with PumpClient.open(running.url, keyset=ro, timeout_s=1.0) as c:
        for _ in range(17):
            c.status()
    att = Attacker(running)
    kind, _, _, reason, _, _ = att.send(line)
    assert (kind, reason) == ("!", reasons.STALE_COUNTER)
    assert _delivered(running) == 1
    assert _refusals(running) == {reasons.STALE_COUNTER: 1}
    assert running.dispatcher._refused_roles == {"patient": 1}
    att.close()


def test_tampered_and_forged_requests(running: PumpServer) -> None:
    att = Attacker(running)
    with running.lock:
        last = running.auth.last_counter("patient")
    last = int(wire.format_counter(last))
    body = wire.request_body("evil1", "patient", last + 5, "patient_bolus", {})
    forged = wire.request_line(body, auth.tag(b"\x00" * 32, body))          # wrong key
    assert att.send(forged)[3] == reasons.BAD_TAG
    raw = wire.request_line(body, auth.tag(running.keyset.keys["patient"], body))
    assert att.send(raw)[3] == reasons.BAD_TAG       # the role key itself is not the wire key
    good_tag = auth.tag(_wire(running, "patient"), body)
    tampered = wire.request_body("evil1", "clinician", last + 5, "patient_bolus", {})
    assert att.send(wire.request_line(tampered, good_tag))[3] == reasons.BAD_TAG
    as_bolus = wire.request_body("evil1", "patient", last + 5, "clinician_bolus",
                                 {"volume_nl": 1000000, "duration_ms": 60000})
    assert att.send(wire.request_line(as_bolus, good_tag))[3] == reasons.BAD_TAG
    crc_only = wire.request_line(body, "0" * 32)                             # CRC is no key
    assert att.send(crc_only)[3] == reasons.BAD_TAG
    upper = wire.request_line(body, good_tag.upper())                        # one encoding
    assert att.send(upper)[3] == reasons.BAD_FRAME
    # a clinician command signed with the patient's own (valid) key: wrong role
    b2 = wire.request_body("evil2", "patient", last + 6, "clinician_bolus",
                           {"volume_nl": 1000000, "duration_ms": 60000})
    r = att.send(wire.request_line(b2, auth.tag(_wire(running, "patient"), b2)))
    assert r[3] == reasons.ROLE_FORBIDDEN
    assert _delivered(running) == 0
    with running.lock:
        assert running.pump.status()["bolus"] is None
    assert _refusals(running) == {reasons.BAD_TAG: 5, reasons.BAD_FRAME: 1,
                                  reasons.ROLE_FORBIDDEN: 1}
    att.close()


def test_reordered_and_rolled_back_counters(running: PumpServer) -> None:
    with running.lock:
        last = int(wire.format_counter(running.auth.last_counter("patient")))
    key = _wire(running, "patient")

    def signed(i: str, counter: int) -> str:
        b = wire.request_body(i, "patient", counter, "status", {})
        return wire.request_line(b, auth.tag(key, b))
    att = Attacker(running)
    assert att.send(signed("o2", last + 2))[0] == "="
    assert att.send(signed("o1", last + 1))[3] == reasons.STALE_COUNTER   # reordered
    # a reset keeps the persisted counter: an old request is still refused afterwards
    running.reboot()
    time.sleep(0.1)
    att = Attacker(running)
    assert att.send(signed("o3", last + 2))[3] == reasons.STALE_COUNTER
    assert att.send(signed("o4", last + 3))[0] == "="
    att.close()
