"""Garbage-collector policy for long simulation runs (who calls it: pumphil.simulate).

A month of simulation allocates millions of short-lived objects (ints, slices, JSON records) and
almost no reference cycles. CPython's default gen-0 threshold collects the young generation every
700 container allocations, and each older collection re-scans the set-up's large, long-lived
tables. Decision: for the length of a run, move the set-up's objects (firmware tables, plant
tables, the host client) out of the collector's view with gc.freeze() and collect the young
generation every 20,000 allocations. Cycles are still collected (garbage is never kept for the
run's length); results do not depend on it. `make bench` prints the effect (~0.1 s of a month)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GEN0_THRESHOLD = 20_000


@contextmanager
def long_run() -> Iterator[None]:
    """Within the block: set-up objects frozen, a higher gen-0 threshold; both restored after."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
