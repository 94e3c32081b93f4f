"""The `micropython` runtime's base64 (pumphil/mpy/mp_binascii.py, installed into the
interpreter's binascii by mp_board.py in place of that build's O(n**2) pure-Python one; encoding
through Node, pumphil/mpy/native.mjs, with a Python fallback) gives exactly CPython's bytes, run
on the real MicroPython, both encoders: encodings of every length class, with and
without the newline, the ledger's slot size, and decodings of valid, truncated and damaged
text (same bytes, or an error where CPython raises one)."""

from __future__ import annotations

import binascii
import json
import random
from pathlib import Path

from pumphil.mpy_board import MP_BOARD_DIR
from pumphil.mpy_runtime import run_micropython

SCRIPT = """
import json
import mp_binascii as m
cases = json.loads(open("/data/cases.json").read())
print("native", m._native_b64 is not None)
for _ in range(2):            # Node's encoder (itpump_native), then the Python fallback
    out = []
    for kind, arg in cases:
        data = bytes.fromhex(arg)
        if kind == "enc":
            out.append([m.b2a_base64(data).hex(), m.b2a_base64(data, newline=False).hex()])
        else:
            try:
                out.append(m.a2b_base64(data).hex())
            except ValueError:
                out.append("error")
    print(json.dumps(out))
    m._native_b64 = None
"""


def _cases() -> tuple[list[list[str]], list[object]]:
    rnd = random.Random(12)
    cases: list[list[str]] = []
    expected: list[object] = []
    for n in [*range(0, 40), 1156]:
        data = rnd.randbytes(n)
        cases.append(["enc", data.hex()])
        expected.append([binascii.b2a_base64(data).hex(),
                         binascii.b2a_base64(data, newline=False).hex()])
        text = binascii.b2a_base64(data)
        variants = [text, text.strip(), text[: rnd.randrange(len(text) + 1)]]
        for _ in range(4):
            damaged = bytearray(text)
            damaged[rnd.randrange(len(damaged))] = rnd.choice(b"=A!\n-_ ")
            variants.append(bytes(damaged))
        for v in variants:
            cases.append(["dec", v.hex()])
            try:
                expected.append(binascii.a2b_base64(v).hex())
            except binascii.Error:
                expected.append("error")
    return cases, expected


def test_base64_matches_cpython_on_micropython(tmp_path: Path) -> None:
    cases, expected = _cases()
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    res = run_micropython(script, mounts={MP_BOARD_DIR: "/mpyboard", tmp_path: "/data"},
                          timeout_s=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "native True"
    for line in lines[1:3]:
        got = json.loads(line)
        for case, g, e in zip(cases, got, expected, strict=True):
            assert g == e, case
