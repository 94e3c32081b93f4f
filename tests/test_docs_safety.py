"""docs/safety.md: every hazard row names a mitigation and at least one test, and every named test
exists (so the table cannot point at nothing)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("over-infusion", "under-infusion", "lockout", "occlusion", "dislodgement", "leak",
            "motor stall", "reservoir empty", "battery", "reset", "corrupt", "unauthorised")


def _rows() -> list[list[str]]:
    text = (ROOT / "docs" / "safety.md").read_text()
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if re.match(r"\|\s*H\d+\s*\|", line)]


def test_every_required_hazard_is_in_the_table() -> None:
    hazards = " ".join(r[1].lower() for r in _rows())
    missing = [h for h in REQUIRED if h not in hazards]
    assert not missing, missing


def test_every_row_has_a_mitigation_and_existing_tests() -> None:
    rows = _rows()
    assert len(rows) >= len(REQUIRED)
    for row in rows:
        assert len(row) == 4 and row[2], row
        refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row[3])
        assert refs, f"{row[0]} names no test"
        for path, name in refs:
            src = (ROOT / path).read_text()
            assert re.search(rf"^def {name}\(", src, re.M), f"{row[0]}: {path}::{name} not found"
