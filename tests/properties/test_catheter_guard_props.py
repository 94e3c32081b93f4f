"""Hypothesis properties of the catheter's dose-guard and reset-accounting queries (CPython only).

- `would_emit(v, concs)` says exactly what `push(v, concs)` then counts for the dose limits
  (`guard_ng`: the guard admits a stroke on that figure, so it must be what is then booked).
- With no accuracy band (tol_pct 0) the counted amounts are the nominal ones.
- The uncertainty band (docs/therapy.md, "The catheter's uncertainty band"): whatever each stroke
  truly moves within +-tol_pct of nominal, what truly leaves the tip (an exact plug-flow
  reference written here, in fractions) never exceeds what the pump counts for the limits
  (`guard_ng` plus the ledger's +tol_pct margin).
- `presume_hidden_pushes(W, incoming)` plus what the facade books for the hidden pushes
  (W at the highest concentration in the catheter or the reservoir, rounded up): after a reset
  that may have hidden up to W nL of pushes, what the pump counts is never below what truly left
  the tip, whatever part s (0 <= s <= W) of those pushes really happened, for any later push
  sequence (docs/therapy.md, "Resets and accounting").
"""

from __future__ import annotations

import copy
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st
from pumpcore.catheter import Catheter

N = 2
concs = st.lists(st.sampled_from([0, 1, 100, 999, 10_000, 25_000]), min_size=N, max_size=N)
volumes = st.integers(min_value=0, max_value=60_000)


@st.composite
def catheters(draw: st.DrawFn) -> Catheter:
    vol = draw(st.sampled_from([0, 1_000, 50_000, 150_000]))
    c = Catheter(vol, N, max_segments=draw(st.sampled_from([2, 3, 8])),
                 tol_pct=draw(st.sampled_from([0, 5])))
    for v, k in draw(st.lists(st.tuples(volumes, concs), max_size=12)):
        c.push(v, k)
    return c


@settings(max_examples=300, deadline=None)
@given(catheters(), st.lists(st.tuples(volumes, concs), min_size=1, max_size=10))
def test_would_emit_is_exactly_what_push_sends_out(cat: Catheter,
                                                   pushes: list[tuple[int, list[int]]]) -> None:
    out = [0] * 4
    for v, k in pushes:
        before = copy.deepcopy(cat)
        cat.would_emit(v, k, out)
        assert cat.snapshot() == before.snapshot()          # a query changes nothing
        cat.push(v, k)
        assert out[:N] == cat.guard_ng[:N]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0, 1_000, 50_000]), st.lists(st.tuples(volumes, concs), max_size=14))
def test_without_a_band_the_counted_amounts_are_the_nominal_ones(
        vol: int, pushes: list[tuple[int, list[int]]]) -> None:
    cat = Catheter(vol, N, max_segments=3)
    for v, k in pushes:
        cat.push(v, k)
        assert cat.guard_ng[:N] == cat.out_ng[:N]
        assert cat.tail_nl == 0

@settings(max_examples=300, deadline=None)
@given(catheters(), concs, st.integers(min_value=0, max_value=12_000), st.data(),
       st.lists(st.tuples(volumes, concs), max_size=10))
def test_presumed_hidden_pushes_never_undercount_later_output(
        cat: Catheter, incoming: list[int], width: int, data: st.DataObject,
        later: list[tuple[int, list[int]]]) -> None:
    hidden = data.draw(st.integers(min_value=0, max_value=width))
    # the truth: the same fluid in a catheter that never merges segments (exact plug flow)
    truth = Catheter(cat.volume_nl, N, max_segments=64, tol_pct=cat.tol_pct)
    truth.restore(cat.snapshot())
    truth.push(hidden, incoming)                     # what really happened before the cut
    tot_truth = list(truth.out_ng[:N])
    hidden_counted = list(truth.guard_ng[:N])
    # the facade's booking (Pump._presume_strokes): width at the highest concentration in the
    # reservoir or anywhere the catheter model still holds (its tail included), rounded up
    tot_model = []
    for d in range(N):
        top = max(incoming[d], cat.max_conc(d))
        tot_model.append((width * top + 999) // 1000)
    model = copy.deepcopy(cat)
    model.presume_hidden_pushes(width, incoming)     # what the pump assumes after the reset
    assert model.fill_nl >= truth.fill_nl
    for d in range(N):
        assert tot_model[d] >= tot_truth[d]
    guard_model = list(tot_model)
    guard_truth = hidden_counted
    for d in range(N):
        assert tot_model[d] >= guard_truth[d]
    for v, k in later:                               # the same therapy afterwards
        model.push(v, k)
        truth.push(v, k)
        for d in range(N):
            tot_model[d] += model.out_ng[d]
            tot_truth[d] += truth.out_ng[d]
            assert tot_model[d] >= tot_truth[d]
            guard_model[d] += model.guard_ng[d]      # and what the dose limits count
            guard_truth[d] += truth.guard_ng[d]
            assert guard_model[d] >= guard_truth[d]


class PlugFlow:
    """The reference: exact plug flow in fractions, no segment limit, blank (no drug) at first."""

    def __init__(self, volume_nl: int, filled: list[int] | None) -> None:
        self.volume = Fraction(volume_nl)
        # (volume, concs) pump end first; what is not filled is blank at the tip
        self.content: list[tuple[Fraction, list[int]]] = (
            [(self.volume, filled)] if filled is not None and volume_nl else [])

    def push(self, volume: Fraction, concs: list[int]) -> list[Fraction]:
        """ng of each drug that left the tip."""
        self.content.insert(0, (volume, concs))
        held = sum((v for v, _ in self.content), Fraction(0))
        over = held - self.volume
        out = [Fraction(0)] * N
        while over > 0:
            v, c = self.content[-1]
            take = min(v, over)
            for d in range(N):
                out[d] += take * c[d] / 1000
            over -= take
            if take == v:
                self.content.pop()
            else:
                self.content[-1] = (v - take, c)
        return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1_000, 20_000, 60_000]), st.booleans(), concs,
       st.lists(st.tuples(st.integers(1, 3_000), concs, st.integers(-5, 5)), max_size=60),
       st.integers(1, 40))
def test_within_the_band_what_truly_leaves_never_exceeds_what_is_counted(
        vol: int, filled: bool, first: list[int],
        pushes: list[tuple[int, list[int], int]], repeat: int) -> None:
    # over EVERY run of consecutive pushes, not only in total: a rolling 24-h window is such a
    # run, and a slow mechanism moves an old admixture's exit later, not its total
    tol = 5
    k = Fraction(100 + tol, 100)       # the ledger books the counted amount plus the margin
    cat = Catheter(vol, N, filled=filled, concs=first if filled else None, tol_pct=tol)
    truth = PlugFlow(vol, first if filled else None)
    # per drug: true amount - k * counted, so far, and its lowest value at any earlier push
    gap = [Fraction(0)] * N
    low = [Fraction(0)] * N
    for v, conc, err in pushes:
        for _ in range(repeat):        # runs of one admixture, as strokes come
            cat.push(v, conc)
            got = truth.push(Fraction(v * (100 + err), 100), conc)   # a stroke err % off nominal
            for d in range(N):
                gap[d] += got[d] - k * cat.guard_ng[d]
                # true amount over the run since the lowest point <= k * (counted + 1): the
                # carried pg remainders keep any run's counted sum within 1 ng of exact
                assert gap[d] - low[d] <= k, (d, float(gap[d] - low[d]))
                low[d] = min(low[d], gap[d])
