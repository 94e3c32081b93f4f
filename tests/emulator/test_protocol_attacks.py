"""Issue 11's "done when", through the real socket and the emulator (the unchanged firmware on the
virtual board, its flash a real littlefs image): a man in the middle cannot make the host show
what the pump did not say, cannot burn a counter, cannot replay after damaging a record; 3,000
refused frames cost no flash write; an exhausted counter is recovered by re-keying the role."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import rx_helpers
from mitm import LineProxy, change_data
from pumpcore import reasons, wire
from pumpcore.clock import from_ymd_hms
from pumpcore.dispatch import SUMMARY_EVERY_MS
from pumpfw.storage import SECURITY, Storage, device_identity, rekey
from pumphil.emulator import Emulator
from pumphost import cli
from pumphost import keys as host_keys
from pumphost.client import PumpClient
from pumphost.errors import AuthError, LockedError, RefusedError, ReplyAuthError

MIN = 60_000
MONDAY = from_ymd_hms(2026, 1, 5)


def exchange(url: str, lines: list[str], timeout: float = 5.0) -> list[tuple[Any, ...]]:
    """Send request lines on a raw connection; the parsed reply to each (events skipped)."""
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall("".join(ln + "\n" for ln in lines).encode("latin-1"))
        out: list[tuple[Any, ...]] = []
        buf = b""
        while len(out) < len(lines):
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {len(out)} replies"
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                parsed = wire.parse_reply(raw.decode())
                if parsed is not None and parsed[0] != "~":
                    out.append(parsed)
    return out


def program_and_prime(emu: Emulator, c: PumpClient) -> None:
    rx = rx_helpers.simple_rx(10000)
    c.set_clock(*MONDAY)
    c.commit(c.stage(rx)["checksum"], confirm_soft=True)
    c.prime(rx["catheter"]["volume_nl"])
    emu.advance(20 * MIN)


def damage(emu: Emulator, name: str) -> None:
    """One flipped bit in a record on the flash, the board off meanwhile (an attacker with the
    flash, or a worn cell)."""
    emu.plant.power(False)
    f = emu.flash.open(name, "rb")
    data = bytearray(f.read())
    f.close()
    data[len(data) // 2] ^= 0x04
    g = emu.flash.open(name, "wb")
    g.write(bytes(data))
    g.close()
    emu.plant.power(True)


def test_the_host_shows_nothing_the_pump_did_not_say(emu: Emulator, client: PumpClient,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    program_and_prime(emu, client)
    client.start()
    emu.plant.occlude("complete")
    emu.advance(30 * MIN)
    assert client.status()["alarms"]            # the truth: an occlusion alarm
    with LineProxy(emu.serial_url) as mitm:
        mitm.rewrite = change_data("=", lambda d: {**d, "alarms": [], "state": "running",
                                                   "reservoir_nl": 20_000_000}
                                   if "alarms" in d else d)
        code = cli.main(["--port", mitm.url, "--key-file", str(emu.key_file), "--json", "status"])
        out, err = capsys.readouterr()
        assert code == cli.EXIT_AUTH and "bad_reply_tag" in err
        assert '"alarms": []' not in out and "reservoir_nl" not in out
        # the hello (counters, key ids, device) is forged: nothing from it is used either
        mitm.rewrite = change_data("=", lambda d: {**d, "device_id": emu.device_id,
                                                   "locked": None, "board": "forged"}
                                   if "kids" in d else d)
        code = cli.main(["--port", mitm.url, "--key-file", str(emu.key_file), "--json",
                         "version"])
        out, err = capsys.readouterr()
        assert code == cli.EXIT_AUTH and "forged" not in out
        # events: an alarm turned into "none" on the way is dropped and reported
        mitm.rewrite = None
        with PumpClient.open(mitm.url, key_file=emu.key_file) as c:
            c.hello()
            mitm.rewrite = change_data("~", lambda d: {**d, "code": "none"})
            emu.plant.clear_occlusion()
            client.ack()                        # the genuine client: state and alarm events
            got = c.poll_events(1.0)
            assert got == [] and c.events_rejected > 0
            assert all(i["issue"] == "forged" for i in c.event_issues)


def test_a_counter_cannot_be_burnt(emu: Emulator, client: PumpClient) -> None:
    with LineProxy(emu.serial_url) as mitm:
        # v1's attack: a forged hello naming counter 2**30-1, which the host then signed with
        mitm.rewrite = change_data("=", lambda d: {**d, "counters": {
            r: str(2 ** 30 - 1) for r in wire.ROLES}} if "counters" in d else d)
        with PumpClient.open(mitm.url, key_file=emu.key_file, timeout_s=1.0) as c:
            with pytest.raises(ReplyAuthError):
                c.set_clock(*MONDAY)
            mitm.rewrite = None
            c.set_clock(*MONDAY)                             # the role keeps working ...
        # ... and a key holder's own jump to the end of the space is refused, not stored
        with PumpClient.open(mitm.url, key_file=emu.key_file) as c:
            c.hello()
            c._counters["clinician"] = 2 ** 48 - 2
            with pytest.raises(AuthError) as ei:
                c.set_clock(*MONDAY)
            assert ei.value.reason == reasons.COUNTER_JUMP
    assert client.hello()["counters"]["clinician"] == "1"
    client.set_clock(*MONDAY)
    emu.plant.power(False)
    emu.plant.power(True)                          # and across a restart
    client.reconnect()
    client.set_clock(*MONDAY)
    assert client.hello()["counters"]["clinician"] == "3"


def test_no_replay_after_damaging_a_record(emu: Emulator, client: PumpClient,
                                           itpump_home: Any) -> None:
    original = {r: k.hex() for r, k in host_keys.load(emu.key_file).keys.items()}
    with LineProxy(emu.serial_url) as mitm:
        with PumpClient.open(mitm.url, key_file=emu.key_file) as c:
            program_and_prime(emu, c)            # set_clock, stage, commit, prime: captured
        captured = [ln for ln in mitm.sent if ln.startswith("@") and " - - hello " not in ln]
    assert len(captured) == 4
    strokes = emu.plant.strokes_ok
    assert strokes > 0

    def replay() -> list[str | None]:
        replies = exchange(emu.serial_url, captured)
        emu.advance(20 * MIN)
        assert emu.plant.strokes_ok == strokes   # nothing primed, nothing delivered
        return [r[3] for r in replies]

    # the pump state record damaged: the security record still holds the counters
    damage(emu, "/state.json")
    assert replay() == [reasons.STALE_COUNTER] * 4
    # the security record damaged (v1 reset every counter to 0 here): locked
    damage(emu, SECURITY)
    assert emu.board.app is not None and emu.board.app.boot_report["security"] == \
        "security record corrupt"
    assert replay() == [reasons.LOCKED] * 4
    with PumpClient.open(emu.serial_url, key_file=emu.key_file) as c, \
            pytest.raises(LockedError):
        c.status()
    # re-keyed over the physical channel: fresh key ids, so the old frames never verify again
    emu.rekey()
    assert replay() == [reasons.BAD_TAG] * 4
    with PumpClient.open(emu.serial_url) as c:     # the new key file, found by device id
        assert c.hello()["locked"] is None
        assert c.status()["state"] == "safe_state"  # the lost state still needs a clinician
    # even the very role keys the frames were signed with, provisioned again, do not make them
    # valid: every provisioning draws fresh key ids, so fresh wire keys
    emu.plant.power(False)
    rekey(emu.flash, original)
    emu.plant.power(True)
    assert replay() == [reasons.BAD_TAG] * 4


def test_refused_frames_cost_no_flash_write(emu: Emulator, client: PumpClient) -> None:
    client.set_clock(*MONDAY)
    assert emu.board.app is not None
    storage = emu.board.app.storage
    stored_before = storage.read_log()
    body = wire.request_body("x1", "clinician", 999, "stop", {})
    frames = [
        wire.request_line(body, "0" * 32),                           # bad tag
        wire.request_line(wire.request_body("x2", None, None, "stop", {}), None),  # no auth
        "@x3 clinician 5 stop {} " + "0" * 32 + " 00000000",        # bad CRC
        wire.seal("@x4 admin 1 stop {} -"),                          # junk
    ]
    flood = [frames[i % 4] for i in range(3000)]
    with emu.lock:          # the board has finished the step that answered set_clock
        progs = emu.flash.programs
        writes = storage.writes
    replies = exchange(emu.serial_url, flood, timeout=60.0)
    assert len(replies) == 3000 and all(r[0] == "!" and r[5] is None for r in replies)
    assert {r[3] for r in replies[20:]} == {reasons.THROTTLED}       # the link is throttled
    with emu.lock:
        assert emu.flash.programs == progs and storage.writes == writes  # 0 flash writes
    client.set_clock(*MONDAY)                    # another link is served meanwhile
    # the refusals show up as one summary within the hour; nothing earlier is pushed out
    emu.advance(SUMMARY_EVERY_MS)
    summaries = [e for e in storage.read_log(security=True) if e.get("kind") == "refusals"]
    assert len(summaries) == 1 and summaries[0]["count"] == 3000
    assert storage.read_log()[:len(stored_before)] == stored_before


def test_an_exhausted_counter_is_recovered_by_rekeying_the_role(emu: Emulator,
                                                                client: PumpClient) -> None:
    with pytest.raises(RefusedError):
        client.patient_bolus(role="patient")    # refused (not running), its counter persisted
    # the clinician counter at the end of its space (burnt by 2**24 steps of a key holder)
    emu.plant.power(False)
    ident = device_identity(emu.flash)
    assert ident is not None
    st = Storage(emu.flash, ident[1])
    rec = st.load(SECURITY)[1]
    rec["ctr"]["clinician"] = [wire.PART - 1, wire.PART - 1]
    st.save(SECURITY, rec)
    emu.plant.power(True)
    with PumpClient.open(emu.serial_url, key_file=emu.key_file) as c:
        assert c.hello()["counters"]["clinician"] == str(2 ** 48 - 1)
        with pytest.raises(AuthError) as ei:
            c.set_clock(*MONDAY)
        assert "re-key" in ei.value.message
    emu.rekey(("clinician",))                     # the physical channel, one role
    with PumpClient.open(emu.serial_url, key_file=emu.key_file) as c:
        c.set_clock(*MONDAY)
        counters = c.hello()["counters"]
    assert counters["clinician"] == "1" and counters["patient"] == "1"   # other roles kept
