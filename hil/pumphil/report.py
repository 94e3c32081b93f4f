"""Simulation report: the JSON report of the issue-4 contract, a human summary and PNG plots.

The runner (:mod:`pumphil.simulate`) fills a :class:`Recording` with what it read through the
protocol (status samples, event-log entries, the results of the scenario's actions) and the
emulator's pressure samples around alarms; this module turns it into:

- :func:`build_report` -> the JSON-able dict of the contract (docs/simulate.md);
- :func:`summary_text` -> the human summary `itpump simulate` prints;
- :func:`write_plots` -> PNG files (matplotlib, Agg backend; imported only here, lazily).

Semantics (contract): day k covers [k*24 h, (k+1)*24 h) from t=0; volumes are what left the pump
(the pump's ``delivered_nl`` = strokes x stroke volume drawn from the reservoir), counted from t=0
(the priming before t=0 is not counted); drug amounts are what left the catheter tip (the pump's
``delivered_drug``), also from t=0. No wall-clock value enters the report, so the same scenario
and seed give the same report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pumpcore import reasons

from .scenario import MS_PER_DAY, MS_PER_H, Scenario, format_ms

DENIAL_KEYS = tuple(reasons.PATIENT_BOLUS_DENIALS)


@dataclass
class Sample:
    """One status read through the protocol at ``t_ms`` (ms from t=0); ``status`` None when the
    pump did not answer (powered off)."""

    t_ms: int
    status: dict[str, Any] | None


@dataclass
class ActionResult:
    t_ms: int
    action: str
    result: str            # "ok" or the pump's reason code (or "error: ..." for the plant)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class PressureWindow:
    """Pressure the firmware sampled around one alarm: (ms from t=0, Pa) pairs."""

    code: str
    raised_ms: int
    trace: list[tuple[int, int]]


@dataclass
class Recording:
    scenario: Scenario
    stroke_nl: int
    samples: list[Sample] = field(default_factory=list)   # ascending t_ms
    log: list[dict[str, Any]] = field(default_factory=list)  # entries + "t_ms" (from t=0)
    actions: list[ActionResult] = field(default_factory=list)
    pressure: list[PressureWindow] = field(default_factory=list)
    baseline: dict[str, Any] | None = None    # status at t=0 before anything happened
    # the plant's truth: {drug: (peak ng in any 24 h at the catheter tip, end of that window in
    # ms from t=0 or None)}; and the hard limit (ng/day) of the last program the pump accepted
    peak_24h_ng: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    hard_limit_ng: dict[str, int | None] = field(default_factory=dict)
    # resets after t=0 as the emulator saw them: (ms from t=0, cause); None: take them from the
    # pump's log
    resets: list[tuple[int, str]] | None = None


# --- helpers --------------------------------------------------------------------------------------
def _ul(nl: int) -> float:
    return round(nl / 1000, 3)


def _ug(ng: int) -> float:
    return round(ng / 1000, 3)


def _drug_ng(status: dict[str, Any] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    if not status:
        return out
    for name, pair in (status.get("delivered_drug") or {}).items():
        if isinstance(pair, list) and len(pair) == 2:
            out[name] = int(pair[0]) * 1000 + int(pair[1])
    return out


def _counters(status: dict[str, Any] | None) -> tuple[int, dict[str, int], dict[str, int]]:
    """(delivered_nl, drug ng, patient-bolus counters flattened) of one status."""
    if not status:
        return 0, {}, {}
    pb = status.get("patient_bolus") or {}
    flat = {"requested": int(pb.get("requested", 0)), "delivered": int(pb.get("delivered", 0))}
    for k, v in (pb.get("denied") or {}).items():
        flat["denied." + k] = int(v)
    return int(status.get("delivered_nl") or 0), _drug_ng(status), flat


def status_at(rec: Recording, t_ms: int) -> dict[str, Any] | None:
    """The first answered status sampled at or after t_ms (before any action at that time),
    else the last answered one (None if there is none)."""
    last = None
    for s in rec.samples:
        if s.status is None:
            continue
        if s.t_ms >= t_ms:
            return s.status
        last = s.status
    return last


def boundaries(rec: Recording) -> list[dict[str, Any] | None]:
    """Status at each day boundary 0, 24 h, ..., and at the end (len = days + 1)."""
    sc = rec.scenario
    out = [rec.baseline if rec.baseline is not None else status_at(rec, 0)]
    for k in range(1, sc.days):
        out.append(status_at(rec, k * MS_PER_DAY))
    out.append(final_status(rec))
    return out


def final_status(rec: Recording) -> dict[str, Any] | None:
    for s in reversed(rec.samples):
        if s.status is not None:
            return s.status
    return rec.baseline


def per_day_counts(rec: Recording) -> list[dict[str, int]]:
    """Patient-bolus counters per day (requested, delivered, denied.<reason>)."""
    marks = [_counters(b)[2] for b in boundaries(rec)]
    out = []
    for k in range(len(marks) - 1):
        a, b = marks[k], marks[k + 1]
        out.append({key: max(0, b.get(key, 0) - a.get(key, 0)) for key in sorted(set(a) | set(b))})
    return out


def alarm_intervals(rec: Recording) -> list[dict[str, Any]]:
    """Alarms in the order raised: code, priority, raised/cleared ms from t=0 (cleared None =
    still active at the end). An alarm raised again after clearing is a new interval."""
    out: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    for e in rec.log:
        kind, code = e.get("kind"), e.get("code")
        if not isinstance(code, str):
            continue
        if kind == "alarm_raised":
            if code in open_:
                continue
            prio = (e.get("data") or {}).get("priority")
            iv = {"code": code, "priority": prio, "raised_ms": int(e["t_ms"]), "cleared_ms": None}
            out.append(iv)
            open_[code] = iv
        elif kind == "alarm_cleared" and code in open_:
            open_.pop(code)["cleared_ms"] = int(e["t_ms"])
    return out


# --- the JSON report ------------------------------------------------------------------------------
def build_report(rec: Recording) -> dict[str, Any]:
    """The contract's JSON report (docs/simulate.md) as a dict."""
    sc = rec.scenario
    marks = boundaries(rec)
    cum = [_counters(b) for b in marks]
    names: list[str] = [d["name"] for d in sc.rx.get("drugs") or []]   # prescription order
    for _, drugs, _ in cum:
        for n in sorted(drugs):
            if n not in names:
                names.append(n)
    per_day = []
    for k in range(sc.days):
        (v0, d0, _), (v1, d1, _) = cum[k], cum[k + 1]
        per_day.append({"day": k, "delivered_ul": _ul(max(0, v1 - v0)),
                        "drugs_ug": {n: _ug(max(0, d1.get(n, 0) - d0.get(n, 0))) for n in names}})
    v_first, d_first, pb_first = cum[0]
    v_last, d_last, pb_last = cum[-1]
    denied = {k: pb_last.get("denied." + k, 0) - pb_first.get("denied." + k, 0)
              for k in DENIAL_KEYS}
    final = final_status(rec) or {}
    res_nl = final.get("reservoir_nl")
    return {
        "scenario": sc.name,
        "duration_s": sc.duration_ms // 1000,
        "stroke_nl": rec.stroke_nl,
        "delivered_ul": _ul(max(0, v_last - v_first)),
        "per_day": per_day,
        "drugs": {n: _drug_report(rec, n, d_last.get(n, 0) - d_first.get(n, 0)) for n in names},
        "patient_bolus": {
            "requested": pb_last.get("requested", 0) - pb_first.get("requested", 0),
            "delivered": pb_last.get("delivered", 0) - pb_first.get("delivered", 0),
            "denied": denied,
        },
        "alarms": [{"code": a["code"], "priority": a["priority"],
                    "raised_s": a["raised_ms"] / 1000,
                    "cleared_s": None if a["cleared_ms"] is None else a["cleared_ms"] / 1000}
                   for a in alarm_intervals(rec)],
        "resets": [{"t_s": t / 1000, "cause": cause} for t, cause in _resets(rec)],
        "final": {"state": final.get("state"),
                  "reservoir_ul": None if res_nl is None else _ul(int(res_nl))},
    }


def _resets(rec: Recording) -> list[tuple[int, str]]:
    if rec.resets is not None:
        return rec.resets
    return [(e["t_ms"], str(e.get("code"))) for e in rec.log if e.get("kind") == "reset"]


def _drug_report(rec: Recording, name: str, delivered_ng: int) -> dict[str, Any]:
    peak, at = rec.peak_24h_ng.get(name, (0.0, None))
    hard = rec.hard_limit_ng.get(name)
    return {"delivered_ug": _ug(max(0, delivered_ng)),
            "peak_24h_ug": round(peak / 1000, 3),
            "peak_24h_end_s": None if at is None else at / 1000,
            "hard_limit_ug_per_day": None if hard is None else hard / 1000}


def dumps(report: dict[str, Any]) -> str:
    """Canonical JSON text of a report (sorted keys off: the contract's order is kept)."""
    return json.dumps(report, indent=1)


# --- human summary --------------------------------------------------------------------------------
def summary_text(rec: Recording, report: dict[str, Any] | None = None) -> str:
    rep = report if report is not None else build_report(rec)
    sc = rec.scenario
    lines = [f"Scenario: {rep['scenario']}  ({sc.path})",
             (f"  {sc.days} day(s) of virtual time from {sc.start_time:%Y-%m-%d %H:%M} "
             f"(seed {sc.seed}); stroke {rep['stroke_nl']} nL; research/education software, "
             "not a medical device"),
             (f"Delivered: {rep['delivered_ul'] / 1000:.3f} mL left the pump "
             f"({rep['delivered_ul'] / max(1, sc.days):.1f} uL/day on average)")]
    for name, d in rep["drugs"].items():
        per = [day["drugs_ug"].get(name, 0.0) for day in rep["per_day"]]
        lines.append(f"  {name}: {d['delivered_ug']:.1f} ug in total; per day "
                     f"min {min(per):.1f} / mean {sum(per) / max(1, len(per)):.1f} / "
                     f"max {max(per):.1f} ug")
    pb = rep["patient_bolus"]
    den = ", ".join(f"{k} {v}" for k, v in pb["denied"].items() if v) or "none"
    lines.append(f"Patient boluses: {pb['requested']} requested, {pb['delivered']} delivered; "
                 f"denied: {den}")
    if rep["alarms"]:
        lines.append("Alarms:")
        for a in rep["alarms"]:
            cleared = "still active" if a["cleared_s"] is None \
                else "cleared " + format_ms(int(a["cleared_s"] * 1000))
            lines.append(f"  {format_ms(int(a['raised_s'] * 1000))}  {a['code']} "
                         f"({a['priority']}), {cleared}")
    else:
        lines.append("Alarms: none")
    refused = [a for a in rec.actions if a.result != "ok"]
    if refused:
        lines.append("Actions not carried out:")
        for a in refused:
            step = f" ({a.detail['step']} step)" if "step" in a.detail else ""
            lines.append(f"  {format_ms(a.t_ms)}  {a.action}{step}: {a.result}")
    fin = rep["final"]
    res = "unknown" if fin["reservoir_ul"] is None else f"{fin['reservoir_ul'] / 1000:.3f} mL"
    lines.append(f"Final: state {fin['state']}, reservoir {res}")
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------------
PLOTS = ("reservoir.png", "dose_per_day.png", "patient_bolus.png", "alarms.png", "pressure.png")


def write_plots(rec: Recording, out_dir: str | Path,
                report: dict[str, Any] | None = None) -> list[Path]:
    """Write the PNG plots (names in PLOTS) into out_dir; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rep = report if report is not None else build_report(rec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sc = rec.scenario
    title = rep["scenario"]
    paths: list[Path] = []

    def save(fig: Any, name: str) -> None:
        p = out / name
        fig.tight_layout()
        fig.savefig(p, dpi=90, metadata={"Software": None})
        plt.close(fig)
        paths.append(p)

    # reservoir volume over time
    fig, ax = plt.subplots(figsize=(8, 3.5))
    pts = [(s.t_ms / MS_PER_DAY, s.status["reservoir_nl"] / 1e6) for s in rec.samples
           if s.status is not None and s.status.get("reservoir_nl") is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], drawstyle="steps-post")
    res = sc.rx.get("reservoir") or {}
    for key, label in (("low_alert_nl", "low alert"), ("empty_nl", "empty")):
        if isinstance(res.get(key), int):
            ax.axhline(res[key] / 1e6, ls="--", lw=0.8, color="grey")
            ax.text(0, res[key] / 1e6, " " + label, va="bottom", fontsize=7, color="grey")
    ax.set_xlabel("day")
    ax.set_ylabel("reservoir (mL)")
    ax.set_title(f"{title}: reservoir volume")
    ax.set_xlim(0, sc.duration_ms / MS_PER_DAY)
    save(fig, "reservoir.png")

    # dose per drug per day (one panel per drug: units differ by orders of magnitude)
    names = list(rep["drugs"])
    fig, axes = plt.subplots(max(1, len(names)), 1, figsize=(8, 2.4 * max(1, len(names))),
                             squeeze=False)
    days = [d["day"] for d in rep["per_day"]]
    for i, name in enumerate(names):
        ax = axes[i][0]
        ax.bar(days, [d["drugs_ug"].get(name, 0.0) for d in rep["per_day"]], color=f"C{i}")
        ax.set_ylabel(f"{name} (ug/day)")
        ax.set_xlabel("day")
    axes[0][0].set_title(f"{title}: dose per drug per day (at the catheter tip)")
    save(fig, "dose_per_day.png")

    # patient-bolus requests per day: delivered / denied by reason
    counts = per_day_counts(rec)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    bottom = [0] * len(counts)
    series = [("delivered", "delivered")] + [("denied." + k, "denied: " + k)
                                             for k in DENIAL_KEYS]
    for j, (key, label) in enumerate(series):
        vals = [c.get(key, 0) for c in counts]
        if any(vals) or key == "delivered":
            ax.bar(range(len(counts)), vals, bottom=bottom, label=label, color=f"C{j}")
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xlabel("day")
    ax.set_ylabel("patient-bolus requests")
    ax.set_title(f"{title}: patient boluses (delivered / denied by reason)")
    ax.legend(fontsize=7)
    save(fig, "patient_bolus.png")

    # alarm timeline
    ivs = alarm_intervals(rec)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * max(1, len({a["code"] for a in ivs}))))
    codes: list[str] = []
    for a in ivs:
        if a["code"] not in codes:
            codes.append(a["code"])
    colour = {"high": "tab:red", "medium": "tab:orange", "low": "tab:olive"}
    for a in ivs:
        y = codes.index(a["code"])
        end = a["cleared_ms"] if a["cleared_ms"] is not None else sc.duration_ms
        ax.barh(y, max(end - a["raised_ms"], MS_PER_H // 6) / MS_PER_DAY,
                left=a["raised_ms"] / MS_PER_DAY, color=colour.get(a["priority"], "grey"))
    ax.set_yticks(range(len(codes)), codes)
    ax.set_xlim(0, sc.duration_ms / MS_PER_DAY)
    ax.set_xlabel("day")
    ax.set_title(f"{title}: alarms" + ("" if ivs else " (none)"))
    save(fig, "alarms.png")

    # pressure around alarms
    wins = [w for w in rec.pressure if w.trace][:6]
    fig, axes = plt.subplots(max(1, len(wins)), 1, figsize=(8, 2.4 * max(1, len(wins))),
                             squeeze=False)
    for i, w in enumerate(wins):
        ax = axes[i][0]
        ax.plot([(t - w.raised_ms) / 60000 for t, _ in w.trace], [p for _, p in w.trace],
                ".", ms=1.5)
        ax.axvline(0, color="tab:red", lw=0.8)
        ax.set_ylabel("Pa")
        ax.set_title(f"{w.code} raised at {format_ms(w.raised_ms)}", fontsize=9)
        ax.set_xlabel("minutes from the alarm")
    if not wins:
        axes[0][0].text(0.5, 0.5, "no alarms: no pressure windows", ha="center",
                        transform=axes[0][0].transAxes)
        axes[0][0].set_title(f"{title}: pressure around alarms")
    save(fig, "pressure.png")
    return paths


def write_report(rec: Recording, out_dir: str | Path) -> dict[str, Any]:
    """report.json + summary.txt + the plots into out_dir; returns the report."""
    rep = build_report(rec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(dumps(rep) + "\n")
    (out / "summary.txt").write_text(summary_text(rec, rep) + "\n")
    write_plots(rec, out, rep)
    return rep
