"""docs/protocol.md: every example line is real (CRC, tags, and the replies a pump gives)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pumpcore import auth, wire
from pumpcore.dispatch import Dispatcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from proto_helpers import KEYS, FakePump

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _example_lines() -> list[str]:
    text = DOC.read_text()
    lines = []
    for block in re.findall(r"```\n(.*?)```", text, re.DOTALL):
        # (the format template, with the placeholder CRC, is not an example)
        lines.extend(ln for ln in block.splitlines() if ln[:1] in "@=!~" and " CRC" not in ln)
    return lines


def test_protocol_examples_are_real() -> None:
    lines = _example_lines()
    assert len(lines) >= 18
    d = Dispatcher(FakePump(), auth.Auth(KEYS),
                   {"firmware": "0.1.0", "device_id": "E6614103E7452D2F", "board": "rpi-pico"})
    checked = 0
    for i, line in enumerate(lines):
        if line.startswith("@") and lines[i + 1][0] in "=!":
            assert d.handle_line(line) == lines[i + 1], line
            checked += 1
        elif line.startswith("~"):
            assert wire.parse_reply(line)[0] == "~"
    assert checked == 8
    # the documented example keys are the test keys
    doc = DOC.read_text()
    assert "clinician `000102…1f`" in doc and KEYS["clinician"] == bytes(range(32))
    assert "@3 clinician 1 suspend {\"minutes\":30}\n" in doc
