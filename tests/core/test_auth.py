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


def test_check_order_and_counters():
    a = auth.Auth({"clinician": b"k" * 32, "patient": "00" * 32})
    body = "@1 clinician 5 start {}"
    good = auth.tag(b"k" * 32, body)
    assert a.check("admin", 5, body, good) == reasons.UNKNOWN_ROLE
    assert a.check("readonly", 5, body, good) == reasons.NO_KEY
    assert a.check("clinician", 5, body, "0" * 32) == reasons.BAD_TAG
    assert a.check("clinician", 5, body + " ", good) == reasons.BAD_TAG
    assert a.check("patient", 5, body, good) == reasons.BAD_TAG   # other role's key
    assert a.check("clinician", 5, body, good.upper()) == reasons.OK
    assert a.check("clinician", 5, body, good) == reasons.OK
    assert not a.dirty
    a.accept("clinician", 5)
    assert a.dirty and a.last_counter("clinician") == 5
    assert a.check("clinician", 5, body, good) == reasons.STALE_COUNTER
    assert a.check("clinician", 4, body, good) == reasons.STALE_COUNTER
    a.accept("clinician", 3)   # never moves backwards
    assert a.last_counter("clinician") == 5
    assert a.counters() == {"clinician": 5, "patient": 0, "readonly": 0}


def test_snapshot_restore_never_rolls_back():
    a = auth.Auth({"clinician": b"k" * 32})
    a.accept("clinician", 9)
    snap = a.snapshot()
    assert snap == {"counters": {"clinician": 9, "patient": 0, "readonly": 0}}
    b = auth.Auth()
    assert b.restore(snap) == reasons.OK and b.last_counter("clinician") == 9
    assert b.restore({"counters": {"clinician": 2}}) == reasons.OK
    assert b.last_counter("clinician") == 9
    for bad in [None, {}, {"counters": {"admin": 1}}, {"counters": {"patient": -1}},
                {"counters": {"patient": True}}, {"counters": {"patient": "3"}},
                {"counters": {"patient": 2 ** 30}}]:
        assert b.restore(bad) == reasons.BAD_VALUE
    assert b.counters() == {"clinician": 9, "patient": 0, "readonly": 0}


def test_key_validation():
    a = auth.Auth()
    for bad in [b"short", b"x" * 65, "zz" * 16, 12]:
        try:
            a.set_key("clinician", bad) if not isinstance(bad, str) else a.load_keys(
                {"clinician": bad})
            raise AssertionError("bad key accepted")
        except ValueError:
            pass
    try:
        a.set_key("admin", b"k" * 32)
        raise AssertionError("unknown role accepted")
    except ValueError:
        pass
    assert not a.has_key("clinician")
    a.set_key("clinician", b"k" * 32)
    assert a.has_key("clinician")
    a.set_key("clinician", None)
    assert not a.has_key("clinician")
