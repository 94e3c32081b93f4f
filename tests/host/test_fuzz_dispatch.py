"""Fuzzing the device-side parser and dispatcher (hypothesis, CPython).

ITPUMP_FUZZ_EXAMPLES is the total number of generated cases, split over the properties below by
fixed shares (default 104,000: `make test`; `make fuzz` sets 1,000,000). The cheap byte-level
properties get most of them; the real-pump property, whose inputs are costly to generate, 4 %.
Derandomized, no example database, so a run is reproducible on a fresh clone.

Properties: no exception ever escapes; every request line gets exactly one well-formed reply;
invalid input (garbage, mutated/forged requests) changes nothing: the pump is never called and
no counter moves.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pumpcore import auth, reasons, wire
from pumpcore.dispatch import COMMANDS, Dispatcher
from pumpcore.pump import Pump

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from proto_helpers import INFO, KEYS, FakePump, Signer

TOTAL = int(os.environ.get("ITPUMP_FUZZ_EXAMPLES", "104000"))
SHARES = {"garbage": 38, "mutated": 38, "real": 4, "decoder": 20}  # percent of TOTAL


def fuzz(name: str) -> settings:
    return settings(max_examples=max(1, TOTAL * SHARES[name] // 100), derandomize=True,
                    database=None, deadline=None, suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate, Phase.shrink], print_blob=True)


def _fresh() -> tuple[Dispatcher, FakePump, auth.Auth]:
    pump = FakePump()
    a = auth.Auth(KEYS)
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
    _SIGNER.line("bolus", {"volume_nl": 5000, "duration_ms": 60000}),
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
    points = sorted({0, len(data), *[c for c in cut_bytes if c <= len(data)]})
    for a, b in itertools.pairwise(points):
        out.extend(_D.feed(data[a:b]))
    out.extend(_D.feed(b"\n"))  # terminate whatever is pending
    for line in out:
        kind, _, _, reason = _check_reply(line)
        assert kind == "!" or reason is None
    assert _PUMP.calls == []
    assert _AUTH.counters() == {"clinician": 0, "patient": 0, "readonly": 0}


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
    out = _D.feed(line.encode("latin-1") + b"\n")
    assert len(out) <= 1
    if line.startswith("@"):
        assert len(out) == 1
    if _PUMP.calls or _AUTH.counters() != {"clinician": 0, "patient": 0, "readonly": 0}:
        # only acceptable when the mutation kept the very same authenticated request (e.g.
        # upper-case hex digits); start over with a fresh dispatcher for the next case
        assert _same_request(line, original), line
        _D, _PUMP, _AUTH = _fresh()
        return
    for r in out:
        assert _check_reply(r)[0] == "!"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10 ** 15) + 1, 10 ** 15 - 1)
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                              max_size=10), inner, max_size=4),
    max_leaves=6)

_REAL = Pump()
_REAL.boot()
_REAL_AUTH = auth.Auth(KEYS)
_REAL_D = Dispatcher(_REAL, _REAL_AUTH, INFO)
_REAL_SIGNER = Signer()


@fuzz("real")
@given(cmd=st.sampled_from(sorted(COMMANDS) + ["nope", "x_y"]),
       role=st.sampled_from(["clinician", "patient", "readonly", None]),
       args=st.dictionaries(
           st.sampled_from(["volume_nl", "duration_ms", "minutes", "fill_nl", "rx", "checksum",
                            "alarm", "day", "ms_of_day", "since", "limit", "index", "count",
                            "text", "confirm_soft", "bridge", "new_admixture", "zzz"]),
           json_values, max_size=3))
def test_authentic_requests_with_arbitrary_args_on_the_real_pump(
        cmd: str, role: str | None, args: dict[str, Any]) -> None:
    line = _REAL_SIGNER.line(cmd, args, role=role)
    if len(line) > wire.MAX_LINE:
        return
    before = dict(_REAL_AUTH.counters())
    out = _REAL_D.feed(line.encode() + b"\n")
    assert len(out) == 1
    _, rid, _, reason = _check_reply(out[0])
    assert rid is not None
    if cmd not in COMMANDS:
        assert reason == reasons.UNKNOWN_COMMAND
    elif role is None and cmd != "hello":
        assert reason == reasons.AUTH_REQUIRED
    elif role is not None and cmd != "hello" and role not in COMMANDS[cmd][0]:
        assert reason == reasons.ROLE_FORBIDDEN
    if reason in (reasons.UNKNOWN_COMMAND, reasons.AUTH_REQUIRED, reasons.ROLE_FORBIDDEN,
                  reasons.BAD_ARGS):
        assert _REAL_AUTH.counters() == before or reason == reasons.BAD_ARGS
    # the dispatcher keeps working after whatever happened
    _REAL_D.event_lines()
    assert wire.parse_reply(_REAL_D.handle_line(_REAL_SIGNER.line("hello", role=None)))[0] == "="


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
