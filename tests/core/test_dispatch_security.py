# pumpcore.dispatch security: replay, reorder, tamper, wrong key/role, rollback, duplicate ids,
# persistence before execution, refusals logged with the claimed role.

from proto_helpers import KEYS, Signer, expect_error, expect_ok, make, reply
from pumpcore import auth, reasons, wire


def _running():
    d, pump, a = make()
    pump.committed = {"x": 1}
    pump.state = "running"
    return d, pump, a


def _refusals(d):
    return [e for e in d.pop_security_log() if e["kind"] == "auth_refused"]


def test_duplicate_request_id_executes_once():
    d, pump, _ = _running()
    s = Signer()
    line = s.line("bolus", {"volume_nl": 5000, "duration_ms": 60000}, req_id="b1")
    first = d.handle_line(line)
    expect_ok(first)
    for _ in range(5):      # lost replies: the host resends the very same line
        assert d.handle_line(line) == first
    assert pump.boluses == 1
    assert [c[0] for c in pump.calls] == ["clinician_bolus"]


def test_same_id_different_body_is_refused():
    d, pump, _ = _running()
    s = Signer()
    expect_ok(d.handle_line(s.line("bolus", {"volume_nl": 5000, "duration_ms": 60000},
                                   req_id="b1")))
    expect_error(d.handle_line(s.line("bolus", {"volume_nl": 9000, "duration_ms": 60000},
                                      req_id="b1")), reasons.ID_REUSED)
    assert pump.boluses == 1


def test_replay_after_cache_eviction_is_stale():
    d, pump, _ = _running()
    s = Signer()
    captured = s.line("patient_bolus", role="patient", req_id="p1")
    expect_ok(d.handle_line(captured))
    for i in range(20):     # push p1 out of the 16-entry replay cache
        expect_ok(d.handle_line(s.line("status", role="readonly")))
    expect_error(d.handle_line(captured), reasons.STALE_COUNTER)
    assert pump.patient_boluses == 1
    refused = _refusals(d)
    assert refused[-1]["role"] == "patient" and refused[-1]["reason"] == reasons.STALE_COUNTER


def test_reorder_and_rollback_refused():
    d, pump, a = _running()
    s = Signer()
    l1 = s.line("patient_bolus", role="patient")
    l2 = s.line("patient_bolus", role="patient")
    expect_ok(d.handle_line(l2))            # counter 2 arrives first
    expect_error(d.handle_line(l1), reasons.STALE_COUNTER)   # counter 1 afterwards: refused
    expect_error(d.handle_line(s.line("patient_bolus", role="patient", counter=2)),
                 reasons.STALE_COUNTER)
    # counters are per role: clinician counter 1 is still fine
    expect_ok(d.handle_line(s.line("start", counter=1)))
    assert pump.patient_boluses == 1 and a.last_counter("patient") == 2
    # restoring an older snapshot (flash rollback) never lowers the counter
    assert a.restore({"counters": {"patient": 1}}) == reasons.OK
    expect_error(d.handle_line(s.line("patient_bolus", role="patient", counter=2)),
                 reasons.STALE_COUNTER)


def test_tampered_requests_refused():
    d, pump, a = _running()
    body = wire.request_body("t1", "clinician", 1, "bolus", {"volume_nl": 5000,
                                                             "duration_ms": 60000})
    tag = auth.tag(KEYS["clinician"], body)
    evil = body.replace("5000", "9000")
    expect_error(d.handle_line(wire.request_line(evil, tag)), reasons.BAD_TAG)
    # change the role claim with the same tag
    expect_error(d.handle_line(wire.request_line(body.replace("clinician", "patient"), tag)),
                 reasons.BAD_TAG)
    # flip one tag digit (and fix the CRC, as an attacker would: a CRC is not a key)
    flipped = tag[:-1] + ("0" if tag[-1] != "0" else "1")
    expect_error(d.handle_line(wire.request_line(body, flipped)), reasons.BAD_TAG)
    assert pump.boluses == 0 and a.last_counter("clinician") == 0
    expect_ok(d.handle_line(wire.request_line(body, tag)))
    assert pump.boluses == 1


def test_wrong_key_and_missing_key():
    d, pump, a = _running()
    s = Signer()
    expect_error(d.handle_line(s.line("start", key=b"\x00" * 32)), reasons.BAD_TAG)
    expect_error(d.handle_line(s.line("start", role="clinician", key=KEYS["patient"])),
                 reasons.BAD_TAG)
    a.set_key("readonly", None)
    expect_error(d.handle_line(s.line("status", role="readonly")), reasons.NO_KEY)
    refused = _refusals(d)
    assert [(e["role"], e["reason"], e["cmd"]) for e in refused] == [
        ("clinician", reasons.BAD_TAG, "start"), ("clinician", reasons.BAD_TAG, "start"),
        ("readonly", reasons.NO_KEY, "status")]
    assert pump.calls == []


def test_roles_are_enforced():
    d, pump, _ = _running()
    s = Signer()
    clinician_only = ["stage", "review", "commit", "start", "stop", "suspend", "resume", "prime",
                      "refill", "bolus", "ack", "set_clock", "stage_chunk"]
    for cmd in clinician_only:
        for role in ("patient", "readonly"):
            expect_error(d.handle_line(s.line(cmd, role=role)), reasons.ROLE_FORBIDDEN)
    expect_error(d.handle_line(s.line("patient_bolus", role="readonly")), reasons.ROLE_FORBIDDEN)
    expect_error(d.handle_line(s.line("log", role="patient")), reasons.ROLE_FORBIDDEN)
    assert pump.calls == []
    refused = _refusals(d)
    assert len(refused) == 28 and refused[0]["role"] == "patient"
    expect_ok(d.handle_line(s.line("status", role="patient")))
    expect_ok(d.handle_line(s.line("log", role="readonly")))
    expect_ok(d.handle_line(s.line("patient_bolus", role="clinician")))
    expect_ok(d.handle_line(s.line("hello", role="readonly")))


def test_unauthenticated_only_hello():
    d, pump, _ = _running()
    s = Signer()
    for cmd in ["status", "log", "patient_bolus", "bolus", "start"]:
        expect_error(d.handle_line(s.line(cmd, role=None)), reasons.AUTH_REQUIRED)
    assert pump.calls == []
    refused = _refusals(d)
    assert len(refused) == 5 and refused[0]["role"] is None
    expect_ok(d.handle_line(s.line("hello", role=None)))


def test_unknown_role_is_logged():
    d, _, _ = _running()
    line = wire.request_line("@z9 admin 1 start {}", "0" * 32)
    data = expect_error(d.handle_line(line), reasons.UNKNOWN_ROLE)
    assert "msg" in data and reply(d.handle_line(line))[1] == "z9"
    assert _refusals(d)[0]["reason"] == reasons.UNKNOWN_ROLE


def test_counter_persisted_before_execution():
    order = []
    d, pump, a = _running()

    def persist(snap):
        order.append(("persist", snap["counters"]["clinician"], pump.boluses))
    d.persist = persist
    s = Signer()
    expect_ok(d.handle_line(s.line("bolus", {"volume_nl": 5000, "duration_ms": 60000})))
    assert order == [("persist", 1, 0)]      # persisted while the bolus had not run yet
    expect_ok(d.handle_line(s.line("status", role="readonly")))
    assert len(order) == 1 and a.dirty        # reads only mark dirty


def test_persist_failure_blocks_execution():
    d, pump, a = _running()

    def broken(snap):
        raise OSError("flash")
    d.persist = broken
    s = Signer()
    line = s.line("bolus", {"volume_nl": 5000, "duration_ms": 60000})
    r = d.handle_line(line)
    expect_error(r, reasons.STORAGE_ERROR)
    assert pump.boluses == 0
    assert d.handle_line(line) == r           # the resend gets the same answer, still no bolus
    assert pump.boluses == 0
    assert a.last_counter("clinician") == 1   # the counter is burnt, never reusable


def test_pseudo_random_mutations_never_execute():
    # A small deterministic fuzz that also runs under MicroPython (the hypothesis fuzz in
    # tests/host/test_fuzz_dispatch.py is CPython only): flip, drop, insert and truncate bytes of
    # valid signed requests, optionally re-sealing the CRC like an attacker would.
    d, pump, a = _running()
    s = Signer()
    valid = [s.line("bolus", {"volume_nl": 5000, "duration_ms": 60000}),
             s.line("patient_bolus", role="patient"),
             s.line("stage", {"rx": {"reservoir": {"fill_nl": 1}}})]
    seed = 12345
    for n in range(300):
        seed = (seed * 1103515245 + 12345) & 0x3FFFFFFF
        line = bytearray(valid[n % len(valid)].encode())
        pos = seed % len(line)
        op = (seed >> 12) % 4
        if op == 0:
            line[pos] = 0x20 + (seed >> 5) % 95
        elif op == 1:
            line = line[:pos] + line[pos + 1:]
        elif op == 2:
            line = line[:pos] + bytes([0x20 + (seed >> 7) % 95]) + line[pos:]
        else:
            line = line[:pos]
        text = line.decode()
        if (seed >> 20) & 1:
            sp = text.rfind(" ")
            if sp > 0:
                text = wire.seal(text[:sp])
        try:
            same = wire.parse_request(text)[5:] == wire.parse_request(valid[n % len(valid)])[5:]
        except wire.WireError:
            same = False
        if same:
            continue      # e.g. a changed letter case in the hex: the same signed request
        out = d.feed(text.encode() + b"\n")
        assert len(out) == (1 if text.startswith("@") else 0), text
        for r in out:
            assert reply(r)[0] == "!"
    assert pump.calls == [] and a.counters() == {"clinician": 0, "patient": 0, "readonly": 0}
