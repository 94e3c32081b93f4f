"""Hypothesis properties of the catheter's dose-guard and reset-accounting queries (CPython only).

- `would_emit(v, concs)` says exactly what `push(v, concs)` then sends out of the tip (the guard
  admits a stroke on that figure, so it must be the truth, not an estimate).
- `presume_hidden_pushes(W, incoming)` plus what the facade books for the hidden pushes
  (W at the highest concentration in the catheter or the reservoir, rounded up): after a reset
  that may have hidden up to W nL of pushes, what the pump counts is never below what truly left
  the tip, whatever part s (0 <= s <= W) of those pushes really happened, for any later push
  sequence (docs/therapy.md, "Resets and accounting").
"""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st
from pumpcore.catheter import Catheter

N = 2
concs = st.lists(st.sampled_from([0, 1, 100, 999, 10_000, 25_000]), min_size=N, max_size=N)
volumes = st.integers(min_value=0, max_value=60_000)


@st.composite
def catheters(draw: st.DrawFn) -> Catheter:
    vol = draw(st.sampled_from([0, 1_000, 50_000, 150_000]))
    c = Catheter(vol, N, max_segments=draw(st.sampled_from([2, 3, 8])))
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
        assert out[:N] == cat.out_ng[:N]


@settings(max_examples=300, deadline=None)
@given(catheters(), concs, st.integers(min_value=0, max_value=12_000), st.data(),
       st.lists(st.tuples(volumes, concs), max_size=10))
def test_presumed_hidden_pushes_never_undercount_later_output(
        cat: Catheter, incoming: list[int], width: int, data: st.DataObject,
        later: list[tuple[int, list[int]]]) -> None:
    hidden = data.draw(st.integers(min_value=0, max_value=width))
    # the truth: the same fluid in a catheter that never merges segments (exact plug flow)
    truth = Catheter(cat.volume_nl, N, max_segments=64)
    truth.restore(cat.snapshot())
    truth.push(hidden, incoming)                     # what really happened before the cut
    tot_truth = list(truth.out_ng[:N])
    # the facade's booking (Pump._presume_strokes): width at the highest concentration, rounded up
    tot_model = []
    for d in range(N):
        top = max([incoming[d]] + [c[d] for v, c in cat.segments() if v])
        tot_model.append((width * top + 999) // 1000)
    model = copy.deepcopy(cat)
    model.presume_hidden_pushes(width, incoming)     # what the pump assumes after the reset
    assert model.fill_nl >= truth.fill_nl
    for d in range(N):
        assert tot_model[d] >= tot_truth[d]
    for v, k in later:                               # the same therapy afterwards
        model.push(v, k)
        truth.push(v, k)
        for d in range(N):
            tot_model[d] += model.out_ng[d]
            tot_truth[d] += truth.out_ng[d]
            assert tot_model[d] >= tot_truth[d]
