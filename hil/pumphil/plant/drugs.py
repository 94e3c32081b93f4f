"""The plant's drug truth: how much of each drug really reached the catheter tip, and its peak in
any 24-h window (the figure the pump's hard limits must bound; docs/simulate.md).

Written independently of the firmware's catheter and ledger (pumpcore): from the plant's own
tip-output curve (the line physics: compliance, occlusion, leak) and the reservoir's admixture
history, with these assumptions (documented in docs/emulator.md):

- Plug flow in pumped order: the fluid leaving the tip is the fluid the mechanism stroked, in the
  order it was stroked, after the catheter's dead volume (``catheter_nl``, empty at implant: the
  first ``catheter_nl`` nL out of the tip carry no drug, they are the priming fill).
- A leak near the pump only lowers what comes out of the tip; the order is kept.
- The reservoir's admixture changes at a refill that names one (``Plant.refill(admixture=...)``);
  fluid stroked before the first named admixture carries no drug.
- Amounts: ng = nL x ug/mL / 1000 (float).

The peak of a 24-h window is evaluated for the windows that end at each tip-output point, with the
window's start taken at the last point not after it: an upper bound of the true peak by at most
what left the tip between two consecutive points (about one stroke).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DAY_MS = 86_400_000


def tip_amounts(tip_cum_nl: Sequence[float], admixtures: Sequence[tuple[float, dict[str, float]]],
                catheter_nl: float) -> dict[str, np.ndarray]:
    """Cumulative ng of each drug out of the tip at each tip-output point."""
    drugs = sorted({d for _, mix in admixtures for d in mix})
    x = np.asarray(tip_cum_nl, dtype=float) - catheter_nl     # position in the stroked stream
    top = float(x.max()) + 1.0 if x.size else 1.0
    out: dict[str, np.ndarray] = {}
    for d in drugs:
        # F_d(p): ng of drug d in the first p nL of the stroked stream, piecewise linear with a
        # knot at every admixture change; 0 before the first named admixture
        knots_p = [0.0]
        knots_f = [0.0]
        for k, (p, mix) in enumerate(admixtures):
            end = admixtures[k + 1][0] if k + 1 < len(admixtures) else max(top, p)
            if end <= p:
                continue                             # replaced at once by the next refill
            if p > knots_p[-1]:
                knots_p.append(p)
                knots_f.append(knots_f[-1])
            knots_p.append(end)
            knots_f.append(knots_f[-1] + (end - p) * mix.get(d, 0.0) / 1000.0)
        out[d] = np.interp(np.maximum(x, 0.0), knots_p, knots_f)
    return out


def peak_window(tip_t_ms: Sequence[int], cum_ng: Sequence[float] | np.ndarray,
                window_ms: int = DAY_MS) -> tuple[float, int | None]:
    """(largest amount in any window_ms, the time the window ends) over the tip-output points."""
    t = np.asarray(tip_t_ms, dtype=np.int64)
    c = np.asarray(cum_ng, dtype=float)
    if t.size == 0:
        return 0.0, None
    j = np.searchsorted(t, t - window_ms, side="right") - 1     # last point <= t_i - window
    start = np.where(j >= 0, c[np.maximum(j, 0)], 0.0)
    amount = c - start
    i = int(np.argmax(amount))
    if amount[i] <= 0.0:
        return 0.0, None
    return float(amount[i]), int(t[i])


def peak_24h_ng(tip_t_ms: Sequence[int], tip_cum_nl: Sequence[float],
                admixtures: Sequence[tuple[float, dict[str, float]]],
                catheter_nl: float) -> dict[str, tuple[float, int | None]]:
    """{drug: (peak ng in any 24 h at the tip, end of that window in plant ms)}."""
    amounts = tip_amounts(tip_cum_nl, admixtures, catheter_nl)
    return {d: peak_window(tip_t_ms, cum) for d, cum in amounts.items()}
