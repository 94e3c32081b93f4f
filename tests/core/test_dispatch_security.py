# pumpcore.dispatch security: replay, reorder, tamper, wrong key/role, rollback, duplicate ids,
# persistence before execution, cheap refusals (counted in RAM, summarised, throttled per link),
# the locked mode, counters that cannot be burnt, and no tag for what did not authenticate.

from proto_helpers import WIRE, Signer, expect_error, expect_ok, make, reply, verified
from pumpcore import auth, dispatch, reasons, wire


def _running(locked=None):
    d, pump, a = make(locked=locked)
    pump.committed = {"x": 1}
    pump.state = "running"
    return d, pump, a


def test_duplicate_request_id_executes_once():
    d, pump, _ = _running()
    s = Signer()
    line = s.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000}, req_id="b1")
    first = d.handle_line(line)
    expect_ok(first)
    for _ in range(5):      # lost replies: the host resends the very same line
        assert d.handle_line(line) == first
    assert pump.boluses == 1
    assert [c[0] for c in pump.calls] == ["clinician_bolus"]


def test_same_id_different_body_is_refused():
    d, pump, _ = _running()
    s = Signer()
    expect_ok(d.handle_line(s.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000},
                                   req_id="b1")))
    r = d.handle_line(s.line("clinician_bolus", {"volume_nl": 9000, "duration_ms": 60000},
                             req_id="b1"))
    assert verified(r, s)[2] == reasons.ID_REUSED
    assert pump.boluses == 1


def test_replay_after_cache_eviction_is_stale():
    d, pump, _ = _running()
    s = Signer()
    captured = s.line("patient_bolus", role="patient", req_id="p1")
    expect_ok(d.handle_line(captured))
    for i in range(20):     # push p1 out of the 16-entry replay cache
        expect_ok(d.handle_line(s.line("status", role="readonly")))
    data = expect_error(d.handle_line(captured), reasons.STALE_COUNTER, True)
    assert data["last"] == "1"      # where the role stands, in a tagged reply
    assert pump.patient_boluses == 1
    assert d.refused_total == 1 and d._refusals == {reasons.STALE_COUNTER: 1}


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
    assert pump.patient_boluses == 1 and a.last_counter("patient") == (0, 2)
    # restoring an older record (flash rollback) never lowers the counter
    older = a.snapshot()
    older["ctr"]["patient"] = [0, 1]
    assert a.restore(older) == reasons.OK
    expect_error(d.handle_line(s.line("patient_bolus", role="patient", counter=2)),
                 reasons.STALE_COUNTER)


def test_one_frame_cannot_burn_a_counter():
    # a key holder (or a host misled about the counter) jumps to the end of the space: refused,
    # and the counter does not move, so the role keeps working
    d, pump, a = _running()
    s = Signer()
    data = expect_error(d.handle_line(s.line("stop", counter=2 ** 48 - 1)), reasons.COUNTER_JUMP,
                        True)
    assert data["last"] == "0" and a.last_counter("clinician") == wire.ZERO
    expect_error(d.handle_line(s.line("stop", counter=2 ** 30 - 1)), reasons.COUNTER_JUMP)
    expect_ok(d.handle_line(s.line("stop", counter=2 ** 24)))   # the largest step allowed
    expect_ok(d.handle_line(s.line("stop", counter=2 ** 24 + 1)))
    assert [c[0] for c in pump.calls] == ["stop", "stop"]


def test_counter_past_half_its_space_is_logged_once():
    d, _, a = _running()
    s = Signer()
    a._last["clinician"] = (auth.WARN_HI, 0)
    expect_ok(d.handle_line(s.line("status", counter=2 ** 47 + 5)))
    expect_ok(d.handle_line(s.line("status", counter=2 ** 47 + 6)))
    highs = [e for e in d.pop_security_log() if e["kind"] == "counter_high"]
    assert len(highs) == 1 and highs[0]["role"] == "clinician"
    assert highs[0]["counter"] == str(2 ** 47 + 5)


def test_tampered_requests_refused_untagged():
    d, pump, a = _running()
    body = wire.request_body("t1", "clinician", 1, "clinician_bolus",
                             {"volume_nl": 5000, "duration_ms": 60000})
    tag = auth.tag(WIRE["clinician"], body)
    evil = body.replace("5000", "9000")
    expect_error(d.handle_line(wire.request_line(evil, tag), link=1), reasons.BAD_TAG, False)
    # change the role claim with the same tag
    expect_error(d.handle_line(wire.request_line(body.replace("clinician", "patient", 1), tag),
                               link=1), reasons.BAD_TAG, False)
    # flip one tag digit (and fix the CRC, as an attacker would: a CRC is not a key)
    flipped = tag[:-1] + ("0" if tag[-1] != "0" else "1")
    expect_error(d.handle_line(wire.request_line(body, flipped), link=1), reasons.BAD_TAG, False)
    assert pump.boluses == 0 and a.last_counter("clinician") == wire.ZERO
    expect_ok(d.handle_line(wire.request_line(body, tag), link=2))
    assert pump.boluses == 1


def test_a_copied_tag_never_gets_a_tagged_reply():
    # the pump tags only replies to requests whose own tag verified: an attacker who pairs a
    # genuine tag (and id) with other text must not obtain a tag for a reply to that id
    d, pump, _ = _running()
    s = Signer()
    genuine = s.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000}, req_id="g1")
    parsed = wire.parse_request(genuine)
    forged = wire.request_line(wire.request_body("g1", "clinician", 1, "stop", {}), parsed[5])
    r = d.handle_line(forged)
    assert reply(r)[3] == reasons.BAD_TAG and reply(r)[5] is None
    nonce_hello = wire.request_line(wire.request_body(
        "g1", None, None, "hello", {"nonce": parsed[5], "role": "clinician"}), None)
    _, _, _, _, hbody, htag = reply(d.handle_line(nonce_hello))
    # the hello's tag covers the hello request, so it is no tag for a reply to the bolus
    assert htag != auth.tag(WIRE["clinician"], auth.reply_input(parsed[6], hbody))
    assert pump.calls == []


def test_wrong_key_and_missing_key():
    d, pump, a = _running()
    s = Signer()
    expect_error(d.handle_line(s.line("start", key=b"\x00" * 32)), reasons.BAD_TAG, False)
    expect_error(d.handle_line(s.line("start", role="clinician", key=WIRE["patient"])),
                 reasons.BAD_TAG, False)
    a.set_key("readonly", None, None)
    expect_error(d.handle_line(s.line("status", role="readonly")), reasons.NO_KEY, False)
    assert d._refusals == {reasons.BAD_TAG: 2, reasons.NO_KEY: 1}
    assert d._refused_roles == {"clinician": 2, "readonly": 1}
    assert pump.calls == []


def test_roles_are_enforced():
    d, pump, _ = _running()
    s = Signer()
    clinician_only = ["stage", "review", "commit", "start", "stop", "suspend", "resume", "prime",
                      "refill", "clinician_bolus", "ack", "set_clock", "stage_chunk"]
    n = 0
    for cmd in clinician_only:
        for role in ("patient", "readonly"):
            n += 1
            r = d.handle_line(s.line(cmd, role=role), link=n)
            assert verified(r, s)[2] == reasons.ROLE_FORBIDDEN
    expect_error(d.handle_line(s.line("patient_bolus", role="readonly")), reasons.ROLE_FORBIDDEN)
    expect_error(d.handle_line(s.line("log", role="patient")), reasons.ROLE_FORBIDDEN)
    assert pump.calls == []
    assert d._refusals == {reasons.ROLE_FORBIDDEN: 28}
    expect_ok(d.handle_line(s.line("status", role="patient"), link=99))
    expect_ok(d.handle_line(s.line("log", role="readonly"), link=99))
    expect_ok(d.handle_line(s.line("patient_bolus", role="clinician"), link=99))
    expect_ok(d.handle_line(s.line("hello", role="readonly"), link=99))


def test_unauthenticated_only_hello():
    d, pump, _ = _running()
    s = Signer()
    for cmd in ["status", "log", "patient_bolus", "clinician_bolus", "start"]:
        expect_error(d.handle_line(s.line(cmd, role=None)), reasons.AUTH_REQUIRED, False)
    assert pump.calls == []
    assert d._refusals == {reasons.AUTH_REQUIRED: 5} and d._refused_roles == {"-": 5}
    expect_ok(d.handle_line(s.line("hello", role=None), link=2))


def test_unknown_role_is_counted():
    d, _, _ = _running()
    line = wire.request_line("@z9 admin 1 start {}", "0" * 32)
    data = expect_error(d.handle_line(line), reasons.UNKNOWN_ROLE, False)
    assert "msg" in data and reply(d.handle_line(line))[1] == "z9"
    assert d._refusals == {reasons.UNKNOWN_ROLE: 2}


def test_refusals_write_nothing_and_are_summarised_at_a_bounded_rate():
    # thousands of refused frames: no event line, no entry for the flash, no `log` entry; one
    # summary per SUMMARY_EVERY_MS of pump time at most
    d, pump, _ = _running()
    s = Signer()
    junk = [s.line("start", key=b"\x01" * 32), s.line("status", role=None),
            "@x - - hello {} - 00000000", wire.request_line("@y admin 1 stop {}", "0" * 32)]
    for i in range(400):
        d.feed((junk[i % 4] + "\n").encode(), link=i % 3)
    assert d.event_lines([]) == [] and d.pop_security_log() == [] and not d.has_pending()
    assert d.refused_total == 400
    d.advance(dispatch.SUMMARY_EVERY_MS - 1)
    assert not d.has_pending()
    d.advance(1)
    sec = d.pop_security_log()
    assert [e["kind"] for e in sec] == ["refusals"] and sec[0]["count"] == 400
    assert sum(sec[0]["reasons"].values()) == 400 and sec[0]["reasons"][reasons.THROTTLED] > 300
    assert sorted(sec[0]["links"]) == ["0", "1", "2"]
    lines = d.event_lines([])
    assert len(lines) == 1 and reply(lines[0])[2]["kind"] == "refusals"
    d.advance(dispatch.SUMMARY_EVERY_MS)       # nothing refused since: no entry
    assert d.pop_security_log() == []
    assert pump.calls == []


def test_throttling_is_per_link_and_skips_the_hmac():
    d, pump, a = _running()
    s = Signer()
    verifies = []
    real_verify = a.verify

    def counting_verify(role, body, tag):
        verifies.append(role)
        return real_verify(role, body, tag)
    a.verify = counting_verify
    for _ in range(dispatch.THROTTLE_AFTER):
        expect_error(d.handle_line(s.line("start", key=b"\x01" * 32), link=7), reasons.BAD_TAG)
    assert len(verifies) == dispatch.THROTTLE_AFTER
    good = s.line("stop", req_id="ok1")
    data = expect_error(d.handle_line(good, link=7), reasons.THROTTLED, False)
    assert data["retry_ms"] == dispatch.THROTTLE_FIRST_MS
    assert reply(d.handle_line(good, link=7))[1] == "ok1"   # its id: the CRC was intact
    assert len(verifies) == dispatch.THROTTLE_AFTER          # throttled: no HMAC computed
    expect_ok(d.handle_line(s.line("status", role="readonly"), link=8))   # other links unaffected
    d.advance(dispatch.THROTTLE_FIRST_MS)
    expect_ok(d.handle_line(good, link=7))
    # a success ends it; refusals again: the wait starts at the first step again
    for _ in range(dispatch.THROTTLE_AFTER):
        d.handle_line(s.line("start", key=b"\x01" * 32), link=7)
    assert expect_error(d.handle_line(good, link=7), reasons.THROTTLED)["retry_ms"] == \
        dispatch.THROTTLE_FIRST_MS
    # refusals going on: the wait doubles up to THROTTLE_MAX_MS
    waits = []
    for _ in range(10):
        d.advance(dispatch.THROTTLE_MAX_MS)
        d.handle_line(s.line("start", key=b"\x01" * 32), link=7)
        waits.append(expect_error(d.handle_line(good, link=7), reasons.THROTTLED)["retry_ms"])
    assert waits[:3] == [2000, 4000, 8000] and waits[-1] == dispatch.THROTTLE_MAX_MS


def test_a_key_holders_refused_commands_are_throttled_too():
    # a stolen handset pressing during the lockout: executed refusals, each one recorded, so
    # they count towards the link's throttle as well
    d, pump, _ = make()          # stopped: the fake pump refuses patient boluses (not_running)
    s = Signer()
    for _ in range(dispatch.THROTTLE_AFTER):
        expect_error(d.handle_line(s.line("patient_bolus", role="patient"), link=3),
                     reasons.NOT_RUNNING, True)
    expect_error(d.handle_line(s.line("patient_bolus", role="patient"), link=3),
                 reasons.THROTTLED, False)
    assert len(pump.calls) == dispatch.THROTTLE_AFTER


def test_locked_pump_serves_only_an_untagged_hello():
    d, pump, a = _running(locked="security record corrupt")
    s = Signer()
    for cmd, role in [("status", "readonly"), ("stop", "clinician"), ("patient_bolus", "patient"),
                      ("status", None), ("hello", "readonly")]:
        data = expect_error(d.handle_line(s.line(cmd, role=role), link=len(s.bodies)),
                            reasons.LOCKED, False)
        assert "re-provision" in data["msg"]
    hello = d.handle_line(s.line("hello", {"nonce": "a" * 32, "role": "clinician"}, role=None))
    kind, _, data, _, _, tag = reply(hello)
    assert kind == "=" and tag is None and data["locked"] == "security record corrupt"
    lines = d.event_lines([{"kind": "x"}])
    assert reply(lines[0])[5] == [None, None, None]      # no key to trust: events untagged too
    assert pump.calls == [] and a.counters() == {"clinician": "0", "patient": "0",
                                                 "readonly": "0"}


def test_counter_persisted_before_execution():
    order = []
    d, pump, a = _running()

    def persist(snap):
        order.append(("persist", snap["ctr"]["clinician"], pump.boluses))
    d.persist = persist
    s = Signer()
    expect_ok(d.handle_line(s.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000})))
    assert order == [("persist", [0, 1], 0)]      # persisted while the bolus had not run yet
    expect_ok(d.handle_line(s.line("status", role="readonly")))
    assert len(order) == 1 and a.dirty        # reads only mark dirty


def test_persist_failure_blocks_execution():
    d, pump, a = _running()

    def broken(snap):
        raise OSError("flash")
    d.persist = broken
    s = Signer()
    line = s.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000})
    r = d.handle_line(line)
    assert verified(r, s)[2] == reasons.STORAGE_ERROR
    assert pump.boluses == 0
    assert d.handle_line(line) == r           # the resend gets the same answer, still no bolus
    assert pump.boluses == 0
    assert a.last_counter("clinician") == (0, 1)   # the counter is burnt, never reusable


def test_pseudo_random_mutations_never_execute():
    # A small deterministic fuzz that also runs under MicroPython (the hypothesis fuzz in
    # tests/host/test_fuzz_dispatch.py is CPython only): flip, drop, insert and truncate bytes of
    # valid signed requests, optionally re-sealing the CRC like an attacker would.
    d, pump, a = _running()
    s = Signer()
    valid = [s.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000}),
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
        if text == valid[n % len(valid)]:
            continue      # a byte replaced by itself: no mutation (hex has one case only)
        out = d.feed(text.encode() + b"\n", link=n)
        assert len(out) == (1 if text.startswith("@") else 0), text
        for r in out:
            assert reply(r)[0] == "!" and reply(r)[5] is None     # refused, untagged
    assert pump.calls == [] and a.counters() == {"clinician": "0", "patient": "0",
                                                 "readonly": "0"}
