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
    assert wire.ok_line("7", {"state": "stopped"}) == '=7 {"state":"stopped"} a8c90a1b'
    assert wire.error_line("7", "bad_tag", "tag does not verify") == \
        '!7 bad_tag {"msg":"tag does not verify"} 9bcc807a'
    assert wire.event_line(1, {"kind": "state", "state": "running"}) == \
        '~1 {"kind":"state","state":"running"} f4dd6473'


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
    assert (req_id, role, counter, cmd, args) == ("abc1", "patient", 42, "patient_bolus",
                                                  {"x": "a b"})
    assert tag == "0123456789abcdef0123456789abcdef" and b == body
    r = wire.parse_request("@1 - - hello {} - 9d474dda")
    assert r[1] is None and r[2] is None and r[5] is None and r[3] == "hello"
    # upper-case CRC digits are accepted (people type them)
    assert wire.parse_request("@1 - - hello {} - 9D474DDA")[0] == "1"


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
    _raises(lambda: wire.parse_request(sealed("@9 patient 1073741824 status {} " + "0" * 32)),
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
    assert wire.parse_reply('=7 {"state":"stopped"} a8c90a1b') == ("=", "7", {"state": "stopped"},
                                                                   None)
    k, i, d, r = wire.parse_reply('!7 bad_tag {"msg":"tag does not verify"} 9bcc807a')
    assert (k, i, r, d["msg"]) == ("!", "7", "bad_tag", "tag does not verify")
    assert wire.parse_reply(wire.error_line(None, "bad_crc", "x"))[1] is None
    assert wire.parse_reply('~1 {"kind":"state","state":"running"} f4dd6473')[:2] == ("~", 1)
    for chatter in ["", ">>> ", "MicroPython v1.27", "@1 - - hello {} - 9d474dda"]:
        assert wire.parse_reply(chatter) is None
    try:
        wire.parse_reply('=7 {"state":"stopped"} a8c90a1c')
        raise AssertionError("corrupted reply accepted")
    except wire.WireError as e:
        assert e.reason == reasons.BAD_CRC


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
    assert wire.from_hex("00FF10") == b"\x00\xff\x10"
    assert wire.from_hex("0") is None and wire.from_hex("zz") is None
