"""The simulation report's figures (matplotlib ``Figure`` objects, no pyplot state).

Each function takes a :class:`~pumphil.recording.Recording` and its JSON report and returns a
Figure; :mod:`pumphil.report` saves them as PNG files and :mod:`pumphil.report_html` embeds the
same figures in the HTML page, so the two always show the same thing.

Units are the ones people read: mL for the reservoir, mg/day for doses (ug/day for a drug whose
hard limit is below 1 mg/day, e.g. ziconotide), minutes around an alarm, days on time axes.
"""

from __future__ import annotations

from typing import Any

from pumphost.units import dose_unit

from .recording import Recording, alarm_intervals
from .report import DENIAL_KEYS, per_day_counts
from .scenario import FAULT_ALARMS, MS_PER_DAY, MS_PER_H, format_ms

PRIORITY_COLOURS = {"high": "tab:red", "medium": "tab:orange", "low": "tab:olive"}
FAULT_COLOUR = "#555"
#: pressure windows drawn (one panel each)
MAX_PRESSURE_PANELS = 6


def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def _fault_events(rec: Recording) -> list[tuple[int, str]]:
    return [(e.at_ms, e.action) for e in rec.scenario.events if e.action in FAULT_ALARMS]


def _mark_faults(ax: Any, rec: Recording, scale_ms: int, label: bool = True) -> bool:
    """Vertical dotted lines at the scenario's fault injections (x in units of scale_ms)."""
    faults = _fault_events(rec)
    for k, (t, action) in enumerate(faults):
        ax.axvline(t / scale_ms, color=FAULT_COLOUR, ls=":", lw=1.0,
                   label="fault injected" if k == 0 and label else None)
        if len(faults) <= 12:
            ax.annotate(action, (t / scale_ms, 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, fontsize=6.5, color=FAULT_COLOUR, va="top", ha="right")
    return bool(faults)


def reservoir(rec: Recording, rep: dict[str, Any]) -> Any:
    sc = rec.scenario
    fig = _figure(8, 3.4)
    ax = fig.add_subplot()
    pts = [(s.t_ms / MS_PER_DAY, s.status["reservoir_nl"] / 1e6) for s in rec.samples
           if s.status is not None and s.status.get("reservoir_nl") is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], drawstyle="steps-post",
                label="reservoir (pump's count)")
    res = sc.rx.get("reservoir") or {}
    for key, label, colour in (("low_alert_nl", "low alert", "tab:olive"),
                               ("empty_nl", "empty", "tab:red"),
                               ("capacity_nl", "capacity", "grey")):
        if isinstance(res.get(key), int):
            ax.axhline(res[key] / 1e6, ls="--", lw=0.8, color=colour, label=label)
    for e in sc.events:
        if e.action == "refill":
            ax.axvline(e.at_ms / MS_PER_DAY, color="tab:blue", ls=":", lw=0.8)
    ax.set_xlabel("day")
    ax.set_ylabel("reservoir (mL)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(0, sc.duration_ms / MS_PER_DAY)
    ax.set_title(f"{rep['scenario']}: reservoir volume (dotted: refills)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def dose_per_day(rec: Recording, rep: dict[str, Any]) -> Any:
    """One panel per drug: the dose each day (the pump's ledger at the catheter tip) against the
    soft and hard limits, and the plant's true largest 24 h."""
    from matplotlib.ticker import MaxNLocator

    names = list(rep["drugs"])
    n = max(1, len(names))
    fig = _figure(8, 2.6 * n)
    axes = fig.subplots(n, 1, squeeze=False)
    days = [d["day"] for d in rep["per_day"]]
    for i, name in enumerate(names):
        ax = axes[i][0]
        d = rep["drugs"][name]
        unit, per = dose_unit(d["hard_limit_ug_per_day"])
        ax.bar(days, [day["drugs_ug"].get(name, 0.0) / per for day in rep["per_day"]],
               color=f"C{i}", label="dose that day (pump)")
        if d["soft_limit_ug_per_day"] is not None:
            ax.axhline(d["soft_limit_ug_per_day"] / per, color="tab:orange", ls="--", lw=1.0,
                       label=f"soft limit {d['soft_limit_ug_per_day'] / per:g}")
        if d["hard_limit_ug_per_day"] is not None:
            ax.axhline(d["hard_limit_ug_per_day"] / per, color="tab:red", lw=1.2,
                       label=f"hard limit {d['hard_limit_ug_per_day'] / per:g}")
        if d["peak_24h_ug"]:
            ax.axhline(d["peak_24h_ug"] / per, color="black", ls=":", lw=1.0,
                       label=f"true peak 24 h {d['peak_24h_ug'] / per:.4g}")
        ax.set_ylabel(f"{name} ({unit})")
        ax.set_xlabel("day")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[0][0].set_title(f"{rep['scenario']}: dose per drug per day, at the catheter tip")
    return fig


def patient_bolus(rec: Recording, rep: dict[str, Any]) -> Any:
    from matplotlib.ticker import MaxNLocator

    counts = per_day_counts(rec)
    fig = _figure(8, 3.4)
    ax = fig.add_subplot()
    bottom = [0] * len(counts)
    series = [("delivered", "delivered")] + [("denied." + k, "denied: " + k)
                                             for k in DENIAL_KEYS]
    for j, (key, label) in enumerate(series):
        vals = [c.get(key, 0) for c in counts]
        if any(vals) or key == "delivered":
            ax.bar(range(len(counts)), vals, bottom=bottom, label=label, color=f"C{j}")
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xlabel("day")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("patient-bolus requests")
    ax.set_title(f"{rep['scenario']}: patient boluses (delivered / denied by reason)")
    ax.legend(fontsize=7)
    return fig


def alarms(rec: Recording, rep: dict[str, Any]) -> Any:
    """The alarm timeline: one row per code, bars coloured by priority (legend), the scenario's
    fault injections as dotted lines."""
    from matplotlib.patches import Patch

    sc = rec.scenario
    ivs = alarm_intervals(rec)
    codes: list[str] = []
    for a in ivs:
        if a["code"] not in codes:
            codes.append(a["code"])
    fig = _figure(8, 1.6 + 0.45 * max(1, len(codes)))
    ax = fig.add_subplot()
    for a in ivs:
        end = a["cleared_ms"] if a["cleared_ms"] is not None else sc.duration_ms
        ax.barh(codes.index(a["code"]), max(end - a["raised_ms"], MS_PER_H // 6) / MS_PER_DAY,
                left=a["raised_ms"] / MS_PER_DAY,
                color=PRIORITY_COLOURS.get(str(a["priority"]), "grey"))
    ax.set_yticks(range(len(codes)), codes)
    if not codes:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no alarm was raised", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_ylim(-0.7, max(1, len(codes)) - 0.3)
    ax.set_xlim(0, sc.duration_ms / MS_PER_DAY)
    ax.set_xlabel("day")
    handles: list[Any] = [Patch(color=c, label=f"{p} priority")
                          for p, c in PRIORITY_COLOURS.items()]
    if _mark_faults(ax, rec, MS_PER_DAY):
        handles.append(ax.get_legend_handles_labels()[0][0])
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(f"{rep['scenario']}: alarms (bar: raised until cleared or the end)")
    return fig


def pressure(rec: Recording, rep: dict[str, Any], only: int | None = None) -> Any:
    """The pressure the firmware sampled around each alarm (up to MAX_PRESSURE_PANELS panels;
    ``only``: the window of that index alone). Says why a window is empty: no alarm at all, or
    no samples (the board was off, or the alarm came at the very start)."""
    wins = rec.pressure if only is None else rec.pressure[only:only + 1]
    shown = wins[:MAX_PRESSURE_PANELS]
    n = max(1, len(shown))
    fig = _figure(8, 2.5 * n)
    axes = fig.subplots(n, 1, squeeze=False)
    faults = _fault_events(rec)
    for i, w in enumerate(shown):
        ax = axes[i][0]
        if w.trace:
            ax.plot([(t - w.raised_ms) / 60000 for t, _ in w.trace], [p for _, p in w.trace],
                    ".", ms=1.5, label="pressure samples")
        else:
            ax.text(0.5, 0.5, "no pressure samples in this window (board off or not sensing)",
                    ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.axvline(0, color="tab:red", lw=1.0, label="alarm raised")
        lo, hi = (w.trace[0][0], w.trace[-1][0]) if w.trace else (w.raised_ms, w.raised_ms)
        for t, action in faults:
            if lo - 60000 <= t <= hi + 60000:
                ax.axvline((t - w.raised_ms) / 60000, color=FAULT_COLOUR, ls=":", lw=1.0,
                           label=f"{action} injected")
        ax.set_ylabel("Pa")
        ax.set_xlabel("minutes from the alarm")
        ax.set_title(f"{w.code} raised at {format_ms(w.raised_ms)}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    if not wins:
        ax = axes[0][0]
        raised = len(alarm_intervals(rec))
        ax.text(0.5, 0.5, "no alarms: no pressure windows" if not raised else
                f"{raised} alarm(s), but no pressure windows were recorded",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{rep['scenario']}: pressure around alarms")
    elif len(wins) > len(shown):
        axes[0][0].set_title(f"{rep['scenario']}: pressure around the first {len(shown)} of "
                             f"{len(wins)} alarm windows\n" + axes[0][0].get_title(), fontsize=9)
    return fig


#: PNG file name -> figure function (report.write_plots)
FIGURES = {
    "reservoir.png": reservoir,
    "dose_per_day.png": dose_per_day,
    "patient_bolus.png": patient_bolus,
    "alarms.png": alarms,
    "pressure.png": pressure,
}

__all__ = ["FIGURES", "alarms", "dose_per_day", "dose_unit", "patient_bolus", "pressure",
           "reservoir"]
