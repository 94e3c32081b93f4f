"""make test's share of the mitigation table (tests/mitigations.py, run by
tests/mitigation_runner.py): for every hazard that has quick mutations, the first of them is
applied to a temporary copy of the tree and its named tests must fail there, and pass on an
unmutated copy. `make verify` runs the whole table (every mutation of every hazard)."""

from __future__ import annotations

from pathlib import Path

import mitigation_runner as runner
import pytest
from mitigations import MUTATIONS, Mutation


def _first_quick_per_hazard() -> list[Mutation]:
    seen: set[str] = set()
    out = []
    for m in MUTATIONS:
        if m.quick and m.hazard not in seen:
            seen.add(m.hazard)
            out.append(m)
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
