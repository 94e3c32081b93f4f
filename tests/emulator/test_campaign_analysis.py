"""Campaign figures: the offline threshold sweep (record points) against a brute-force replay of
the persistence rule, Wilson and exact Poisson intervals, Kaplan-Meier time to alarm, ROC."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pumphil.campaign import analysis as A
from pumphil.campaign.statistics import ABOVE, BELOW, BY_NAME, Statistic, first_crossing, records


def _stat(direction: str, k: int) -> Statistic:
    return Statistic("s", "s", "Pa", ("x",), direction, 0, k, None, None, "")


def brute_first_alarm(direction: str, k: int, obs: list[tuple[int, int]], t_from: int,
                      t_to: int | None, thr: int) -> float | None:
    """The rule itself: the first observation at or after t_from (before t_to) that completes k
    consecutive abnormal observations."""
    run = 0
    for t, v in obs:
        if t_to is not None and t >= t_to:
            return None
        run = run + 1 if (v >= thr if direction == ABOVE else v < thr) else 0
        if run >= k and t >= t_from:
            return (t - t_from) / 1000.0
    return None


@settings(max_examples=150, deadline=None)
@given(direction=st.sampled_from([ABOVE, BELOW]), k=st.integers(1, 3),
       values=st.lists(st.integers(-50, 50), min_size=0, max_size=40),
       split=st.integers(0, 40), thr=st.integers(-60, 60))
def test_record_points_answer_every_threshold_exactly(direction: str, k: int, values: list[int],
                                                      split: int, thr: int) -> None:
    stat = _stat(direction, k)
    obs = [(1000 * i, v) for i, v in enumerate(values)]
    onset = 1000 * split
    pre = records(stat, obs, 0, onset)
    post = records(stat, obs, onset, None)
    assert first_crossing(stat, pre, thr) == brute_first_alarm(direction, k, obs, 0, onset, thr)
    assert first_crossing(stat, post, thr) == brute_first_alarm(direction, k, obs, onset, None,
                                                                thr)


def test_firmware_thresholds_come_from_the_firmware() -> None:
    from pumpcore import detect_catheter as dc
    from pumpcore import detect_occlusion as do

    assert BY_NAME["catheter_baseline_pa"].threshold == dc.BASELINE_LOW_PA
    assert BY_NAME["catheter_baseline_pa"].persistence == dc.ABNORMAL_RUN
    assert BY_NAME["occlusion_elevation_pa"].threshold == do.ELEV_ALARM_PA
    assert BY_NAME["occlusion_smoothness_pa"].threshold == do.SMOOTH_RESID_PA


def test_wilson_and_exact_poisson_intervals() -> None:
    p = A.wilson(8, 10)
    assert (p.p, round(p.lo, 3), round(p.hi, 3)) == (0.8, 0.490, 0.943)   # textbook values
    z = A.wilson(0, 20)
    assert z.lo == 0.0 and round(z.hi, 3) == 0.161
    assert A.wilson(0, 0).lo is None
    r = A.poisson_rate(0, 1.0)
    assert r.per_year == 0 and r.lo == 0.0 and round(r.hi, 3) == 3.689   # the "rule of 3.7"
    r = A.poisson_rate(10, 2.0)
    assert r.per_year == 5.0 and round(r.lo, 3) == 2.398 and round(r.hi, 3) == 9.195
    assert A.poisson_rate(1, 0.0).per_year is None


def test_time_to_alarm_counts_misses_and_reports_not_reached() -> None:
    t = A.time_to_alarm([10.0, 20.0, 30.0, None], [100.0] * 4)
    assert (t.n, t.detected, t.median_s, t.p95_s) == (4, 3, 20.0, None)
    assert t.fraction[-1] == pytest.approx(0.75)
    assert (t.median_detected_s, t.p95_detected_s) == (20.0, 30.0)
    t = A.time_to_alarm([None, None, 5.0], [60.0, 60.0, 60.0])
    assert t.median_s is None and t.median_detected_s == 5.0
    assert A.time_to_alarm([None], [60.0]).times_s == []


def _row(cls: str, pre: list[tuple[float, int]], post: list[tuple[float, int]], *,
         detected: bool | None, exposure: float = 86400.0) -> dict:
    name = "catheter_baseline_pa"
    return {"fault_class": cls, "evaluable": detected is not None, "detected": detected,
            "observe_s": 3600.0, "exposure_s": exposure,
            f"sweep_{name}_pre": [{"t_s": t, "v": v} for t, v in pre],
            f"sweep_{name}_post": [{"t_s": t, "v": v} for t, v in post]}


def test_roc_sweeps_the_baseline_threshold() -> None:
    stat = BY_NAME["catheter_baseline_pa"]
    rows = [
        # fault-free: a dip to 700 Pa at 10 h (a false alarm for thresholds above 700)
        _row("none", [(0.0, 1300), (36000.0, 700)], [], detected=None),
        _row("none", [(0.0, 1250)], [], detected=None),
        # dislodged: 300 Pa at 10 min (caught by 650), 680 Pa (missed by 650, caught by 700)
        _row("d", [(0.0, 1300)], [(600.0, 300)], detected=True),
        _row("d", [(0.0, 1300)], [(600.0, 680)], detected=False),
        _row("d", [(0.0, 1300)], [(7200.0, 300)], detected=False),   # after the observe time
    ]
    (curve,) = A.roc(stat, rows, [("d", "dislodgement")])
    i = curve.firmware_index
    assert curve.thresholds[i] == 650.0
    assert curve.sensitivity[i] == pytest.approx(1 / 3) and curve.fa_per_year[i] == 0.0
    j = curve.thresholds.index(701.0)
    assert curve.sensitivity[j] == pytest.approx(2 / 3)
    # one false alarm; at risk: 10 h in the first run, the 24 h exposure of each other run
    # (the faulted runs' fault-free time before their onsets counts too)
    assert curve.fa_per_year[j] == pytest.approx(1 / ((36000 + 4 * 86400) / A.S_PER_YEAR))
    assert curve.agreement.k == 3            # replay at 650 Pa == the firmware's verdicts
    assert curve.sensitivity == sorted(curve.sensitivity)   # more lenient: never less sensitive
    assert A.fmt_duration(None) == "not reached" and A.fmt_duration(90.0) == "90 s"
