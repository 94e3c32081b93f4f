"""docs/protocol.md: every example line and golden vector is real (CRC, tags, key derivation, the
replies a pump gives), the command table is the one in pumpcore.commands, and every test the
threat model cites exists."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

from pumpcore import auth, wire
from pumpcore.dispatch import Dispatcher
from pumphost import commands_md, signing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from proto_helpers import KEYS, KIDS, WIRE, FakePump

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
EVENT = {"code": "occlusion", "data": {}, "day": 9824, "kind": "alarm", "ms": 28800000,
         "seq": 12, "up_s": 3600}


def _blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", DOC.read_text(), re.DOTALL)


def _example_lines() -> list[str]:
    lines = []
    for block in _blocks():
        # (the format template, with its placeholder fields, is not an example)
        lines.extend(ln for ln in block.splitlines() if ln[:1] in "@=!~" and " CRC" not in ln)
    return lines


def test_protocol_examples_are_real() -> None:
    lines = _example_lines()
    a = auth.Auth(WIRE, KIDS)
    a.next_boot()
    d = Dispatcher(FakePump(), a,
                   {"firmware": "0.1.0", "device_id": "E6614103E7452D2F", "board": "rpi-pico"})
    checked = 0
    requests = {}
    for i, line in enumerate(lines):
        if line.startswith("@") and lines[i + 1][0] in "=!":
            assert d.handle_line(line) == lines[i + 1], line
            requests[lines[i + 1]] = line
            checked += 1
    assert checked == 11
    # the tagged replies verify on the host, for the request they answer
    for reply, request in requests.items():
        parsed = wire.parse_reply(reply)
        assert parsed is not None
        if parsed[5] is not None:
            role = wire.parse_request(request)[1] or "readonly"     # the nonce hello's role
            text = signing.reply_text(wire.parse_request(request)[6], parsed[4])
            assert signing.verifies(WIRE[role], text, parsed[5]), reply
    events = [ln for ln in lines if ln.startswith("~")]
    assert d.event_lines([EVENT]) == events and len(events) == 2
    for ln in events:
        parsed = wire.parse_reply(ln)
        assert parsed is not None
        for role, tag in zip(wire.ROLES, parsed[5], strict=True):
            assert signing.verifies(WIRE[role], parsed[4], tag)


def test_golden_wire_keys_and_example_keys() -> None:
    doc = DOC.read_text()
    found = re.findall(r"^wire key (\w+) ([0-9a-f]{64})$", doc, re.M)
    assert [r for r, _ in found] == list(wire.ROLES)
    for role, hexkey in found:
        assert signing.wire_key(KEYS[role], KIDS[role]).hex() == hexkey
        assert auth.wire_key(KEYS[role], KIDS[role]).hex() == hexkey
    assert "clinician\n`000102…1f`" in doc or "clinician `000102…1f`" in doc
    assert KEYS["clinician"] == bytes(range(32)) and KIDS["clinician"] == "1111111111111111"


def test_the_python_example_runs() -> None:
    code = next(b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
                if "wire_key" in b)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # noqa: S102 - the documented snippet itself
    line = out.getvalue().strip()
    body = wire.parse_request(line)[6]
    assert signing.verifies(WIRE["clinician"], body, wire.parse_request(line)[5])


def test_command_table_is_generated_from_the_firmware() -> None:
    doc = DOC.read_text()
    start, end = doc.index(commands_md.BEGIN), doc.index(commands_md.END) + len(commands_md.END)
    assert doc[start:end] == commands_md.markdown(), "re-render with pumphost.commands_md"


def test_cited_tests_exist() -> None:
    refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", DOC.read_text())
    assert len(refs) >= 12
    for path, name in refs:
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), f"{path}::{name}"
