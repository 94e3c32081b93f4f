"""Hypothesis properties of the Pump facade over random request sequences (CPython):
lockout, max-per-24h and the hard dose limit are never violated, whatever the patient presses,
whatever the clinician does in between."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))

import rx_helpers  # noqa: E402
from pump_helpers import programmed  # noqa: E402

MIN = 60_000
DAY = 86_400_000

actions = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.integers(1, 180 * MIN)),
        st.tuples(st.just("press"), st.just(0)),
        st.tuples(st.just("wait_press"), st.integers(1, 120 * MIN)),
        st.tuples(st.just("wait_press"), st.integers(1, 120 * MIN)),
        st.tuples(st.just("clinician_bolus"), st.integers(250, 50_000)),
        st.tuples(st.just("suspend_resume"), st.integers(1, 30)),
        st.tuples(st.just("set_clock"), st.integers(0, DAY - 1)),
        st.tuples(st.just("alarm_cycle"), st.just(0)),
    ),
    min_size=10, max_size=60,
)


def _rx(lockout_min: int, max_per_24h: int, hard_ng: int) -> dict[str, Any]:
    rx = rx_helpers.morphine_rx()
    rx["patient"]["lockout_ms"] = lockout_min * MIN
    rx["patient"]["max_per_24h"] = max_per_24h
    rx["drugs"][0]["hard_ng_per_day"] = hard_ng
    rx["drugs"][0]["soft_ng_per_day"] = hard_ng
    return rx


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions, st.integers(5, 120), st.integers(1, 12), st.integers(0, 1_500_000))
def test_patient_bolus_rules_hold_over_random_sequences(
        seq: list[tuple[str, int]], lockout_min: int, max_per_24h: int, headroom_ng: int) -> None:
    _check(seq, lockout_min, max_per_24h, headroom_ng)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 90 * MIN), min_size=20, max_size=80), st.integers(5, 60),
       st.integers(1, 12), st.integers(0, 200_000))
def test_a_patient_pressing_all_day_never_breaks_the_rules(
        waits: list[int], lockout_min: int, max_per_24h: int, headroom_ng: int) -> None:
    _check([("wait_press", w) for w in waits], lockout_min, max_per_24h, headroom_ng)


def _check(seq: list[tuple[str, int]], lockout_min: int, max_per_24h: int,
           headroom_ng: int) -> None:
    # the program's projected daily dose (basal + periodic + max patient boluses) plus headroom
    hard_ng = (690_000 + max_per_24h * 10_000) * 10 + headroom_ng
    p = programmed(_rx(lockout_min, max_per_24h, hard_ng))
    t = 0                           # monotonic ms since the test started
    starts: list[int] = []          # monotonic start times of delivered patient boluses
    last_reset = -20 * MIN          # the commit, before the 20-min priming in programmed()
    amounts: list[tuple[int, int]] = []   # (t, ng) at the tip, sampled from the ledger deltas

    def advance(ms: int) -> None:
        nonlocal t
        while ms > 0:
            d = min(ms, 5 * MIN)
            before = p.status()["delivered_drug"]["morphine"]
            p.advance(d)
            t += d
            after = p.status()["delivered_drug"]["morphine"]
            amounts.append((t, (after[0] - before[0]) * 1000 + after[1] - before[1]))
            ms -= d

    for kind, arg in seq:
        if kind == "wait":
            advance(arg)
        elif kind in ("press", "wait_press"):
            if kind == "wait_press":
                advance(arg)
            code, _ = p.patient_bolus()
            if code == "ok":
                # lockout since the START of the last delivered bolus and since commit/refill
                if starts:
                    assert t - starts[-1] >= lockout_min * MIN
                assert t - last_reset >= lockout_min * MIN
                assert len([s for s in starts if t - s < DAY]) < max_per_24h
                starts.append(t)
        elif kind == "clinician_bolus":
            p.clinician_bolus(arg, 10 * MIN)
        elif kind == "suspend_resume":
            if p.suspend(arg)[0] == "ok":
                advance(arg * MIN // 2)
                p.resume()
        elif kind == "set_clock":
            p.set_clock(p.wall.day + 1, arg)   # wall clock jumps never unlock anything
        elif kind == "alarm_cycle":
            p.raise_alarm("under_infusion")
            assert p.patient_bolus()[0] in ("alarm", "not_running")
            p.ack("under_infusion")
            p.clear_condition("under_infusion")
        # the hard limit holds over every 24-h window of what reached the patient, allowing for
        # the basal that the program itself delivers (limit >= projected daily dose)
        window = sum(ng for (ts, ng) in amounts if t - ts < DAY)
        assert window <= hard_ng + 250 * 10  # one stroke of morphine 10 mg/mL of sampling slack
    denied = p.status()["patient_bolus"]["denied"]
    n = len(starts)
    event("patient boluses delivered: " + ("0" if n == 0 else "1-3" if n < 4 else "4+"))
    event("refused for max_per_24h: %s" % (denied["max_per_24h"] > 0))
    event("refused for dose_limit: %s" % (denied["dose_limit"] > 0))
