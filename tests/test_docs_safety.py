"""docs/safety.md: every hazard row names a mitigation and at least one test, and every named test
exists (so the table cannot point at nothing); and every hazard has, in tests/mitigations.py, a
source mutation that switches its mitigation off together with the row's tests that must then
fail (tests/test_mitigations.py and `make verify` run them)."""

from __future__ import annotations

import re
from pathlib import Path

from mitigations import MUTATIONS

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("over-infusion", "under-infusion", "lockout", "occlusion", "dislodgement", "leak",
            "motor stall", "reservoir empty", "battery", "reset", "corrupt", "unauthorised")
TEST_REF = r"`(tests/[\w/]+\.py)::(\w+)`"


def _rows() -> list[list[str]]:
    text = (ROOT / "docs" / "safety.md").read_text()
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if re.match(r"\|\s*H\d+\s*\|", line)]


def _exists(path: str, name: str) -> bool:
    return bool(re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M))


def test_every_required_hazard_is_in_the_table() -> None:
    hazards = " ".join(r[1].lower() for r in _rows())
    missing = [h for h in REQUIRED if h not in hazards]
    assert not missing, missing


def test_every_row_has_a_mitigation_and_existing_tests() -> None:
    rows = _rows()
    assert len(rows) >= len(REQUIRED)
    for row in rows:
        assert len(row) == 4 and row[2], row
        refs = re.findall(TEST_REF, row[3])
        assert refs, f"{row[0]} names no test"
        for path, name in refs:
            assert _exists(path, name), f"{row[0]}: {path}::{name} not found"


def test_every_hazard_has_a_mutation_killed_by_the_tests_its_row_names() -> None:
    rows = {row[0]: {f"{p}::{n}" for p, n in re.findall(TEST_REF, row[3])} for row in _rows()}
    covered = {m.hazard for m in MUTATIONS}
    assert not set(rows) - covered, f"hazards without a mutation: {sorted(set(rows) - covered)}"
    assert not covered - set(rows), f"mutations of unknown hazards: {sorted(covered - set(rows))}"
    names = [m.name for m in MUTATIONS]
    assert len(names) == len(set(names)), "mutation names must be unique"
    for m in MUTATIONS:
        assert m.tests and m.edits, m.name
        assert set(m.tests) & rows[m.hazard], \
            f"{m.name}: none of its tests is named in docs/safety.md's {m.hazard} row"
        for t in m.tests:
            path, name = t.split("::")
            assert _exists(path, name), f"{m.name}: {t} not found"


def test_every_mutation_applies_to_the_current_sources() -> None:
    # each edit's text occurs exactly once (a mutation that no longer matches the code would
    # otherwise only be noticed when it runs)
    for m in MUTATIONS:
        for e in m.edits:
            n = (ROOT / e.path).read_text().count(e.old)
            assert n == 1, f"{m.name}: {e.path} holds the text to replace {n} times"
            assert e.new != e.old, m.name
