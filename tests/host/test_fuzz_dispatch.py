"""Fuzzing the protocol v2 parsers and the device-side dispatcher (hypothesis, CPython).

ITPUMP_FUZZ_EXAMPLES is the total number of generated cases, split over the properties below by
fixed shares (default 104,000: `make test`; `make fuzz` sets 1,000,000). The cheap byte-level
properties get most of them; the real-pump property, whose inputs are costly to generate, 4 %.
Derandomized, no example database, so a run is reproducible on a fresh clone.

Properties: no exception ever escapes; every request line gets exactly one well-formed reply;
invalid input (garbage, mutated/forged requests) changes nothing: the pump is never called, no
counter moves, and no reply to it carries a tag; a reply to an authentic request always verifies;
a mutated reply never verifies on the host. Every case arrives on a link of its own, so the
per-link throttle (which answers without parsing) does not hide the parser from the fuzz.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pumpcore import auth, commands, reasons, wire
from pumpcore.dispatch import Dispatcher
from pumpcore.pump import Pump
from pumphost import signing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from library_helpers import core_library
from proto_helpers import INFO, KIDS, WIRE, FakePump, Signer

TOTAL = int(os.environ.get("ITPUMP_FUZZ_EXAMPLES", "104000"))
SHARES = {"garbage": 34, "mutated": 34, "real": 4, "decoder": 18, "replies": 10}  # % of TOTAL
ZERO = {"clinician": "0", "patient": "0", "readonly": "0"}
_LINK = itertools.count(1)


def fuzz(name: str) -> settings:
    return settings(max_examples=max(1, TOTAL * SHARES[name] // 100), derandomize=True,
                    database=None, deadline=None, suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate, Phase.shrink], print_blob=True)


def _fresh() -> tuple[Dispatcher, FakePump, auth.Auth]:
    pump = FakePump()
    a = auth.Auth(WIRE, KIDS)
    return Dispatcher(pump, a, INFO), pump, a


def _check_reply(line: str) -> tuple[str, Any, dict[str, Any], str | None]:
    assert len(line) <= wire.MAX_LINE and wire.is_printable(line)
    parsed = wire.parse_reply(line)
    assert parsed is not None and parsed[0] in "=!", line
    return parsed


# One shared dispatcher per property; its state must stay untouched by invalid input.
_D, _PUMP, _AUTH = _fresh()
_SIGNER = Signer()
_VALID = [
    _SIGNER.line("clinician_bolus", {"volume_nl": 5000, "duration_ms": 60000}),
    _SIGNER.line("patient_bolus", role="patient"),
    _SIGNER.line("status", role="readonly"),
    _SIGNER.line("stage", {"rx": {"reservoir": {"fill_nl": 1}, "drugs": [{"name": "x y"}]}}),
    _SIGNER.line("ack", {"alarm": None}),
    _SIGNER.line("suspend", {"minutes": 30}),
]


@fuzz("garbage")
@given(data=st.binary(max_size=120), cut_bytes=st.binary(max_size=6))
def test_garbage_bytes_change_nothing(data: bytes, cut_bytes: bytes) -> None:
    # data arrives in chunks cut at the positions given by cut_bytes (arbitrary chunking)
    out: list[str] = []
    link = next(_LINK)
    points = sorted({0, len(data), *[c for c in cut_bytes if c <= len(data)]})
    for a, b in itertools.pairwise(points):
        out.extend(_D.feed(data[a:b], link))
    out.extend(_D.feed(b"\n", link))  # terminate whatever is pending
    for line in out:
        kind, _, _, reason, _, tag = _check_reply(line)
        assert (kind == "!" and tag is None) or (kind == "=" and reason is None)
    assert _PUMP.calls == []
    assert _AUTH.counters() == ZERO


def _mutate(line: str, ops: list[tuple[int, int, int]]) -> str:
    b = bytearray(line.encode())
    for op, pos, val in ops:
        if not b:
            break
        i = pos % len(b)
        if op == 0:
            b[i] = val
        elif op == 1:
            del b[i]
        elif op == 2:
            b.insert(i, val)
        elif op == 3:
            b[i:i] = b[i:i + 1 + val % 8]
        else:
            del b[i:]
    return b.decode("latin-1")


def _same_request(line: str, original: str) -> bool:
    try:
        a = wire.parse_request(line)
        b = wire.parse_request(original)
    except wire.WireError:
        return False
    return a[6] == b[6] and a[5] == b[5]  # same authenticated body and (normalised) tag


@fuzz("mutated")
@given(program=st.binary(min_size=5, max_size=17))
def test_mutated_requests_are_refused(program: bytes) -> None:
    # program: byte 0 picks the valid request and whether the CRC is re-sealed, then up to four
    # (op, position, value) mutations of 4 bytes each
    which = program[0] % len(_VALID)
    reseal = program[0] >= 128
    ops = [(program[i] % 5, program[i + 1] * 256 + program[i + 2], program[i + 3])
           for i in range(1, len(program) - 3, 4)]
    global _D, _PUMP, _AUTH
    original = _VALID[which]
    line = _mutate(original, ops)
    if reseal:  # an attacker fixes the CRC: a CRC is no protection, the HMAC must be
        sp = line.rfind(" ")
        if sp > 0 and wire.is_printable(line):
            line = wire.seal(line[:sp])
    out = _D.feed(line.encode("latin-1") + b"\n", next(_LINK))
    assert len(out) <= 1
    if line.startswith("@"):
        assert len(out) == 1
    if _PUMP.calls or _AUTH.counters() != ZERO:
        # only acceptable when the mutation kept the very same authenticated request (e.g.
        # upper-case hex digits); start over with a fresh dispatcher for the next case
        assert _same_request(line, original), line
        _D, _PUMP, _AUTH = _fresh()
        return
    for r in out:
        kind, _, _, _, _, tag = _check_reply(r)
        assert kind == "!" and tag is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10 ** 15) + 1, 10 ** 15 - 1)
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                              max_size=10), inner, max_size=4),
    max_leaves=6)

_REAL = Pump(library=core_library())
_REAL.boot()
_REAL_AUTH = auth.Auth(WIRE, KIDS)
_REAL_D = Dispatcher(_REAL, _REAL_AUTH, INFO)
_REAL_SIGNER = Signer()


@fuzz("real")
@given(cmd=st.sampled_from(sorted(commands.names()) + ["nope", "x_y", "bolus"]),
       role=st.sampled_from(["clinician", "patient", "readonly", None]),
       args=st.dictionaries(
           st.sampled_from(["volume_nl", "duration_ms", "minutes", "fill_nl", "rx", "checksum",
                            "alarm", "day", "ms_of_day", "since", "limit", "index", "count",
                            "text", "confirm_soft", "bridge", "new_admixture", "nonce", "role",
                            "zzz"]),
           json_values | st.sampled_from(["a" * 32, "clinician"]), max_size=3))
def test_authentic_requests_with_arbitrary_args_on_the_real_pump(
        cmd: str, role: str | None, args: dict[str, Any]) -> None:
    line = _REAL_SIGNER.line(cmd, args, role=role)
    if len(line) > wire.MAX_LINE:
        return
    before = dict(_REAL_AUTH.counters())
    out = _REAL_D.feed(line.encode() + b"\n", next(_LINK))
    assert len(out) == 1
    kind, rid, _, reason, body, tag = _check_reply(out[0])
    assert rid is not None
    row = commands.find(cmd)
    if role is None:
        if cmd != "hello":
            assert reason == reasons.AUTH_REQUIRED and tag is None
        elif tag is not None:    # a hello naming a role and a nonce: tagged with that role's key
            assert kind == "=" and args.get("role") in WIRE
            req_body = wire.parse_request(line)[6]
            assert signing.verifies(WIRE[args["role"]], signing.reply_text(req_body, body), tag)
        else:
            # untagged: not exactly a nonce and a role, or a nonce or role the pump cannot use
            assert set(args) != {"nonce", "role"} or not wire.valid_tag(args["nonce"]) \
                or args["role"] not in WIRE
    else:
        # an authentic request: its reply, whatever it says, verifies on the host
        req_body = wire.parse_request(line)[6]
        assert signing.verifies(WIRE[role], signing.reply_text(req_body, body), tag)
        if row is None:
            assert reason == reasons.UNKNOWN_COMMAND
        elif cmd != "hello" and role not in row.roles:
            assert reason == reasons.ROLE_FORBIDDEN
    if reason in (reasons.UNKNOWN_COMMAND, reasons.AUTH_REQUIRED, reasons.ROLE_FORBIDDEN,
                  reasons.BAD_ARGS, reasons.BAD_VALUE):
        assert _REAL_AUTH.counters() == before
    # the dispatcher keeps working after whatever happened
    _REAL_D.event_lines()
    assert wire.parse_reply(_REAL_D.handle_line(_REAL_SIGNER.line("hello", role=None),
                                                next(_LINK)))[0] == "="


ALPHABET = '{}[]",:-0123456789truefalsn\\ ax'


@fuzz("decoder")
@given(raw=st.binary(max_size=60))
def test_decoder_total(raw: bytes) -> None:
    text = "".join(ALPHABET[b % len(ALPHABET)] for b in raw)
    try:
        v = wire.decode(text)
    except wire.WireError as e:
        assert e.reason == reasons.BAD_ARGS
        return
    assert wire.decode(wire.encode(v)) == v


_REPLY_D, _, _ = _fresh()
_REPLY_SIGNER = Signer()
_GENUINE = []
for _cmd, _role in (("status", "readonly"), ("start", "clinician"), ("fly", "patient")):
    _line = _REPLY_SIGNER.line(_cmd, role=_role)
    _GENUINE.append((_role, wire.parse_request(_line)[6], _REPLY_D.handle_line(_line)))


@fuzz("replies")
@given(program=st.binary(min_size=5, max_size=17))
def test_mutated_replies_never_verify_on_the_host(program: bytes) -> None:
    # the host's side: any change to a tagged reply (CRC re-sealed) fails verification
    role, req_body, original = _GENUINE[program[0] % len(_GENUINE)]
    ops = [(program[i] % 5, program[i + 1] * 256 + program[i + 2], program[i + 3])
           for i in range(1, len(program) - 3, 4)]
    line = _mutate(original, ops)
    sp = line.rfind(" ")
    if sp > 0 and wire.is_printable(line):
        line = wire.seal(line[:sp])
    if line == original:
        return
    try:
        parsed = wire.parse_reply(line)
    except wire.WireError:
        return
    if parsed is None or parsed[0] == "~":
        return
    assert not signing.verifies(WIRE[role], signing.reply_text(req_body, parsed[4]), parsed[5])
