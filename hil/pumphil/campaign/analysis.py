"""Campaign figures from the results table: sensitivity, time to alarm, false alarms, ROC.

Definitions (docs/campaigns.md, "Figures"):
- sensitivity of a fault class = detected / evaluable runs (the class's alarm raised after the
  onset, within the run's ``observe`` time), with a Wilson score interval
  (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``);
- time to alarm: the Kaplan-Meier estimate over the evaluable runs, a missed run censored at its
  observation time (``scipy.stats.ecdf`` on ``CensoredData``); the median and the 95th percentile
  are read from it and are "not reached" when fewer than half / 95 % of the runs were detected
  in time: a miss never shortens the figure. The same figures over detected runs only are given
  beside them, labelled so;
- false alarms per patient-year: runs that had a false alarm divided by the fault-free therapy
  time at risk (each run's time until its first false alarm, or its whole exposure): the
  maximum-likelihood rate of a Poisson process, with the exact (Garwood, chi-square) interval;
- ROC of a statistic: for thresholds T across the recorded values, the replayed rule's
  sensitivity (per fault class) against its false alarms per patient-year, computed the same way
  from the record points (statistics.py), with the firmware's threshold marked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from .statistics import ABOVE, STATISTICS, Statistic, first_crossing

S_PER_YEAR = 365.25 * 86400
CONF = 0.95


@dataclass(frozen=True)
class Proportion:
    k: int
    n: int
    lo: float | None
    hi: float | None

    @property
    def p(self) -> float | None:
        return self.k / self.n if self.n else None


def wilson(k: int, n: int, conf: float = CONF) -> Proportion:
    """k of n with its Wilson score interval (None bounds when n = 0)."""
    if n == 0:
        return Proportion(0, 0, None, None)
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    return Proportion(k, n, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class Rate:
    events: int
    years: float
    lo: float | None
    hi: float | None

    @property
    def per_year(self) -> float | None:
        return self.events / self.years if self.years > 0 else None


def poisson_rate(events: int, years: float, conf: float = CONF) -> Rate:
    """Events per year with the exact (Garwood) interval; None bounds without exposure."""
    if years <= 0:
        return Rate(events, years, None, None)
    a = 1 - conf
    lo = 0.0 if events == 0 else float(sps.chi2.ppf(a / 2, 2 * events)) / 2 / years
    hi = float(sps.chi2.ppf(1 - a / 2, 2 * events + 2)) / 2 / years
    return Rate(events, years, lo, hi)


@dataclass(frozen=True)
class TimeToAlarm:
    n: int                         # evaluable runs
    detected: int
    times_s: list[float]           # step points of the cumulative detection curve
    fraction: list[float]          # cumulative fraction detected at each time (Kaplan-Meier)
    median_s: float | None         # None: not reached (fewer than half detected in time)
    p95_s: float | None
    median_detected_s: float | None   # over detected runs only
    p95_detected_s: float | None


def _quantile(times: Sequence[float], frac: Sequence[float], q: float) -> float | None:
    for t, f in zip(times, frac, strict=True):
        if f >= q - 1e-12:
            return float(t)
    return None


def time_to_alarm(tta_s: Iterable[float | None], observe_s: Iterable[float]) -> TimeToAlarm:
    """tta_s: per evaluable run, seconds to the alarm or None (missed: censored at observe_s)."""
    det: list[float] = []
    cens: list[float] = []
    for t, obs in zip(tta_s, observe_s, strict=True):
        (det if t is not None else cens).append(t if t is not None else obs)
    n = len(det) + len(cens)
    if not det:
        return TimeToAlarm(n, 0, [], [], None, None, None, None)
    data = sps.CensoredData(uncensored=np.array(det, dtype=np.float64),
                            right=np.array(cens, dtype=np.float64))
    cdf = sps.ecdf(data).cdf
    times = [float(x) for x in cdf.quantiles]
    frac = [float(x) for x in cdf.probabilities]
    d = np.array(det, dtype=np.float64)
    # the same quantile definition over detected runs only: the smallest time reaching q
    return TimeToAlarm(n, len(det), times, frac, _quantile(times, frac, 0.5),
                       _quantile(times, frac, 0.95),
                       float(np.quantile(d, 0.5, method="inverted_cdf")),
                       float(np.quantile(d, 0.95, method="inverted_cdf")))


# --- ROC ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RocCurve:
    stat: Statistic
    fault_class: str
    thresholds: list[float]
    sensitivity: list[float]
    fa_per_year: list[float]
    firmware_index: int            # index of the firmware threshold in the lists
    runs: int                      # evaluable runs of the class
    agreement: Proportion          # replay at the firmware threshold == firmware verdict


def _segments(rows: Sequence[dict[str, Any]], col: str) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for r in rows:
        recs = r.get(col) or []
        out.append((np.array([x["t_s"] for x in recs], float), np.array([x["v"] for x in recs],
                                                                        float)))
    return out


def _crossing_times(stat: Statistic, segs: list[tuple[np.ndarray, np.ndarray]],
                    thresholds: np.ndarray) -> np.ndarray:
    """times[run, threshold]: first crossing in seconds (inf: none). Record values are monotone
    (increasing for ABOVE, decreasing for BELOW), so each run is one searchsorted."""
    out = np.full((len(segs), len(thresholds)), np.inf)
    for i, (t, v) in enumerate(segs):
        if len(v) == 0:
            continue
        if stat.direction == ABOVE:        # v increasing: first index with v >= T
            idx = np.searchsorted(v, thresholds, side="left")
        else:                              # v decreasing: first index with v < T
            idx = np.searchsorted(-v, -thresholds, side="right")
        ok = idx < len(v)
        out[i, ok] = t[idx[ok]]
    return out


def threshold_grid(stat: Statistic, rows: Sequence[dict[str, Any]], points: int = 120) -> np.ndarray:
    """Thresholds at recorded values (their quantiles: values that occurred), the firmware's
    threshold included."""
    vals = [x["v"] for r in rows for col in (f"sweep_{stat.name}_pre", f"sweep_{stat.name}_post")
            for x in (r.get(col) or []) if abs(x["v"]) < (1 << 29)]
    if not vals:
        return np.array([float(stat.threshold)])
    v = np.array(vals, float)
    qs = np.unique(np.quantile(v, np.linspace(0, 1, points), method="inverted_cdf"))
    # integer statistics: x >= T catches the value T itself, x < T needs T one above it
    at = qs if stat.direction == ABOVE else qs + 1
    return np.unique(np.concatenate([at, [float(stat.threshold), v.min() - 1, v.max() + 1]]))


def roc(stat: Statistic, rows: Sequence[dict[str, Any]],
        classes: Sequence[tuple[str, str]]) -> list[RocCurve]:
    """One curve per (fault class, its expected alarm) in ``classes`` whose alarm the
    statistic's rule raises. rows: the results table as dicts (status ok only)."""
    grid = threshold_grid(stat, rows)
    fw = int(np.searchsorted(grid, float(stat.threshold)))
    # false alarms: every run's fault-free segment, at risk until its first crossing
    fa_rows = [r for r in rows if (r.get("exposure_s") or 0) > 0]
    exp = np.array([r["exposure_s"] for r in fa_rows], float)
    pre = _crossing_times(stat, _segments(fa_rows, f"sweep_{stat.name}_pre"), grid)
    crossed = pre < exp[:, None]
    at_risk = np.where(crossed, pre, exp[:, None]).sum(axis=0) / S_PER_YEAR
    fa = np.where(at_risk > 0, crossed.sum(axis=0) / np.maximum(at_risk, 1e-300), 0.0)
    curves = []
    for name, alarm in classes:
        if alarm not in stat.alarms:
            continue
        cr = [r for r in rows if r["fault_class"] == name and r.get("evaluable")]
        if not cr:
            continue
        obs = np.array([r["observe_s"] for r in cr], float)
        post = _crossing_times(stat, _segments(cr, f"sweep_{stat.name}_post"), grid)
        sens = (post <= obs[:, None]).mean(axis=0)
        agree = 0
        for r in cr:
            t = first_crossing(stat, r.get(f"sweep_{stat.name}_post") or [], stat.threshold)
            agree += (t is not None and t <= r["observe_s"]) == bool(r.get("detected"))
        curves.append(RocCurve(stat, name, [float(x) for x in grid], [float(x) for x in sens],
                               [float(x) for x in fa], fw, len(cr), wilson(agree, len(cr))))
    return curves


def all_roc(rows: Sequence[dict[str, Any]], classes: Sequence[tuple[str, str]]
            ) -> list[list[RocCurve]]:
    return [roc(st, rows, classes) for st in STATISTICS]


def fmt_duration(s: float | None) -> str:
    """Seconds -> "42 s", "7.5 min", "3.2 h", "2.1 d"; "not reached" for None."""
    if s is None or (isinstance(s, float) and math.isinf(s)):
        return "not reached"
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"
