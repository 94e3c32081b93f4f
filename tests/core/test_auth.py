# pumpcore.auth: HMAC-SHA256 against RFC 4231, constant-time compare, per-role counters.

from pumpcore import auth, reasons, wire

RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, (b"This is a test using a larger than block-size key and a larger than "
                     b"block-size data. The key needs to be hashed before being used by the "
                     b"HMAC algorithm."),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def test_hmac_rfc4231_vectors():
    for key, msg, expected in RFC4231:
        assert wire.to_hex(auth.hmac_sha256(key, msg)) == expected


def test_truncated_tag_rfc4231_case5():
    # RFC 4231 test case 5: truncation to 128 bits
    assert auth.tag(b"\x0c" * 20, "Test With Truncation") == "a3b6167473100ee06e0c796c2955552b"


def test_equal_ct():
    assert auth.equal_ct("abc", "abc")
    assert not auth.equal_ct("abc", "abd")
    assert not auth.equal_ct("abc", "ab")
    assert auth.equal_ct(b"\x00\x01", b"\x00\x01")
    assert not auth.equal_ct(b"\x00\x01", b"\x01\x01")


def test_the_pads_are_made_once_and_give_rfc_results():
    # one key, many messages: the precomputed pads must not leak state between messages
    mac = auth._Mac(b"\x0b" * 20)
    for _ in range(3):
        assert wire.to_hex(mac.digest(b"Hi There")) == RFC4231[0][2]
        assert wire.to_hex(mac.digest("what")) == wire.to_hex(auth.hmac_sha256(b"\x0b" * 20, b"what"))


def test_wire_key_binds_the_key_id():
    raw = bytes(range(32))
    k1 = auth.wire_key(raw, "1111111111111111")
    assert k1 == auth.hmac_sha256(raw, b"itpump-v2 key 1111111111111111") and len(k1) == 32
    assert auth.wire_key(raw, "1111111111111112") != k1      # same role key, new id: new key


def _auth(roles=("clinician", "patient")):
    keys = {}
    kids = {}
    for i, r in enumerate(roles):
        keys[r] = bytes([i + 1]) * 32
        kids[r] = "%016x" % (i + 1)
    return auth.Auth(keys, kids), keys


def test_check_order_and_counters():
    a, keys = _auth()
    body = "@1 clinician 5 start {}"
    good = auth.tag(keys["clinician"], body)
    c5 = wire.parse_counter("5")
    assert a.check("admin", c5, body, good) == reasons.UNKNOWN_ROLE
    assert a.check("readonly", c5, body, good) == reasons.NO_KEY
    assert a.check("clinician", c5, body, "0" * 32) == reasons.BAD_TAG
    assert a.check("clinician", c5, body + " ", good) == reasons.BAD_TAG
    assert a.check("patient", c5, body, good) == reasons.BAD_TAG   # other role's key
    assert a.check("clinician", c5, body, good.upper()) == reasons.BAD_TAG  # one encoding
    assert a.check("clinician", c5, body, good) == reasons.OK
    assert not a.dirty
    a.accept("clinician", c5)
    assert a.dirty and a.last_counter("clinician") == c5
    assert a.check("clinician", c5, body, good) == reasons.STALE_COUNTER
    assert a.check("clinician", (0, 4), body, good) == reasons.STALE_COUNTER
    a.accept("clinician", (0, 3))   # never moves backwards
    assert a.last_counter("clinician") == c5
    assert a.counters() == {"clinician": "5", "patient": "0", "readonly": "0"}


def test_a_counter_cannot_jump_to_the_end_of_its_space():
    # one authentic frame may move a counter at most 2**24 ahead: burning the 48-bit space
    # takes 2**24 accepted frames, not one
    a, keys = _auth()
    body = "@1 clinician x stop {}"
    tag = auth.tag(keys["clinician"], body)
    assert a.check("clinician", (1, 0), body, tag) == reasons.OK                 # +2**24
    assert a.check("clinician", (1, 1), body, tag) == reasons.COUNTER_JUMP
    assert a.check("clinician", (16777215, 16777215), body, tag) == reasons.COUNTER_JUMP
    a.accept("clinician", (1, 0))
    assert a.check("clinician", (2, 0), body, tag) == reasons.OK
    assert a.check("clinician", (2, 1), body, tag) == reasons.COUNTER_JUMP


def test_counter_high_is_reported_once():
    a, _ = _auth()
    assert not a.accept("clinician", (auth.WARN_HI - 1, 5))
    assert a.accept("clinician", (auth.WARN_HI, 0))
    assert not a.accept("clinician", (auth.WARN_HI, 1))


def test_record_round_trip_and_never_rolls_back():
    a, keys = _auth(("clinician", "patient", "readonly"))
    a.accept("clinician", (3, 9))
    a.next_boot()
    snap = a.snapshot()
    assert snap["v"] == 2 and snap["ctr"]["clinician"] == [3, 9] and snap["boot"] == 1
    assert snap["keys"]["clinician"] == wire.to_hex(keys["clinician"])
    assert snap["kids"] == a.kids() and len(a.kids()) == 3
    b = auth.Auth()
    assert b.restore(snap) == reasons.OK
    assert b.last_counter("clinician") == (3, 9) and b.boot == 1 and b.kids() == a.kids()
    body = "@1 patient 1 status {}"
    assert b.check("patient", (0, 1), body, auth.tag(keys["patient"], body)) == reasons.OK
    older = b.snapshot()
    older["ctr"]["clinician"] = [0, 2]
    assert b.restore(older) == reasons.OK and b.last_counter("clinician") == (3, 9)
    for bad in [None, {}, {"v": 1, "counters": {}},
                dict(snap, ctr={"admin": [0, 1]}), dict(snap, ctr={"patient": [-1, 0]}),
                dict(snap, ctr={"patient": [0, 16777216]}), dict(snap, ctr={"patient": 5}),
                dict(snap, ctr={"patient": [True, 0]}), dict(snap, boot=-1),
                dict(snap, keys={"patient": "zz"}), dict(snap, kids={}),
                dict(snap, keys={"patient": "AB" * 32})]:
        assert b.restore(bad) == reasons.BAD_VALUE, bad
    assert b.last_counter("clinician") == (3, 9)


def test_reply_and_event_tags():
    a, keys = _auth(("clinician", "readonly"))
    req = "@1 clinician 1 stop {}"
    assert a.reply_tag("clinician", req, "=1 {}") == auth.tag(keys["clinician"], req + "\n=1 {}")
    assert a.reply_tag("patient", req, "=1 {}") is None
    tags = a.event_tags("~1 1 {}")
    assert tags == [auth.tag(keys["clinician"], "~1 1 {}"), None,
                    auth.tag(keys["readonly"], "~1 1 {}")]


def test_key_validation():
    a = auth.Auth()
    for bad in [b"short", b"x" * 65, "zz" * 16, "AB" * 16, 12]:
        try:
            a.set_key("clinician", bad, "0" * 16)
            raise AssertionError("bad key accepted")
        except ValueError:
            pass
    for kid in ["0" * 15, "g" * 16, "A" * 16, None]:
        try:
            a.set_key("clinician", b"k" * 32, kid)
            raise AssertionError("bad key id accepted")
        except ValueError:
            pass
    try:
        a.set_key("admin", b"k" * 32, "0" * 16)
        raise AssertionError("unknown role accepted")
    except ValueError:
        pass
    assert not a.has_key("clinician")
    a.set_key("clinician", b"k" * 32, "0" * 16)
    assert a.has_key("clinician")
    a.set_key("clinician", None, None)
    assert not a.has_key("clinician")
