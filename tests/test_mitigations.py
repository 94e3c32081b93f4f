"""make test's share of the mitigation table (tests/mitigations.py, run by
tests/mitigation_runner.py): for every hazard that has quick mutations, the first of them is
applied to a temporary copy of the tree and its named tests in tests/core and tests/host (seconds;
the emulator and long property tests are left to verify) must fail there, and pass on an unmutated
copy. `make verify` runs the whole table: every mutation of every hazard with all its tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mitigation_runner as runner
import pytest
from mitigations import MUTATIONS, Mutation

QUICK_DIRS = ("tests/core/", "tests/host/")


def _first_quick_per_hazard() -> list[Mutation]:
    seen: set[str] = set()
    out = []
    for m in MUTATIONS:
        if m.quick and m.hazard not in seen:
            seen.add(m.hazard)
            tests = tuple(t for t in m.tests if t.startswith(QUICK_DIRS))
            assert tests, f"{m.name} is quick but names no test in {QUICK_DIRS}"
            out.append(dataclasses.replace(m, tests=tests))
    return out


QUICK = _first_quick_per_hazard()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutants")


def test_the_named_tests_pass_on_an_unmutated_copy(work: Path) -> None:
    v = runner.baseline(QUICK, work)
    assert not v.failed, (sorted(v.failed), v.output)


@pytest.mark.parametrize("name", [m.name for m in QUICK])
def test_switching_the_mitigation_off_fails_its_tests(work: Path, name: str) -> None:
    m = next(m for m in QUICK if m.name == name)
    v = runner.check(m, work)
    assert not v.passed, (f"{m.hazard} {m.what}: still passing {sorted(v.passed)}", v.output)
