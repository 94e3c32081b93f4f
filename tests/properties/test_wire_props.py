"""Properties of the wire codec (CPython reference: zlib, json)."""

from __future__ import annotations

import itertools
import json
import zlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pumpcore import auth, wire

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10 ** 15) + 1, 10 ** 15 - 1)
    | st.text(PRINTABLE, max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(PRINTABLE, max_size=8),
                                                               inner, max_size=5),
    max_leaves=20).filter(lambda v: _depth(v) <= wire.MAX_DEPTH)
SETTINGS = settings(max_examples=400, derandomize=True, database=None, deadline=None)


def _depth(v: Any) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


@SETTINGS
@given(values)
def test_roundtrip_and_json_compatible(v: Any) -> None:
    text = wire.encode(v)
    assert wire.decode(text) == v
    # the canonical form is exactly what a standard JSON writer gives with sorted keys
    assert text == json.dumps(v, sort_keys=True, separators=(",", ":"))
    assert json.loads(text) == v


@SETTINGS
@given(st.binary(max_size=600))
def test_crc_matches_zlib(data: bytes) -> None:
    assert int(wire.crc32_hex(data), 16) == zlib.crc32(data)
    assert wire.crc32_hex_tables(data) == wire.crc32_hex(data)   # the fallback for other ports


@SETTINGS
@given(st.text(PRINTABLE, min_size=1, max_size=200), st.data())
def test_crc_detects_any_single_byte_change_or_drop(text: str, data: st.DataObject) -> None:
    line = wire.seal("=1 " + wire.encode(text))
    i = data.draw(st.integers(0, len(line) - 1))
    c = data.draw(PRINTABLE)
    changed = line[:i] + c + line[i + 1:]
    dropped = line[:i] + line[i + 1:]
    for bad in (changed, dropped):
        if bad != line:     # hex is lower case only: a changed letter case is a change too
            assert wire.check_crc(bad) is None


@SETTINGS
@given(req_id=st.text(st.sampled_from("abcXYZ0189"), min_size=1, max_size=wire.MAX_ID),
       role=st.sampled_from(wire.ROLES), counter=st.integers(1, 2 ** 48 - 1),
       cmd=st.text(st.sampled_from("abc_xyz"), min_size=1, max_size=wire.MAX_CMD),
       args=st.dictionaries(st.text(PRINTABLE, max_size=8), values, max_size=3),
       key=st.binary(min_size=16, max_size=64))
def test_request_roundtrip(req_id: str, role: str, counter: int, cmd: str,
                           args: dict[str, Any], key: bytes) -> None:
    body = wire.request_body(req_id, role, counter, cmd, args)
    tag = auth.tag(key, body)
    line = wire.request_line(body, tag)
    assert wire.parse_request(line) == (req_id, role, wire.counter_of_int(counter), cmd, args,
                                        tag, body)


@SETTINGS
@given(a=st.integers(0, 2 ** 48 - 1), b=st.integers(0, 2 ** 48 - 1))
def test_counter_parts_agree_with_python_ints(a: int, b: int) -> None:
    ca, cb = wire.counter_of_int(a), wire.counter_of_int(b)
    assert wire.format_counter(ca) == str(a)
    if a:
        assert wire.parse_counter(str(a)) == ca
    assert wire.counter_after(ca, cb) == (a > b)
    assert wire.counter_within(ca, cb, 1) == (a - b <= 2 ** 24)


@SETTINGS
@given(lines=st.lists(st.text(PRINTABLE, max_size=40), max_size=8),
       cuts=st.lists(st.integers(0, 400), max_size=10), crlf=st.booleans())
def test_splitter_is_chunking_invariant(lines: list[str], cuts: list[int], crlf: bool) -> None:
    stream = "".join(ln + ("\r\n" if crlf else "\n") for ln in lines).encode()
    s = wire.LineSplitter()
    out = []
    points = sorted({0, len(stream), *[c for c in cuts if c < len(stream)]})
    for a, b in itertools.pairwise(points):
        out.extend(s.feed(stream[a:b]))
    assert out == [("ok", ln) for ln in lines]
