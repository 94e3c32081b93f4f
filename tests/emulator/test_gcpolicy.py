"""pumphil.gcpolicy: a simulation run's GC settings are scoped to the run, and cycles are still
collected within it."""

from __future__ import annotations

import gc
import weakref

from pumphil import gcpolicy


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_long_run_restores_the_collector_and_still_collects_cycles() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with gcpolicy.long_run():
        assert gc.get_threshold()[0] == gcpolicy.GEN0_THRESHOLD
        assert gc.get_freeze_count() >= frozen_before
        a, b = _Node(), _Node()
        a.other, b.other = b, a            # a cycle only the collector can free
        probe = weakref.ref(a)
        del a, b
        keep = [[] for _ in range(2 * gcpolicy.GEN0_THRESHOLD)]   # enough for a collection
        assert probe() is None, "the automatic young-generation collection freed the cycle"
        del keep
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_long_run_restores_the_collector_when_the_run_fails() -> None:
    before = gc.get_threshold()
    try:
        with gcpolicy.long_run():
            raise RuntimeError("scenario failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
