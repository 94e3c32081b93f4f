"""PumpClient through a real TCP socket against Dispatcher + fake pump, with faults."""

from __future__ import annotations

import threading
import time

import pytest
import serial
from pump_server import INFO, PumpServer
from pumpcore import reasons, wire
from pumphost import keys
from pumphost.client import PumpClient, wall_clock_of
from pumphost.errors import (
    AuthError,
    OutcomeUnknownError,
    ProtocolError,
    PumpError,
    RefusedError,
    ReplyAuthError,
    TransportError,
)

RX = {"reservoir": {"capacity_nl": 20000000, "fill_nl": 18000000, "low_alert_nl": 2000000,
                    "empty_nl": 500000}, "catheter": {"volume_nl": 150000},
      "drugs": [{"name": "morphine", "conc_ug_per_ml": 10000, "hard_ng_per_day": None,
                 "soft_ng_per_day": None}],
      "basal": {"steps": [[0, 20000], [480, 30000]], "days": None}, "periodic": [],
      "patient": None}


def _client(server: PumpServer, **kw: object) -> PumpClient:
    kw.setdefault("timeout_s", 0.5)
    return PumpClient.open(server.url, **kw)  # type: ignore[arg-type]


def _running(server: PumpServer) -> None:
    server.pump.committed = {"x": 1}
    server.pump.state = "running"


def test_hello_and_key_lookup_by_device_id(server: PumpServer, keyset: keys.KeySet) -> None:
    with _client(server) as c:
        info = c.hello()
        assert info["device_id"] == INFO["device_id"] and info["protocol"] == 2
        assert info["counters"] == {"clinician": "0", "patient": "0", "readonly": "0"}
        assert c.info is info                         # verified: a key was found by device id
        assert c.status()["state"] == "stopped"       # key found in $ITPUMP_HOME/keys/
        assert c.keyset == keyset
    # least privilege: a read is signed with the readonly key when the key file has it
    assert server.auth.counters() == {"clinician": "0", "patient": "0", "readonly": "1"}


def test_full_workflow(server: PumpServer) -> None:
    with _client(server) as c:
        day, ms = wall_clock_of(__import__("datetime").datetime(2026, 11, 24, 8, 30, 1, 500000))
        assert (day, ms) == (9824, 30601500)
        c.set_clock(day, ms)
        review = c.stage(RX)
        assert c.review()["checksum"] == review["checksum"]
        c.commit(review["checksum"])
        c.prime(150000)
        c.start()
        c.clinician_bolus(5000, 60000)
        c.patient_bolus()
        c.suspend(10)
        c.resume()
        c.refill(18000000, new_admixture=False)
        c.ack("low_reservoir")
        c.stop()
    p = server.pump
    assert p.clock == (9824, 30601500) and p.committed == RX
    assert p.boluses == 1 and p.patient_boluses == 1 and p.state == "stopped"


def test_big_program_goes_in_chunks(server: PumpServer) -> None:
    steps = [[i * 110, 1000000 + i * 1111] for i in range(13)]
    rx = dict(RX)
    rx["drugs"] = [{"name": f"drug{i}", "conc_ug_per_ml": 10000, "hard_ng_per_day": 20000000,
                    "soft_ng_per_day": 10000000} for i in range(4)]
    rx["basal"] = {"steps": steps, "days": {d: steps for d in
                                            ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
    with _client(server) as c:
        review = c.stage(rx)
    assert server.pump.staged == rx and review["checksum"].startswith("c")
    assert any(b"stage_chunk" in d for d in server.received)


def test_refusals_map_to_exceptions(server: PumpServer) -> None:
    with _client(server) as c:
        with pytest.raises(RefusedError) as ei:
            c.patient_bolus()
        assert ei.value.reason == reasons.NOT_RUNNING and isinstance(ei.value, PumpError)
        with pytest.raises(RefusedError) as ei:
            c.stage({"basal": {}})
        assert ei.value.data["problems"] == [[reasons.INVALID, "reservoir"]]
        with pytest.raises(AuthError) as ea:
            c.request("start", role="patient")
        assert ea.value.reason == reasons.ROLE_FORBIDDEN
        with pytest.raises(ProtocolError) as ep:
            c.request("suspend", {"minutes": "x"})
        assert ep.value.reason == reasons.BAD_ARGS


def test_wrong_key_is_auth_error(server: PumpServer, tmp_path: object) -> None:
    bad = keys.generate(INFO["device_id"])
    with _client(server, keyset=bad) as c:
        with pytest.raises(ReplyAuthError) as ei:   # the hello does not verify: wrong key file
            c.status()
        assert ei.value.reason == "bad_reply_tag" and "key file" in ei.value.message
        assert c.info is None and c.timeouts == 0   # nothing trusted, and no waiting for it
    other = keys.generate("OTHERPUMP")
    with _client(server, keyset=other) as c, pytest.raises(AuthError):
        c.status()
    assert server.pump.calls == []


def test_lost_replies_are_resent_and_executed_once(server: PumpServer) -> None:
    _running(server)
    dropped: list[str] = []

    def drop_two(line: str) -> str | None:
        if line.startswith("=") and len(dropped) < 2:
            dropped.append(line)
            return None
        return line
    with _client(server, timeout_s=0.2) as c:
        c.hello()
        server.reply_filter = drop_two
        c.clinician_bolus(5000, 60000)
        assert c.resends == 2
    assert len(dropped) == 2 and server.pump.boluses == 1


def test_garbled_reply_and_garbled_request_are_retried(server: PumpServer) -> None:
    _running(server)
    state = {"replies": 0, "requests": 0}

    def garble_reply(line: str) -> str | None:
        if line.startswith("=") and state["replies"] == 0:
            state["replies"] += 1
            return line[:5] + "X" + line[6:]
        return line

    def drop_byte(data: bytes) -> bytes:
        if state["requests"] == 0 and len(data) > 20:
            state["requests"] += 1
            return data[:10] + data[11:]        # rp2 lost a byte during a flash write
        return data
    with _client(server, timeout_s=30.0) as c:
        c.hello()
        server.reply_filter = garble_reply
        c.patient_bolus()
        server.request_filter = drop_byte
        c.patient_bolus()
        assert c.resends == 2
        assert c.timeouts == 0     # "!-" and a bad reply CRC trigger an immediate resend
    assert server.pump.patient_boluses == 2


def test_no_reply_at_all_is_transport_error(server: PumpServer) -> None:
    server.reply_filter = lambda line: None
    with _client(server, timeout_s=0.1, retries=2) as c:
        with pytest.raises(TransportError) as ei:
            c.hello()
        assert ei.value.reason == "timeout" and c.resends == 2 and c.timeouts == 3


def test_reboot_with_lost_reply_is_outcome_unknown(server: PumpServer) -> None:
    _running(server)
    with _client(server, timeout_s=0.3, retries=2, reconnect_s=2.0) as c:
        c.hello()

        def drop_and_reboot(line: str) -> str | None:
            if line.startswith("="):
                server.reply_filter = None
                threading.Thread(target=server.reboot).start()
                return None
            return line
        server.reply_filter = drop_and_reboot
        with pytest.raises(OutcomeUnknownError):
            c.clinician_bolus(5000, 60000)
        assert server.pump.boluses == 1      # ran exactly once; the client says "unknown"
        assert c.status()["boluses"] == 1    # and recovers after reconnecting


def test_reconnect_after_connection_drop(server: PumpServer) -> None:
    with _client(server, reconnect_s=3.0) as c:
        c.status()
        server.drop_connection()
        time.sleep(0.1)
        assert c.status()["state"] == "stopped"


def test_counters_continue_across_clients_and_resync(server: PumpServer) -> None:
    with _client(server) as a:
        a.hello()
        a.resume()
        a.stop()
        # another host used counters meanwhile: a's next counter is stale; the pump's tagged
        # refusal says where the counter stands, and a retries once with a new id (the refused
        # request did not run)
        server.auth.accept("clinician", (0, 10))
        a.stop()
    assert server.auth.last_counter("clinician") == (0, 11)
    with _client(server) as c:
        assert c.hello()["counters"]["clinician"] == "11"
        c.stop()
    assert server.auth.last_counter("clinician") == (0, 12)
    assert [c[0] for c in server.pump.calls] == ["resume", "stop", "stop", "stop"]


def test_events_reach_subscribers_and_iterator(server: PumpServer) -> None:
    _running(server)
    seen: list[dict] = []
    with _client(server) as c:
        unsubscribe = c.on_event(seen.append)
        c.clinician_bolus(5000, 60000)   # the fake pump emits bolus_started; dispatcher logs it
        deadline = time.monotonic() + 5.0   # poll_events returns at the first event: the two
        while not {"bolus_started", "command"} <= {e["kind"] for e in seen} \
                and time.monotonic() < deadline:    # may come in separate writes
            c.poll_events(0.5)
        kinds = [e["kind"] for e in seen]
        assert "bolus_started" in kinds and "command" in kinds
        server.send_events([{"kind": "alarm", "code": "occlusion"}])
        got = next(iter(c.events(timeout_s=2.0)))
        assert got["kind"] == "alarm" and (got["_boot"], got["_seq"]) == c.event_pos
        unsubscribe()
        server.send_events([{"kind": "x"}])
        assert [e["kind"] for e in c.poll_events(1.0)] == ["x"]
        assert seen[-1]["kind"] == "alarm"
        log = c.log_all()
        assert [e[1]["kind"] for e in log][-2:] == ["alarm", "x"]


def test_role_choice_with_partial_key_file(server: PumpServer, keyset: keys.KeySet) -> None:
    _running(server)
    patient_only = keys.KeySet(keyset.device_id, {"patient": keyset.keys["patient"]})
    with _client(server, keyset=patient_only) as c:
        c.patient_bolus()
        assert c.status()["patient_boluses"] == 1
        with pytest.raises(AuthError):
            c.start()
        with pytest.raises(AuthError):
            c.log()
    assert server.auth.last_counter("patient") == (0, 2)


def test_chatter_and_loop_transport() -> None:
    port = serial.serial_for_url("loop://", timeout=0.05)
    c = PumpClient(port, None, timeout_s=0.5)
    # REPL noise, a too-long line and non-ASCII bytes are skipped by the line splitter
    port.write(b"MicroPython v1.27\r\n>>> " + b"x" * 3000 + b"\n\xff\xfe\n")
    port.write((wire.event_line(wire.event_body(1, 5, {"kind": "hi"}), [None] * 3) + "\r\n")
               .encode())
    import time as _t
    assert c._read_line(_t.monotonic() + 1.0) == "MicroPython v1.27"
    assert c._read_line(_t.monotonic() + 1.0).startswith("~1 5 ")
    assert c.poll_events(0.2) == []     # an event nothing verifies is not delivered
    c.close()


def test_open_errors() -> None:
    with pytest.raises(TransportError):
        PumpClient.open("socket://127.0.0.1:1")
    with pytest.raises(TransportError):
        PumpClient.open("/dev/does-not-exist-itpump")
