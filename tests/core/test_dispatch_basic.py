# pumpcore.dispatch: commands reach the Pump facade, one reply per request, events, log, chunks.

from proto_helpers import (
    INFO,
    KIDS,
    WIRE,
    Signer,
    expect_error,
    expect_ok,
    make,
    reply,
    verified,
)
from pumpcore import auth, commands, reasons, wire

RX = {"reservoir": {"capacity_nl": 20000000, "fill_nl": 18000000, "low_alert_nl": 2000000,
                    "empty_nl": 500000}, "catheter": {"volume_nl": 150000},
      "drugs": [{"name": "morphine", "conc_ug_per_ml": 10000, "hard_ng_per_day": None,
                 "soft_ng_per_day": None}],
      "basal": {"steps": [[0, 20000], [480, 30000]], "days": None}, "periodic": [],
      "patient": None}


def test_hello_unauthenticated():
    d, pump, a = make()
    a.accept("patient", (0, 7))
    r = d.handle_line("@1 - - hello {} - 9d474dda")
    assert reply(r)[5] is None            # nothing to bind a tag to: untagged
    data = expect_ok(r)
    assert data == {"protocol": 2, "max_line": wire.MAX_LINE,
                    "firmware": INFO["firmware"], "device_id": INFO["device_id"],
                    "board": INFO["board"], "locked": None, "boot": 0, "event_seq": 0,
                    "counters": {"clinician": "0", "patient": "7", "readonly": "0"},
                    "kids": KIDS}
    assert pump.calls == []


def test_hello_with_nonce_is_tagged_with_the_named_role():
    d, _, a = make()
    s = Signer()
    nonce = "0123456789abcdef" * 2
    line = s.line("hello", {"nonce": nonce, "role": "patient"}, role=None)
    kind, data, _ = verified(d.handle_line(line), s, role="patient")
    assert kind == "=" and data["kids"] == KIDS
    for bad in [{"nonce": nonce}, {"nonce": nonce.upper(), "role": "patient"},
                {"nonce": nonce[:-1], "role": "patient"}, {"nonce": nonce, "role": "admin"},
                {"nonce": nonce, "role": "patient", "x": 1}]:
        expect_error(d.handle_line(s.line("hello", bad, role=None)), reasons.BAD_ARGS, False)
    a.set_key("readonly", None, None)
    expect_error(d.handle_line(s.line("hello", {"nonce": nonce, "role": "readonly"}, role=None)),
                 reasons.NO_KEY, False)


def test_every_command_reaches_the_pump():
    d, pump, _ = make()
    s = Signer()
    expect_ok(d.handle_line(s.line("set_clock", {"day": 9800, "ms_of_day": 1000})))
    assert pump.clock == (9800, 1000)
    review = expect_ok(d.handle_line(s.line("stage", {"rx": RX})))
    assert pump.staged == RX
    assert expect_ok(d.handle_line(s.line("review"))) == {"checksum": review["checksum"]}
    expect_error(d.handle_line(s.line("commit", {"checksum": "nope"})), reasons.CHECKSUM_MISMATCH)
    expect_ok(d.handle_line(s.line("commit", {"checksum": review["checksum"],
                                               "confirm_soft": True, "bridge": False})))
    assert pump.calls[-1] == ("commit", review["checksum"], True, False)
    expect_ok(d.handle_line(s.line("prime", {"volume_nl": 150000})))
    expect_ok(d.handle_line(s.line("start")))
    expect_ok(d.handle_line(s.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000})))
    expect_ok(d.handle_line(s.line("patient_bolus", role="patient")))
    expect_ok(d.handle_line(s.line("suspend", {"minutes": 30})))
    expect_ok(d.handle_line(s.line("resume")))
    expect_ok(d.handle_line(s.line("refill", {"fill_nl": 18000000, "new_admixture": True})))
    expect_ok(d.handle_line(s.line("ack", {"alarm": "low_reservoir"})))
    expect_ok(d.handle_line(s.line("ack")))
    expect_ok(d.handle_line(s.line("silence", role="patient")))
    expect_ok(d.handle_line(s.line("stop")))
    st = expect_ok(d.handle_line(s.line("status", role="readonly")))
    assert st == {"state": "stopped", "boluses": 1, "patient_boluses": 1}
    assert expect_ok(d.handle_line(s.line("show_program", role="readonly")))["rx"] == RX
    assert expect_ok(d.handle_line(s.line("library_show", role="readonly")))["name"] == "fake"
    lr = expect_ok(d.handle_line(s.line("library_stage", {"library": {"name": "x"}})))
    expect_ok(d.handle_line(s.line("library_commit", {"checksum": lr["checksum"]})))
    names = [c[0] for c in pump.calls]
    assert names == ["set_clock", "stage", "review", "commit", "commit", "prime", "start",
                     "clinician_bolus", "patient_bolus", "suspend", "resume", "refill", "ack",
                     "ack", "silence", "stop", "status", "show_program", "library_show",
                     "library_stage", "library_commit"]
    assert ("refill", 18000000, True) in pump.calls and ("ack", None) in pump.calls
    # every row of the command table was exercised (hello and log have their own tests)
    exercised = set(names) | {"hello", "log", "log_stored", "stage_chunk", "library_chunk"}
    assert set(commands.names()) == exercised


def test_log_stored_pages_through_the_shells_reader_for_readers_only():
    d, _, _ = make()
    s = Signer()
    page = expect_ok(d.handle_line(s.line("log_stored", role="readonly")))
    assert page == {"entries": [], "last": [0, 0], "more": False}     # no reader: nothing stored
    calls = []

    def reader(seq, skip, limit, budget):
        calls.append((seq, skip, limit, budget))
        return [[[seq + 1, 0], {"kind": "boot"}]], [seq + 1, 0], True

    d.stored_log = reader
    page = expect_ok(d.handle_line(s.line("log_stored", {"seq": 7, "skip": 2, "limit": 5},
                                          role="readonly")))
    assert page == {"entries": [[[8, 0], {"kind": "boot"}]], "last": [8, 0], "more": True}
    assert calls == [(7, 2, 5, 1700)]
    expect_error(d.handle_line(s.line("log_stored", role="patient")), reasons.ROLE_FORBIDDEN)
    expect_error(d.handle_line(s.line("log_stored", {"seq": -1}, role="readonly")),
                 reasons.BAD_VALUE)
    assert len(calls) == 1                                   # refusals never reach the reader


def test_every_reply_to_an_authentic_request_is_tagged_and_bound_to_it():
    d, pump, _ = make()
    s = Signer()
    pump.committed = {"x": 1}
    for cmd, args, role in [("status", None, "readonly"), ("start", None, "clinician"),
                            ("suspend", {"minutes": 1001}, "clinician"),    # facade refusal
                            ("suspend", {"minutes": "x"}, "clinician"),     # bad_args
                            ("start", None, "patient"),                     # role_forbidden
                            ("fly", None, "readonly")]:                     # unknown command
        line = s.line(cmd, args, role=role)
        verified(d.handle_line(line), s)
    # the same reply presented for another request does not verify
    line = s.line("status", role="readonly")
    r = d.handle_line(line)
    other = s.line("status", role="readonly", req_id=reply(r)[1], counter=99)
    s.bodies[reply(r)[1]] = ("readonly", wire.parse_request(other)[6])
    try:
        verified(r, s)
        raise AssertionError("a reply verified for a request it does not answer")
    except AssertionError as e:
        assert "does not verify" in str(e)



def test_refusal_carries_reason_and_data():
    d, pump, _ = make()
    s = Signer()
    data = expect_error(d.handle_line(s.line("stage", {"rx": {"basal": {}}})), reasons.INVALID)
    assert data["problems"] == [[reasons.INVALID, "reservoir"]] and data["msg"] == "invalid"
    data = expect_error(d.handle_line(s.line("suspend", {"minutes": 1001})), reasons.BAD_VALUE)
    assert data["msg"] == "minutes must be <= 1000"
    expect_error(d.handle_line(s.line("patient_bolus", role="patient")), reasons.NOT_RUNNING)
    assert pump.patient_boluses == 0


def test_argument_checking():
    d, pump, _ = make()
    s = Signer()
    bad = [("suspend", {}), ("suspend", {"minutes": "5"}), ("suspend", {"minutes": True}),
           ("suspend", {"minutes": 5, "extra": 1}), ("clinician_bolus", {"volume_nl": 1}),
           ("commit", {"checksum": 5}), ("ack", {"alarm": 3}), ("stage", {"rx": []}),
           ("refill", {"fill_nl": 1, "new_admixture": 1}), ("start", {"now": True})]
    # (each refusal on its own link: eight in a row on one link throttle it)
    for i, (cmd, args) in enumerate(bad):
        expect_error(d.handle_line(s.line(cmd, args), link=i), reasons.BAD_ARGS, True)
    # bounds of the command table, in wire units, named in the message
    out_of_bounds = [("suspend", {"minutes": 1441}), ("suspend", {"minutes": 0}),
                     ("clinician_bolus", {"volume_nl": 1000001, "duration_ms": 60000}),
                     ("clinician_bolus", {"volume_nl": 1000, "duration_ms": 59999}),
                     ("set_clock", {"day": 0, "ms_of_day": 86400000}),
                     ("refill", {"fill_nl": -1}), ("ack", {"alarm": ""}),
                     ("stage_chunk", {"index": 16, "count": 16, "text": ""})]
    for i, (cmd, args) in enumerate(out_of_bounds):
        data = expect_error(d.handle_line(s.line(cmd, args), link=100 + i), reasons.BAD_VALUE,
                            True)
        named = [k for k in args if data["msg"].startswith(k + " must be")]
        assert len(named) == 1, data
    expect_error(d.handle_line(s.line("fly")), reasons.UNKNOWN_COMMAND, True)
    expect_error(d.handle_line(s.line("bolus", {"volume_nl": 1, "duration_ms": 60000})),
                 reasons.UNKNOWN_COMMAND)     # one name per command (v1's `bolus` is gone)
    assert pump.calls == []


def test_feed_chunks_and_resync():
    d, pump, _ = make()
    s = Signer()
    stream = (">>> chatter\r\n\n" + s.line("start") + "\r\n" + "@" + "x" * 3000 + "\n"
              + s.line("status", role="readonly") + "\n").encode()
    stream += b"@1 - \x03 hello\n" + s.line("stop").encode() + b"\n"
    out = []
    for i in range(0, len(stream), 7):
        out.extend(d.feed(stream[i:i + 7]))
    assert len(out) == 5
    expect_error(out[0], reasons.NO_PROGRAM, True)
    assert expect_error(out[1], reasons.LINE_TOO_LONG) is not None and reply(out[1])[1] is None
    expect_ok(out[2])
    expect_error(out[3], reasons.BAD_CHAR)
    expect_ok(out[4])
    assert [c[0] for c in pump.calls] == ["start", "status", "stop"]


def test_garbled_lines_get_dash_id_and_change_nothing():
    d, pump, a = make()
    s = Signer()
    line = s.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000})
    # rp2 drops bytes during flash writes: any dropped byte breaks the CRC
    for i in range(1, len(line)):
        dropped = line[:i] + line[i + 1:]
        r = d.handle_line(dropped, link=i)   # one link each: no throttling in this test
        kind, rid, _, reason, _, _ = reply(r)
        assert kind == "!", (i, r)
        if reason == reasons.BAD_CRC:
            assert rid is None
    assert pump.boluses == 0 and a.last_counter("clinician") == wire.ZERO
    expect_ok(d.handle_line(line))     # the intact resend works
    assert pump.boluses == 1


def test_events_and_log():
    d, pump, _ = make()
    s = Signer()
    expect_ok(d.handle_line(s.line("stage", {"rx": RX})))
    pump.events.append({"kind": "alarm", "code": "occlusion"})
    pump.events.append(("tuple", 1))
    lines = d.event_lines()
    kinds = []
    seqs = []
    for ln in lines:
        k, pos, data, _, body, tags = reply(ln)
        assert k == "~" and pos[0] == d.auth.boot
        for i in range(len(wire.ROLES)):                # every role can check every event
            assert tags[i] == auth.tag(WIRE[wire.ROLES[i]], body)
        seqs.append(pos[1])
        kinds.append(data.get("kind") or data.get("event")[0])
    assert kinds == ["command", "alarm", "tuple"] and seqs == [1, 2, 3]
    assert d.event_lines([]) == []
    assert len(d.event_lines([{"kind": "x", "bad": 1.5}])) == 1   # unencodable -> placeholder
    log = expect_ok(d.handle_line(s.line("log", {"since": 1}, role="readonly")))
    assert [e[0] for e in log["entries"]] == [2, 3, 4] and log["last"] == 4 and not log["more"]
    assert log["entries"][0][1] == {"kind": "alarm", "code": "occlusion"}
    log = expect_ok(d.handle_line(s.line("log", {"limit": 1})))
    assert log["entries"][0][0] == 1 and log["more"]
    sec = d.pop_security_log()
    assert sec[0]["kind"] == "command" and sec[0]["cmd"] == "stage"
    assert d.pop_security_log() == []


def test_log_reply_fits_one_line():
    d, _, _ = make()
    s = Signer()
    for i in range(100):
        d.event_lines([{"kind": "note", "text": "x" * 200, "i": i}])
    since = 0
    seen = 0
    for _ in range(100):
        r = d.handle_line(s.line("log", {"since": since}, role="readonly"))
        assert len(r) <= wire.MAX_LINE
        data = expect_ok(r)
        seen += len(data["entries"])
        since = data["last"]
        if not data["more"]:
            break
    assert seen == 64  # the RAM ring keeps the last LOG_SIZE entries


def test_chunked_stage_of_a_big_program():
    d, pump, _ = make()
    s = Signer()
    steps = [[i * 110, 1000000 + i * 1111] for i in range(13)]
    rx = dict(RX)
    rx["drugs"] = [{"name": "drug%d" % i, "conc_ug_per_ml": 10000, "hard_ng_per_day": 20000000,
                    "soft_ng_per_day": 10000000} for i in range(4)]
    rx["basal"] = {"steps": steps, "days": {}}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        rx["basal"]["days"][day] = steps
    whole = s.line("stage", {"rx": rx})
    assert len(whole) > wire.MAX_LINE       # too big for one line ...
    expect_error(d.handle_line(whole), reasons.LINE_TOO_LONG)
    text = wire.encode(rx)
    n = 3
    size = len(text) // n + 1
    parts = [text[i * size:(i + 1) * size] for i in range(n)]
    # out of order is refused and discards the assembly
    expect_error(d.handle_line(s.line("stage_chunk", {"index": 1, "count": n, "text": parts[1]})),
                 reasons.BAD_ARGS)
    for i in range(n):
        ln = s.line("stage_chunk", {"index": i, "count": n, "text": parts[i]})
        assert len(ln) <= wire.MAX_LINE
        data = expect_ok(d.handle_line(ln))
        if i < n - 1:
            assert data == {"received": i + 1, "count": n}
    assert pump.staged == rx
    expect_error(d.handle_line(s.line("stage_chunk", {"index": 0, "count": 17, "text": ""})),
                 reasons.BAD_VALUE)
    expect_ok(d.handle_line(s.line("stage_chunk", {"index": 0, "count": 2, "text": "{"})))
    expect_error(d.handle_line(s.line("stage_chunk", {"index": 1, "count": 2, "text": "1}"})),
                 reasons.BAD_ARGS)


def test_pump_exception_becomes_internal_error():
    d, pump, _ = make()
    s = Signer()

    def boom():
        raise RuntimeError("x")
    pump.start = boom
    expect_error(d.handle_line(s.line("start")), reasons.INTERNAL_ERROR)
    pump.status = lambda: {"f": 1.5}
    expect_error(d.handle_line(s.line("status", role="readonly")), reasons.INTERNAL_ERROR)
    pump.pop_events = boom
    lines = d.event_lines()       # pop_events raising: own entries still come out, no raise
    assert len(lines) == 1 and reply(lines[0])[2]["result"] == reasons.INTERNAL_ERROR


def test_long_review_and_problem_lists_are_paged():
    d, pump, _ = make()
    s = Signer()
    changes = [["basal.days.mon[%d].rate" % i, None, 1000000 + i] for i in range(200)]
    pump.review = lambda: (reasons.OK, {"checksum": "c1", "changes": changes})
    first = d.handle_line(s.line("review"))
    assert len(first) <= wire.MAX_LINE
    data = expect_ok(first)
    assert data["changes_total"] == 200 and data["changes_offset"] == 0
    got = list(data["changes"])
    assert 0 < len(got) < 200
    while len(got) < 200:
        page = expect_ok(d.handle_line(s.line("review", {"changes_offset": len(got)})))
        assert page["changes_offset"] == len(got) and page["checksum"] == "c1"
        assert page["changes"]
        got.extend(page["changes"])
    assert got == changes
    expect_error(d.handle_line(s.line("review", {"changes_offset": -1})), reasons.BAD_VALUE)
    problems = [[reasons.RATE_RANGE, "basal.days.tue[%d].rate" % i] for i in range(300)]
    pump.stage = lambda rx: (reasons.RATE_RANGE, {"problems": problems})
    r = d.handle_line(s.line("stage", {"rx": {}}))
    assert len(r) <= wire.MAX_LINE
    data = expect_error(r, reasons.RATE_RANGE)
    assert data["problems_total"] == 300 and data["problems"] == problems[:len(data["problems"])]
