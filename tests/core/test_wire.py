# pumpcore.wire: CRC golden vectors, value codec (strict JSON subset), framing. CPython + MicroPython.

from pumpcore import reasons, wire


def _raises(fn, reason):
    try:
        fn()
    except wire.WireError as e:
        assert e.reason == reason, "expected %s, got %s (%s)" % (reason, e.reason, e.msg)
        return e
    raise AssertionError("no WireError(%s)" % reason)


def test_crc32_golden_vectors():
    assert wire.crc32_hex(b"") == "00000000"
    assert wire.crc32_hex(b"a") == "e8b7be43"
    assert wire.crc32_hex(b"123456789") == "cbf43926"
    assert wire.crc32_hex("The quick brown fox jumps over the lazy dog") == "414fa339"
    assert wire.crc32_hex(bytes(range(256))) == "29058c73"


def test_crc32_table_fallback_gives_the_same_digits():
    # the portable tables (ports without binascii.crc32) against the golden vectors and the
    # binascii path over every byte value in every position of a short line
    assert wire.crc32_hex_tables(b"") == "00000000"
    assert wire.crc32_hex_tables(b"123456789") == "cbf43926"
    assert wire.crc32_hex_tables(bytes(range(256))) == "29058c73"
    for b in range(256):
        data = bytes([b, 255 - b, b ^ 0x5A, 0x20])
        assert wire.crc32_hex_tables(data) == wire.crc32_hex(data)


def test_golden_lines():
    assert wire.request_line(wire.request_body("1", None, None, "hello", {}), None) == \
        "@1 - - hello {} - 9d474dda"
    tag = "0123456789abcdef0123456789abcdef"
    assert wire.tagged_line(wire.ok_body("7", {"state": "stopped"}), tag) == \
        '=7 {"state":"stopped"} 0123456789abcdef0123456789abcdef c9fdbcbc'
    assert wire.tagged_line(wire.error_body("7", "bad_tag", "tag does not verify"), None) == \
        '!7 bad_tag {"msg":"tag does not verify"} - a9eae3b8'
    body = wire.event_body(3, 1, {"kind": "state", "state": "running"})
    assert wire.event_line(body, ["0" * 32, None, "f" * 32]) == (
        '~3 1 {"kind":"state","state":"running"} ' + "0" * 32 + " - " + "f" * 32 + " d1cef528")


def test_counters_are_48_bit_in_two_small_parts():
    # every value the pump holds stays below 2**28 (a small int on the Pico)
    cases = [("1", (0, 1)), ("16777215", (0, 16777215)), ("16777216", (1, 0)),
             ("1073741823", (63, 16777215)), ("1073741824", (64, 0)),
             ("123456789012345", (7358598, 909177)),
             ("281474976710655", (16777215, 16777215))]
    for text, parts in cases:
        assert wire.parse_counter(text) == parts, text
        assert wire.format_counter(parts) == text
        assert parts[0] < wire.PART and parts[1] < wire.PART
    assert wire.format_counter(wire.ZERO) == "0"
    for bad in ["0", "01", "281474976710656", "999999999999999", "1000000000000000", "-1",
                "1a", "", "1 "]:
        assert wire.parse_counter(bad) is None, bad
    assert wire.counter_after((1, 0), (0, 16777215)) and not wire.counter_after((0, 5), (0, 5))
    assert wire.counter_within((1, 5), (0, 5), 1) and not wire.counter_within((1, 6), (0, 5), 1)
    assert wire.counter_within((1, 0), (0, 0), 1) and not wire.counter_within((2, 0), (0, 5), 1)


def test_encode_is_canonical():
    v = {"b": [1, -2, True, False, None], "a": {"z": "q\"uo\\te", "y": []}}
    assert wire.encode(v) == '{"a":{"y":[],"z":"q\\"uo\\\\te"},"b":[1,-2,true,false,null]}'
    assert wire.decode(wire.encode(v)) == v
    assert wire.encode((1, 2)) == "[1,2]"


def test_encode_refuses_floats_and_junk():
    _raises(lambda: wire.encode(1.5), reasons.BAD_VALUE)
    _raises(lambda: wire.encode({"a": "tab\there"}), reasons.BAD_VALUE)
    _raises(lambda: wire.encode({1: 2}), reasons.BAD_VALUE)
    _raises(lambda: wire.encode(10 ** 15), reasons.BAD_VALUE)
    deep = []
    for _ in range(12):
        deep = [deep]
    _raises(lambda: wire.encode(deep), reasons.BAD_VALUE)


def test_decode_strictness():
    bad = ["", " 1", "1 ", "01", "-0", "-", "1.0", "1e3", "+1", "[1,]", "[,1]", "{,}",
           '{"a":1,}', '{"a" :1}', '{"a":1,"a":2}', '{a:1}', '"abc', '"a\\nb"', '"a\\u0041"',
           "tru", "nul", "[1 2]", "{}}", "[[[[[[[[[[1]]]]]]]]]]", "1234567890123456", '"\x7f"',
           "'a'", "NaN", "Infinity"]
    for text in bad:
        _raises(lambda t=text: wire.decode(t), reasons.BAD_ARGS)
    assert wire.decode("123456789012345") == 123456789012345
    assert wire.decode("-5") == -5
    assert wire.decode('"a b\\"c"') == 'a b"c'
    assert wire.decode("[[[[[[[[1]]]]]]]]") == [[[[[[[[1]]]]]]]]


def test_parse_request_roundtrip():
    body = wire.request_body("abc1", "patient", 42, "patient_bolus", {"x": "a b"})
    line = wire.request_line(body, "0123456789abcdef0123456789abcdef")
    req_id, role, counter, cmd, args, tag, b = wire.parse_request(line)
    assert (req_id, role, counter, cmd, args) == ("abc1", "patient", (0, 42), "patient_bolus",
                                                  {"x": "a b"})
    assert tag == "0123456789abcdef0123456789abcdef" and b == body
    r = wire.parse_request("@1 - - hello {} - 9d474dda")
    assert r[1] is None and r[2] is None and r[5] is None and r[3] == "hello"
    big = wire.request_body("b", "clinician", (16777215, 16777215), "stop", {})
    assert big == "@b clinician 281474976710655 stop {}"
    assert wire.parse_request(wire.request_line(big, "0" * 32))[2] == (16777215, 16777215)


def test_hex_is_lower_case_only():
    # one encoding per line: an upper-case tag or CRC is a different, invalid line
    _raises(lambda: wire.parse_request("@1 - - hello {} - 9D474DDA"), reasons.BAD_CRC)
    body = wire.request_body("1", "patient", 1, "status", {})
    tag = "0123456789abcdef0123456789abcdef"
    assert wire.parse_request(wire.request_line(body, tag))[5] == tag
    _raises(lambda: wire.parse_request(wire.request_line(body, tag.upper())), reasons.BAD_FRAME)
    line = wire.tagged_line(wire.ok_body("7", {}), tag)
    _raises(lambda: wire.parse_reply(line[:-8] + line[-8:].upper()), reasons.BAD_CRC)
    _raises(lambda: wire.parse_reply(wire.tagged_line(wire.ok_body("7", {}), tag.upper())),
            reasons.BAD_FRAME)


def test_parse_request_errors_and_id_recovery():
    e = _raises(lambda: wire.parse_request("@1 - - hello {} - 9d474ddb"), reasons.BAD_CRC)
    assert e.req_id is None   # never trust the id of a garbled line
    _raises(lambda: wire.parse_request("@1 - - hello {} -"), reasons.BAD_CRC)
    _raises(lambda: wire.parse_request("@1 - - hello {} - 9d47"), reasons.BAD_CRC)
    _raises(lambda: wire.parse_request("x"), reasons.BAD_FRAME)
    _raises(lambda: wire.parse_request("@" + "a" * 3000), reasons.LINE_TOO_LONG)
    _raises(lambda: wire.parse_request("@1 - - hel\x03lo {} - 00000000"), reasons.BAD_CHAR)

    def sealed(text):
        return wire.seal(text)
    _raises(lambda: wire.parse_request(sealed("@ - - hello {} -")), reasons.BAD_FRAME)
    _raises(lambda: wire.parse_request(sealed("@a_b - - hello {} -")), reasons.BAD_FRAME)
    e = _raises(lambda: wire.parse_request(sealed("@9 - - hello -")), reasons.BAD_FRAME)
    assert e.req_id == "9"
    e = _raises(lambda: wire.parse_request(sealed("@9 - - Hello {} -")), reasons.BAD_FRAME)
    assert e.req_id == "9"
    e = _raises(lambda: wire.parse_request(sealed("@9 admin 1 status {} " + "0" * 32)),
                reasons.UNKNOWN_ROLE)
    assert e.req_id == "9"
    _raises(lambda: wire.parse_request(sealed("@9 patient 0 status {} " + "0" * 32)),
            reasons.BAD_FRAME)
    _raises(lambda: wire.parse_request(sealed("@9 patient 01 status {} " + "0" * 32)),
            reasons.BAD_FRAME)
    _raises(lambda: wire.parse_request(sealed("@9 patient 281474976710656 status {} " + "0" * 32)),
            reasons.BAD_FRAME)
    _raises(lambda: wire.parse_request(sealed("@9 patient 1 status {} " + "0" * 31)),
            reasons.BAD_FRAME)
    _raises(lambda: wire.parse_request(sealed("@9 patient 1 status {} " + "g" * 32)),
            reasons.BAD_FRAME)
    _raises(lambda: wire.parse_request(sealed("@9 patient - status {} -")), reasons.BAD_FRAME)
    e = _raises(lambda: wire.parse_request(sealed("@9 - - hello [] -")), reasons.BAD_ARGS)
    assert e.req_id == "9"
    _raises(lambda: wire.parse_request(sealed("@9 - - hello {1} -")), reasons.BAD_ARGS)


def test_parse_reply_kinds():
    tag = "0123456789abcdef0123456789abcdef"
    line = '=7 {"state":"stopped"} 0123456789abcdef0123456789abcdef c9fdbcbc'
    assert wire.parse_reply(line) == ("=", "7", {"state": "stopped"}, None,
                                      '=7 {"state":"stopped"}', tag)
    k, i, d, r, body, t = wire.parse_reply('!7 bad_tag {"msg":"tag does not verify"} - a9eae3b8')
    assert (k, i, r, d["msg"], t) == ("!", "7", "bad_tag", "tag does not verify", None)
    assert body == '!7 bad_tag {"msg":"tag does not verify"}'
    assert wire.parse_reply(wire.tagged_line(wire.error_body(None, "bad_crc", "x"), None))[1] \
        is None
    ev = wire.parse_reply(wire.event_line(wire.event_body(3, 9, {"k": 1}), [tag, None, tag]))
    assert ev == ("~", (3, 9), {"k": 1}, None, '~3 9 {"k":1}', [tag, None, tag])
    for chatter in ["", ">>> ", "MicroPython v1.27", "@1 - - hello {} - 9d474dda"]:
        assert wire.parse_reply(chatter) is None
    bad = ['=7 {"state":"stopped"} 0123456789abcdef0123456789abcdef c9fdbcbd',   # CRC
           wire.seal('=7 {"state":"stopped"}'),                                # no tag field
           wire.seal('=7 {"state":"stopped"} 0123'),                           # short tag
           wire.seal('~3 0 {} - - -'), wire.seal('~3 {} - - -'),               # bad sequence
           wire.seal('~01 1 {} - - -'), wire.seal('=7 [] -'), wire.seal('=a_b {} -')]
    for line in bad:
        try:
            wire.parse_reply(line)
            raise AssertionError("bad reply accepted: " + line)
        except wire.WireError:
            pass


def test_splitter_chunks_crlf_and_resync():
    s = wire.LineSplitter(max_line=20)
    out = []
    data = b"abc\r\ndef\n" + b"x" * 30 + b"\nok\n\x03bad\n@\xffz\n"
    for i in range(len(data)):
        out.extend(s.feed(data[i:i + 1]))
    assert out[0] == ("ok", "abc")
    assert out[1] == ("ok", "def")
    assert out[2][0] == reasons.LINE_TOO_LONG and out[2][1].startswith("xxxx")
    assert out[3] == ("ok", "ok")
    assert out[4][0] == reasons.BAD_CHAR and out[4][1] == "?bad"
    assert out[5] == (reasons.BAD_CHAR, "@?z")
    assert len(out) == 6
    # exactly max_line bytes is fine, also with CR LF
    s = wire.LineSplitter(max_line=5)
    assert s.feed(b"12345\r\n12345\n123456\n") == [("ok", "12345"), ("ok", "12345"),
                                                   (reasons.LINE_TOO_LONG, "123456")]


def test_hex_helpers():
    assert wire.to_hex(b"\x00\xff\x10") == "00ff10"
    assert wire.from_hex("00ff10") == b"\x00\xff\x10"
    assert wire.from_hex("00FF10") is None
    assert wire.from_hex("0") is None and wire.from_hex("zz") is None
