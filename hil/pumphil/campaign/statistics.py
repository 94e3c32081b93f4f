"""Which detector statistic feeds which alarm, its firmware threshold, and the offline sweep.

A statistic is one number per observation (a judged stroke or a sensing window) that a detector
compares with a threshold (docs/detectors.md). Each entry of STATISTICS says where the number
comes from (the probe's columns), the direction in which it is abnormal, the firmware's threshold
(read from the firmware's own constants: one source of truth) and how many consecutive abnormal
observations the firmware's rule needs (``persistence``).

Offline sweep. For a threshold T, the replayed rule alarms at the first observation that
completes ``persistence`` consecutive abnormal ones. Per run and per segment (before the fault's
onset, and from the onset to the end) the run keeps only the *record points* of the filtered
statistic — each time it reaches a new extreme, (time, value) — which answer exactly, for every
T, whether and when the replayed rule would first have alarmed. That is what
``sweep_<name>_pre`` / ``sweep_<name>_post`` hold in the results table; the full per-observation
tables are kept in DIR/stats/ for any other analysis.

The replay is one rule with one threshold moved; the firmware combines rules (occlusion
precedence, the leaky SLOW counter, short-capture pairs, re-learning of the reference). The
report therefore shows the firmware's own verdicts as the operating point, next to the replayed
point at the firmware threshold, and states how often the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pumpcore import detect_catheter as dc
from pumpcore import detect_occlusion as do

from .probe import MISSING

ABOVE = "above"      # abnormal when x >= T
BELOW = "below"      # abnormal when x < T

#: one observation: (t_ms from t=0, value) or None when this row is not an observation
Extract = Callable[[Mapping[str, Any], int], int | None]


def _catheter_baseline(w: Mapping[str, Any], i: int) -> int | None:
    if w["wclass"][i] == dc.W_SKIPPED:
        return None
    return int(w["baseline_pa"][i])


def _elev_stroke(s: Mapping[str, Any], i: int) -> int | None:
    # the elevation rule applies to strokes that are not NORMAL, once a reference exists
    if s["cls"][i] == do.NORMAL or s["elev_pa"][i] == MISSING:
        return None
    return int(s["elev_pa"][i])


def _occlusion_elev_window(w: Mapping[str, Any], i: int) -> int | None:
    # ... and to non-pulsatile windows
    if w["pulsatile"][i] or w["occ_elev_pa"][i] == MISSING:
        return None
    return int(w["occ_elev_pa"][i])


def _occlusion_smoothness(s: Mapping[str, Any], i: int) -> int | None:
    # full captures only; a stroke whose decay ratio is below FLAT_RATIO_PCT is a normal-looking
    # stroke: a huge residual (it breaks a run of smooth strokes, as a non-FLAT stroke does)
    if s["n"][i] < do.CAPTURE_N or s["cls"][i] == do.INVISIBLE:
        return None
    if s["ratio_pct"][i] < do.FLAT_RATIO_PCT or s["resid_pa"][i] < 0:
        return 1 << 30
    return int(s["resid_pa"][i])


@dataclass(frozen=True)
class Statistic:
    name: str
    title: str
    unit: str
    alarms: tuple[str, ...]          # alarm codes the rule raises (fault kinds it should find)
    direction: str                   # ABOVE or BELOW
    threshold: int                   # the firmware's threshold (its constant)
    persistence: int                 # consecutive abnormal observations the rule needs
    strokes: Extract | None          # from the probe's stroke rows (None: not from strokes)
    windows: Extract | None          # from the probe's window rows
    rule: str                        # the replayed rule in words (report)

    def abnormal(self, x: float, t: float) -> bool:
        return x >= t if self.direction == ABOVE else x < t


STATISTICS: tuple[Statistic, ...] = (
    Statistic("catheter_baseline_pa", "window baseline (dislodgement, leak)", "Pa",
              (dc.DISLODGEMENT, dc.LEAK), BELOW, dc.BASELINE_LOW_PA, dc.ABNORMAL_RUN,
              None, _catheter_baseline,
              f"window mean below T for {dc.ABNORMAL_RUN} consecutive windows (firmware "
              f"T = {dc.BASELINE_LOW_PA} Pa; occlusion precedence not replayed)"),
    Statistic("occlusion_elevation_pa", "pressure elevation over the reference (occlusion)", "Pa",
              (do.CODE,), ABOVE, do.ELEV_ALARM_PA, 1, _elev_stroke, _occlusion_elev_window,
              f"pre-stroke level of a non-NORMAL stroke, or a non-pulsatile window's mean, at "
              f"least T above the learned reference (firmware T = {do.ELEV_ALARM_PA} Pa)"),
    Statistic("occlusion_smoothness_pa", "residual of smooth, slow strokes (occlusion)", "Pa",
              (do.CODE,), BELOW, do.SMOOTH_RESID_PA, 2, _occlusion_smoothness, None,
              f"{2} consecutive full captures with decay ratio >= {do.FLAT_RATIO_PCT} % and "
              f"quadratic residual below T (the FLAT pair; firmware T = {do.SMOOTH_RESID_PA} Pa; "
              f"the leaky SLOW counter is not replayed)"),
)
BY_NAME = {s.name: s for s in STATISTICS}


def observations(stat: Statistic, strokes: Mapping[str, Sequence[int]],
                 windows: Mapping[str, Sequence[int]]) -> list[tuple[int, int]]:
    """(t_ms, value) of every observation of ``stat`` in time order (t >= 0 only: set-up and
    priming are not part of the run)."""
    obs: list[tuple[int, int]] = []
    for rows, ex in ((strokes, stat.strokes), (windows, stat.windows)):
        if ex is None:
            continue
        ts = rows["t_ms"]
        for i in range(len(ts)):
            if ts[i] < 0:
                continue
            v = ex(rows, i)
            if v is not None:
                obs.append((int(ts[i]), v))
    obs.sort(key=lambda o: o[0])
    return obs


def records(stat: Statistic, obs: Sequence[tuple[int, int]], t_from_ms: int,
            t_to_ms: int | None) -> list[tuple[float, int]]:
    """Record points of the persistence-filtered statistic within [t_from, t_to): (seconds from
    t_from, value), each a new extreme in the abnormal direction. The filter takes the least
    abnormal of the last ``persistence`` observations (observations before t_from still count
    towards a run that completes after it)."""
    k = stat.persistence
    above = stat.direction == ABOVE
    out: list[tuple[float, int]] = []
    best: int | None = None
    window: list[int] = []
    for t, v in obs:
        if t_to_ms is not None and t >= t_to_ms:
            break
        window.append(v)
        if len(window) > k:
            window.pop(0)
        if len(window) < k or t < t_from_ms:
            continue
        f = min(window) if above else max(window)
        if best is None or (f > best if above else f < best):
            best = f
            out.append(((t - t_from_ms) / 1000.0, f))
    return out


def first_crossing(stat: Statistic, recs: Sequence[Any], threshold: float) -> float | None:
    """Seconds (from the segment's start) at which the replayed rule first alarms at
    ``threshold``, or None. ``recs``: record points as from :func:`records` (pairs or dicts)."""
    for r in recs:
        t, v = (r["t_s"], r["v"]) if isinstance(r, dict) else r
        if stat.abnormal(v, threshold):
            return float(t)
    return None
