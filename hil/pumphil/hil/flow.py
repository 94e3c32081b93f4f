"""Flow accuracy the way IEC 60601-2-24 measures it (gravimetric, sample interval S = 0.5 min).

From balance readings W_0..W_n (g) taken every S minutes from the start of the infusion:
  * flow per interval  Q_i = 60 (W_i - W_{i-1}) / (S d)        [uL/h with W in mg]
    -> the **start-up curve** (Q_i against time over the whole test period);
  * in the analysis period (the second hour by default, T1 = 60 min to T2 = 120 min), for each
    observation window P in 2, 5, 11, 19, 31 min (m = P/S intervals) the mean error of every
    window of m consecutive intervals, Ep_j = (100/m) sum (Q_i - r)/r, and its extremes
    **Ep(max)** and **Ep(min)** -> the **trumpet curve**;
  * the **overall accuracy** A = 100 (Q - r)/r with Q the mean flow over the analysis period.
d is the test fluid's density (g/mL), r the set rate. This module only computes; limits are the
suite's (``trumpet_limit_pct``) and the measurements carry them.

IEC 60601-2-24 excludes implantable pumps (ISO 14708-4 covers them); the project uses its method
because test engineers know it and the figures are comparable (docs/hil.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SAMPLE_S = 30
WINDOWS_MIN = (2, 5, 11, 19, 31)


@dataclass(frozen=True)
class FlowAnalysis:
    rate_ul_per_h: float
    sample_s: int
    t_min: list[float]                 # end of each interval (min from the start)
    flow_ul_per_h: list[float]         # Q_i: the start-up curve
    analysis_min: tuple[float, float]  # (T1, T2)
    trumpet: dict[int, tuple[float, float]]   # P (min) -> (Ep(max) %, Ep(min) %)
    overall_pct: float                 # A
    mean_flow_ul_per_h: float          # Q over the analysis period


def analyse(masses_g: Sequence[float], rate_ul_per_h: float, density_g_per_ml: float = 1.0,
            sample_s: int = SAMPLE_S, analysis_start_min: float = 60.0,
            analysis_end_min: float | None = None,
            windows_min: Sequence[int] = WINDOWS_MIN) -> FlowAnalysis:
    """masses_g[k] is the reading at k x sample_s from the start (masses_g[0] at the start)."""
    if rate_ul_per_h <= 0:
        raise ValueError("the set rate must be > 0")
    if density_g_per_ml <= 0:
        raise ValueError("the density must be > 0")
    n = len(masses_g) - 1
    s_min = sample_s / 60.0
    end = analysis_end_min if analysis_end_min is not None else n * s_min
    k1 = round(analysis_start_min / s_min)
    k2 = round(end / s_min)
    if not 0 <= k1 < k2 <= n:
        raise ValueError(f"analysis period {analysis_start_min}-{end} min is not inside the "
                         f"{n * s_min:g} min of readings")
    # (mg per interval) / (S min) -> mg/min; x60 -> mg/h; / d -> uL/h
    flows = [(masses_g[i] - masses_g[i - 1]) * 1000.0 / s_min * 60.0 / density_g_per_ml
             for i in range(1, n + 1)]
    r = rate_ul_per_h
    errors = [(q - r) / r for q in flows[k1:k2]]      # intervals k1+1..k2
    trumpet: dict[int, tuple[float, float]] = {}
    for p in windows_min:
        m = round(p / s_min)
        if m > len(errors):
            continue
        acc = sum(errors[:m])
        means = [acc]
        for j in range(m, len(errors)):
            acc += errors[j] - errors[j - m]
            means.append(acc)
        trumpet[p] = (100.0 * max(means) / m, 100.0 * min(means) / m)
    t_span_h = (k2 - k1) * s_min / 60.0
    q = (masses_g[k2] - masses_g[k1]) * 1000.0 / density_g_per_ml / t_span_h
    return FlowAnalysis(rate_ul_per_h=r, sample_s=sample_s,
                        t_min=[i * s_min for i in range(1, n + 1)], flow_ul_per_h=flows,
                        analysis_min=(k1 * s_min, k2 * s_min), trumpet=trumpet,
                        overall_pct=100.0 * (q - r) / r, mean_flow_ul_per_h=q)


def trumpet_limit_pct(accuracy_pct: float, window_min: float, rate_ul_per_h: float,
                      stroke_ul: float, balance_uncertainty_mg: float,
                      density_g_per_ml: float = 1.0) -> float:
    """The limit the suite puts on |Ep| for window P: the documented accuracy, plus what a window
    of a stroke pump cannot resolve (one stroke more or less falls in it), plus the balance's
    uncertainty at both ends of the window, each as % of the volume the window should hold."""
    window_ul = rate_ul_per_h * window_min / 60.0
    extra_ul = stroke_ul + 2.0 * balance_uncertainty_mg / density_g_per_ml
    return accuracy_pct + 100.0 * extra_ul / window_ul
