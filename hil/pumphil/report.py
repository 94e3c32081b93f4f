"""Simulation report: the JSON report (docs/simulate.md, schema version 2), the human summary,
the PNG plots and the HTML page.

The runner (:mod:`pumphil.simulate`) fills a :class:`~pumphil.recording.Recording`; this module
turns it into:

- :func:`build_report` -> the JSON-able dict of the contract (docs/simulate.md), with the
  scenario's expectations judged (:mod:`pumphil.expect`) and the verdict;
- :func:`summary_text` -> the human summary `itpump simulate` prints;
- :func:`write_report` -> report.json, summary.txt, the PNG plots (:mod:`pumphil.plots`) and
  index.html (:mod:`pumphil.report_html`) into a folder; :func:`check_writable` tests that folder
  before a run.

Semantics (contract): day k covers [k*24 h, (k+1)*24 h) from t=0; volumes are what left the pump
(the pump's ``delivered_nl`` = strokes x stroke volume drawn from the reservoir), counted from t=0
(the priming before t=0 is not counted); drug amounts are what left the catheter tip (the pump's
``delivered_drug``), also from t=0. No wall-clock value enters the report, so the same scenario
and seed give the same report.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pumpcore import prescription as _prescription
from pumpcore import reasons
from pumphost import units as U

from . import judge as _judge
from .recording import (
    ActionResult,
    DrugTruth,
    PressureWindow,
    Recording,
    Sample,
    alarm_intervals,
    drug_ng,
    fault_latencies,
    final_status,
    resets,
    status_at,
)
from .scenario import FAULT_ALARMS, MS_PER_DAY, format_ms

DENIAL_KEYS = tuple(reasons.PATIENT_BOLUS_DENIALS)
#: version of the JSON report's shape (docs/simulate.md); 1 was the issue-4 contract without it
SCHEMA_VERSION = 2
#: verdicts: every expectation passed / one failed / the scenario states none
PASS, FAIL, NONE = "pass", "fail", "none"


class ReportDirError(OSError):
    """The report folder cannot be written (checked before a run: check_writable)."""


# --- helpers --------------------------------------------------------------------------------------

def _counters(status: dict[str, Any] | None) -> tuple[int, dict[str, int], dict[str, int]]:
    """(delivered_nl, drug ng, patient-bolus counters flattened) of one status."""
    if not status:
        return 0, {}, {}
    pb = status.get("patient_bolus") or {}
    flat = {"requested": int(pb.get("requested", 0)), "delivered": int(pb.get("delivered", 0))}
    for k, v in (pb.get("denied") or {}).items():
        flat["denied." + k] = int(v)
    return int(status.get("delivered_nl") or 0), drug_ng(status), flat


def boundaries(rec: Recording) -> list[dict[str, Any] | None]:
    """Status at each day boundary 0, 24 h, ..., and at the end (len = days + 1)."""
    sc = rec.scenario
    out = [rec.baseline if rec.baseline is not None else status_at(rec, 0)]
    for k in range(1, sc.days):
        out.append(status_at(rec, k * MS_PER_DAY))
    out.append(final_status(rec))
    return out


def per_day_counts(rec: Recording) -> list[dict[str, int]]:
    """Patient-bolus counters per day (requested, delivered, denied.<reason>)."""
    marks = [_counters(b)[2] for b in boundaries(rec)]
    out = []
    for k in range(len(marks) - 1):
        a, b = marks[k], marks[k + 1]
        out.append({key: max(0, b.get(key, 0) - a.get(key, 0)) for key in sorted(set(a) | set(b))})
    return out


# --- the JSON report ------------------------------------------------------------------------------
def build_report(rec: Recording) -> dict[str, Any]:
    """The contract's JSON report (docs/simulate.md) as a dict, expectations judged."""
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
        per_day.append({"day": k, "delivered_ul": U.microlitres(max(0, v1 - v0)),
                        "drugs_ug": {n: U.micrograms(max(0, d1.get(n, 0) - d0.get(n, 0))) for n in names}})
    v_first, d_first, pb_first = cum[0]
    v_last, d_last, pb_last = cum[-1]
    denied = {k: pb_last.get("denied." + k, 0) - pb_first.get("denied." + k, 0)
              for k in DENIAL_KEYS}
    final = final_status(rec) or {}
    res_nl = final.get("reservoir_nl")
    rep: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "scenario": sc.name,
        "scenario_file": sc.path,
        "scenario_sha256": sc.sha256,
        "prescription_checksum": _prescription.checksum(sc.rx),
        "seed": sc.seed,
        "start_time": sc.start_time.isoformat(timespec="seconds"),
        "firmware": rec.firmware,
        "runtime": rec.runtime,
        "verdict": NONE,
        "duration_s": sc.duration_ms // 1000,
        "stroke_nl": rec.stroke_nl,
        "delivered_ul": U.microlitres(max(0, v_last - v_first)),
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
        "faults": [{"fault": f["fault"], "t_s": f["t_ms"] / 1000, "alarm": f["alarm"],
                    "priority": f["priority"],
                    "raised_s": None if f["raised_ms"] is None else f["raised_ms"] / 1000,
                    "latency_s": None if f["latency_ms"] is None else f["latency_ms"] / 1000,
                    "already_active": f["already_active"]}
                   for f in fault_latencies(rec)],
        "resets": [{"t_s": t / 1000, "cause": cause} for t, cause in resets(rec)],
        "final": {"state": final.get("state"),
                  "reservoir_ul": None if res_nl is None else U.microlitres(int(res_nl))},
        "expectations": [],
    }
    results = _judge.evaluate(rec, rep)
    rep["expectations"] = [r.to_json() for r in results]
    rep["verdict"] = verdict(results)
    return rep


def verdict(results: list[_judge.Result]) -> str:
    """PASS when every expectation passed, FAIL when one failed, NONE when there were none."""
    if not results:
        return NONE
    return PASS if all(r.passed for r in results) else FAIL


def _drug_report(rec: Recording, name: str, delivered_ng: int) -> dict[str, Any]:
    peak, at = rec.peak_24h_ng.get(name, (0.0, None))
    hard = rec.hard_limit_ng.get(name)
    soft = rec.soft_limit_ng.get(name)
    return {"delivered_ug": U.micrograms(max(0, delivered_ng)),
            "peak_24h_ug": round(peak / 1000, 3),
            "peak_24h_end_s": None if at is None else at / 1000,
            "soft_limit_ug_per_day": None if soft is None else soft / 1000,
            "hard_limit_ug_per_day": None if hard is None else hard / 1000}


def dumps(report: dict[str, Any]) -> str:
    """Canonical JSON text of a report (sorted keys off: the contract's order is kept)."""
    return json.dumps(report, indent=1)


# --- human summary --------------------------------------------------------------------------------
def summary_text(rec: Recording, report: dict[str, Any] | None = None) -> str:
    rep = report if report is not None else build_report(rec)
    sc = rec.scenario
    fw = f"; firmware {rep['firmware']}" if rep.get("firmware") else ""
    if rep.get("runtime", "cpython") != "cpython":
        fw += f" on {rep['runtime']}"
    lines = [f"Scenario: {rep['scenario']}  ({sc.path})",
             (f"  {sc.days} day(s) of virtual time from {sc.start_time:%Y-%m-%d %H:%M} "
             f"(seed {sc.seed}); stroke {rep['stroke_nl']} nL{fw}; research/education "
             "software, not a medical device"),
             (f"Delivered: {rep['delivered_ul'] / 1000:.3f} mL left the pump "
             f"({rep['delivered_ul'] / max(1, sc.days):.1f} uL/day on average)")]
    for name, d in rep["drugs"].items():
        per = [day["drugs_ug"].get(name, 0.0) for day in rep["per_day"]]
        hard, soft = d["hard_limit_ug_per_day"], d["soft_limit_ug_per_day"]
        unit, k = U.dose_unit(hard)
        mass = unit.split("/")[0]
        lim = "" if hard is None else f"; true peak 24 h {d['peak_24h_ug'] / k:.4g} {mass} (" \
            + ("" if soft is None else f"soft limit {soft / k:g}, ") \
            + f"hard limit {hard / k:g} {unit})"
        lines.append(f"  {name}: {d['delivered_ug'] / k:.4g} {mass} in total; per day "
                     f"min {min(per) / k:.4g} / mean {sum(per) / max(1, len(per)) / k:.4g} / "
                     f"max {max(per) / k:.4g} {unit}{lim}")
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
    if rep["faults"]:
        lines.append("Fault to alarm:")
        lines += _fault_lines(rep)
    refused = [a for a in rec.actions if a.result != "ok"]
    if refused:
        lines.append("Actions not carried out:")
        for a in refused:
            step = f" ({a.detail['step']} step)" if "step" in a.detail else ""
            lines.append(f"  {format_ms(a.t_ms)}  {a.action}{step}: {a.result}")
    fin = rep["final"]
    res = "unknown" if fin["reservoir_ul"] is None else f"{fin['reservoir_ul'] / 1000:.3f} mL"
    lines.append(f"Final: state {fin['state']}, reservoir {res}")
    exp = rep["expectations"]
    if exp:
        ok = sum(1 for e in exp if e["passed"])
        lines.append(f"Expectations: {ok} of {len(exp)} passed: {rep['verdict'].upper()}")
        for e in exp:
            word = "PASS" if e["passed"] else "FAIL"
            line = f"  {word}  {e['text']}: measured {e['measured_text']}, limit {e['limit']}"
            if e["detail"]:
                line += f" ({e['detail']})"
            lines.append(line)
            if e["why"]:
                lines.append(f"        why: {e['why']}")
    else:
        lines.append("Expectations: none stated (add [[expect]] rows: docs/simulate.md)")
    return "\n".join(lines)


def _fault_lines(rep: dict[str, Any]) -> list[str]:
    out = []
    for f in rep["faults"]:
        head = f"  {format_ms(int(f['t_s'] * 1000))}  {f['fault']}: "
        if f["alarm"] is None:
            out.append(head + "no " + " / ".join(FAULT_ALARMS[f["fault"]]) + " alarm followed")
        elif f["already_active"]:
            out.append(head + f"{f['alarm']} already active")
        else:
            out.append(head + f"{f['alarm']} ({f['priority']}) after "
                       f"{_judge.human_s(f['latency_s'])}")
    return out


# --- files ----------------------------------------------------------------------------------------
PLOTS = ("reservoir.png", "dose_per_day.png", "patient_bolus.png", "alarms.png", "pressure.png")
HTML = "index.html"


def check_writable(out_dir: str | Path) -> Path:
    """Make out_dir (and its parents) and prove a file can be written there; raises
    ReportDirError naming the folder and the reason. Call it BEFORE a long run."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".itpump-write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ReportDirError(f"cannot write the report into {out}: "
                             f"{e.strerror or e}") from None
    return out


def write_plots(rec: Recording, out_dir: str | Path,
                report: dict[str, Any] | None = None) -> list[Path]:
    """Write the PNG plots (names in PLOTS) into out_dir; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from . import plots

    rep = report if report is not None else build_report(rec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name in PLOTS:
        fig = plots.FIGURES[name](rec, rep)
        p = out / name
        fig.savefig(p, dpi=90, metadata={"Software": None})
        paths.append(p)
    return paths


def write_report(rec: Recording, out_dir: str | Path) -> dict[str, Any]:
    """report.json + summary.txt + the plots + index.html into out_dir; returns the report.
    Raises ReportDirError when a file cannot be written."""
    from .report_html import write_html

    rep = build_report(rec)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(dumps(rep) + "\n")
        (out / "summary.txt").write_text(summary_text(rec, rep) + "\n")
        write_plots(rec, out, rep)
        write_html(rec, rep, out / HTML)
    except OSError as e:
        raise ReportDirError(f"cannot write the report into {out}: {e.strerror or e}") from None
    return rep


__all__ = ["ActionResult", "DrugTruth", "HTML", "PLOTS", "PressureWindow", "Recording",
           "ReportDirError", "SCHEMA_VERSION", "Sample", "alarm_intervals", "boundaries",
           "build_report", "check_writable", "dumps", "final_status", "per_day_counts",
           "status_at", "summary_text", "verdict", "write_plots", "write_report"]
