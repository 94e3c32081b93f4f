"""The simulation's HTML page (``--report DIR`` -> ``DIR/index.html``), through the project's one
report writer (:mod:`pumphil.htmlreport`): self-contained (figures embedded as SVG), escaped,
the same bytes for the same run.

Sections: summary; expectations with pass/fail (the page's verdict); the prescription; dose per
drug in mg/day against its soft and hard limits with the plant's true peak 24 h; the reservoir;
alarms (timeline with a priority legend and the fault injections marked, and a table);
fault-to-alarm latencies; the pressure around each alarm; patient boluses; actions the pump
did not carry out; resets; the scenario file itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pumphost.units import amount_scale, dose_unit

from . import htmlreport as H
from . import plots
from .judge import human_s
from .recording import Recording
from .report import HTML, PLOTS, SCHEMA_VERSION, per_day_counts
from .scenario import MS_PER_DAY, format_ms

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: rows of long tables shown (the JSON has them all)
MAX_ROWS = 60


def _t(s: float | None) -> str | None:
    return None if s is None else format_ms(int(round(s * 1000)))


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _mg(ug: float | None, hard_ug: float | None) -> float | None:
    if ug is None:
        return None
    return ug / dose_unit(hard_ug)[1]


def build(rec: Recording, rep: dict[str, Any]) -> H.Report:
    sc = rec.scenario
    page = H.Report(f"Simulation: {rep['scenario']}",
                    subtitle=f"{sc.path}: {sc.duration_ms / MS_PER_DAY:g} day(s) of virtual time "
                    f"from {sc.start_time:%Y-%m-%d %H:%M} on the emulator, through the real "
                    "serial protocol")
    exp = rep["expectations"]
    passed = sum(1 for e in exp if e["passed"])
    fin = rep["final"]
    page.summary([
        ("verdict", {"pass": f"PASS ({passed} of {len(exp)} expectations)",
                     "fail": f"FAIL ({len(exp) - passed} of {len(exp)} expectations failed)",
                     "none": "no expectations stated"}[rep["verdict"]]),
        ("scenario", f"{rep['scenario']} ({sc.path})"),
        ("seed", sc.seed),
        ("firmware", rep["firmware"]),
        ("runtime", rep["runtime"]),
        ("delivered", f"{rep['delivered_ul'] / 1000:.3f} mL left the pump"),
        ("alarms", len(rep["alarms"])),
        ("resets", len(rep["resets"])),
        ("final state", fin["state"]),
        ("final reservoir", None if fin["reservoir_ul"] is None
         else f"{fin['reservoir_ul'] / 1000:.3f} mL"),
    ])

    sec = page.section("Expectations", intro="The scenario's [[expect]] rows, judged after the "
                       "run (docs/simulate.md). Times are from t=0: \"1d 09:00\" is 09:00 on "
                       "the second day.")
    if exp:
        sec.measurements([H.Measurement(
            e["text"], *_display(e), passed=e["passed"],
            note="; ".join(x for x in (f"limit {e['limit']}", e["detail"], e["why"]) if x))
            for e in exp])
    else:
        sec.text("This scenario states no expectations: the run is reported, not judged.",
                 cls="muted")

    _prescription(page, rec, rep)
    _doses(page, rec, rep)

    sec = page.section("Reservoir")
    sec.figure(plots.reservoir(rec, rep), caption="Reservoir volume the pump counted, with its "
               "low-alert, empty and capacity thresholds; dotted lines are refills.")

    sec = page.section("Alarms", intro="Bars run from raising to clearing (or the end); colour "
                       "is the priority the alarm was raised with; dotted lines are the faults "
                       "the scenario injected.")
    sec.figure(plots.alarms(rec, rep), caption="Alarm timeline")
    if rep["alarms"]:
        sec.table(["alarm", "priority", "raised", "cleared", "active for"], [
            [a["code"], H.Cell(str(a["priority"]), _prio_cls(a["priority"])), _t(a["raised_s"]),
             _t(a["cleared_s"]) or "still active",
             None if a["cleared_s"] is None else human_s(a["cleared_s"] - a["raised_s"])]
            for a in rep["alarms"][:MAX_ROWS]], caption=_more(len(rep["alarms"]), "alarms"))
    else:
        sec.text("No alarm was raised.")

    sec = page.section("Fault-to-alarm latency", intro="For each fault the scenario injected: "
                       "the first alarm it should raise, at or after the injection and before "
                       "the same fault is injected again.")
    if rep["faults"]:
        sec.table(["fault", "injected", "alarm", "priority", "raised", "latency"], [
            [f["fault"], _t(f["t_s"]), f["alarm"] or H.Cell("none", "fail"), f["priority"],
             _t(f["raised_s"]),
             "already active" if f["already_active"] else
             (None if f["latency_s"] is None else human_s(f["latency_s"]))]
            for f in rep["faults"][:MAX_ROWS]], caption=_more(len(rep["faults"]), "faults"))
    else:
        sec.text("The scenario injects no fault.")

    sec = page.section("Pressure around alarms", intro="The pressure the firmware sampled from "
                       "30 minutes before to 10 minutes after each alarm was raised.")
    if rec.pressure:
        for k, w in enumerate(rec.pressure[:plots.MAX_PRESSURE_PANELS]):
            sec.figure(plots.pressure(rec, rep, only=k),
                       caption=f"{w.code} raised at {format_ms(w.raised_ms)} "
                       f"({len(w.trace)} samples)")
        if len(rec.pressure) > plots.MAX_PRESSURE_PANELS:
            sec.text(f"{len(rec.pressure) - plots.MAX_PRESSURE_PANELS} more windows are not "
                     "drawn.", cls="muted")
    else:
        sec.text("No alarm, so no pressure window." if not rep["alarms"] else
                 "Alarms were raised but no pressure windows were recorded.", cls="muted")

    pb = rep["patient_bolus"]
    sec = page.section("Patient boluses")
    den = ", ".join(f"{k} {v}" for k, v in pb["denied"].items() if v) or "none"
    sec.text(f"{pb['requested']} requested, {pb['delivered']} delivered; denied: {den}.")
    if pb["requested"] and len(per_day_counts(rec)) > 0:
        sec.figure(plots.patient_bolus(rec, rep), caption="Requests per day by outcome")

    refused = [a for a in rec.actions if a.result != "ok"]
    sec = page.section("Actions not carried out")
    if refused:
        sec.table(["time", "action", "result", "message"], [
            [format_ms(a.t_ms), a.action + (f" ({a.detail['step']} step)" if "step" in a.detail
                                            else ""), H.Cell(a.result, "warn"),
             str(a.detail.get("msg", ""))] for a in refused[:MAX_ROWS]],
            caption=_more(len(refused), "actions"))
    else:
        sec.text("The pump carried out every action of the scenario.")

    if rep["resets"]:
        sec = page.section("Resets")
        sec.table(["time", "cause"], [[_t(r["t_s"]), r["cause"]]
                                      for r in rep["resets"][:MAX_ROWS]],
                  caption=_more(len(rep["resets"]), "resets"))

    sec = page.section("Inputs")
    text = _read(sc.path)
    if text is not None:
        sec.details(f"scenario file {sc.path}", text)
    if sc.prescription_source != "inline":
        rx_text = _read(sc.prescription_source)
        if rx_text is not None:
            sec.details(f"prescription file {sc.prescription_source}", rx_text)
    sec.text("Files next to this page: report.json (the full JSON report), summary.txt and "
             + ", ".join(PLOTS) + ".")
    page.provenance(schema_version=SCHEMA_VERSION, seed=sc.seed, firmware=rep["firmware"],
                    input_hash=None if rep["scenario_sha256"] is None
                    else "sha256:" + rep["scenario_sha256"],
                    extra={"prescription checksum": rep["prescription_checksum"],
                           "tool": "itpump simulate"})
    return page


def _display(e: dict[str, Any]) -> tuple[Any, str, float | None, float | None]:
    """An expectation's (value, unit, low, high) in the scale people read: mg for amounts of
    1 mg or more, minutes or hours for long latencies."""
    v, unit, lo, hi = e["measured"], e["unit"], e["low"], e["high"]
    nums = [x for x in (v, lo, hi) if isinstance(x, (int, float))]
    if unit == "ug":
        label, per = amount_scale(*nums)
    elif unit == "s" and nums and max(nums) >= 7200:
        label, per = "h", 3600.0
    elif unit == "s" and nums and max(nums) >= 120:
        label, per = "min", 60.0
    else:
        return v, unit, lo, hi

    def f(x: Any) -> Any:
        return x / per if isinstance(x, (int, float)) else x

    return f(v), label, f(lo), f(hi)


def _prio_cls(p: Any) -> str:
    return {"high": "fail", "medium": "warn"}.get(str(p), "")


def _more(n: int, what: str) -> str:
    return f"first {MAX_ROWS} of {n} {what} (report.json has all)" if n > MAX_ROWS else ""


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _prescription(page: H.Report, rec: Recording, rep: dict[str, Any]) -> None:
    rx = rec.scenario.rx
    sec = page.section("Prescription", intro="As programmed at set-up (the scenario's "
                       f"{'inline table' if rec.scenario.prescription_source == 'inline' else 'file'}"
                       f"; checksum {rep['prescription_checksum']}). Limits are those the pump "
                       "applied: the prescription's own, else its drug library's.")
    res, cat = rx["reservoir"], rx["catheter"]
    sec.table(["reservoir capacity", "fill", "low alert", "empty", "catheter volume"], [[
        f"{res['capacity_nl'] / 1e6:g} mL", f"{res['fill_nl'] / 1e6:g} mL",
        f"{res['low_alert_nl'] / 1e6:g} mL", f"{res['empty_nl'] / 1e6:g} mL",
        f"{cat['volume_nl'] / 1000:g} uL"]])
    rows = []
    for d in rx["drugs"]:
        r = rep["drugs"].get(d["name"], {})
        unit = dose_unit(r.get("hard_limit_ug_per_day"))[0]
        hard = r.get("hard_limit_ug_per_day")
        rows.append([d["name"], f"{d['conc_ug_per_ml'] / 1000:g} mg/mL",
                     _lim(r.get("soft_limit_ug_per_day"), hard, unit),
                     _lim(hard, hard, unit)])
    sec.table(["drug", "concentration", "soft limit", "hard limit"], rows)
    basal = rx["basal"]
    profiles = [("every day" if not basal.get("days") else "other days", basal["steps"])]
    profiles += [(day, steps) for day, steps in (basal.get("days") or {}).items() if steps]
    sec.table(["days", "basal steps (start: rate)"], [
        [name, ", ".join(f"{_hhmm(m)}: {rate / 1000:g} uL/h" for m, rate in steps)]
        for name, steps in profiles])
    per = rx.get("periodic") or []
    if per:
        sec.table(["periodic bolus at", "volume", "over"], [
            [", ".join(_hhmm(m) for m in p["times_min"]), f"{p['volume_nl'] / 1000:g} uL",
             human_s(p["duration_ms"] / 1000)] for p in per])
    pat = rx.get("patient")
    if pat:
        sec.table(["patient bolus", "over", "lockout", "at most per 24 h"], [[
            f"{pat['volume_nl'] / 1000:g} uL", human_s(pat["duration_ms"] / 1000),
            human_s(pat["lockout_ms"] / 1000), pat["max_per_24h"]]])


def _lim(ug: float | None, hard: float | None, unit: str) -> str | None:
    v = _mg(ug, hard)
    return None if v is None else f"{v:g} {unit}"


def _doses(page: H.Report, rec: Recording, rep: dict[str, Any]) -> None:
    sec = page.section("Dose per drug", intro="Each day's dose as the pump counted it at the "
                       "catheter tip, against the limits; the true peak 24 h is the plant's own "
                       "measure of the most that really left the tip in any 24 h (the figure "
                       "the hard limit must bound).")
    rows = []
    for name, d in rep["drugs"].items():
        hard = d["hard_limit_ug_per_day"]
        unit = dose_unit(hard)[0]
        per = [day["drugs_ug"].get(name, 0.0) for day in rep["per_day"]]
        share = None if not hard else d["peak_24h_ug"] / hard
        rows.append([name, f"{_mg(d['delivered_ug'], hard):.4g} {unit.split('/')[0]}",
                     f"{_mg(sum(per) / max(1, len(per)), hard):.4g}",
                     f"{_mg(max(per, default=0.0), hard):.4g}",
                     H.Cell(f"{_mg(d['peak_24h_ug'], hard):.4g}",
                            "fail" if share is not None and share > 1 else ""),
                     _lim(d["soft_limit_ug_per_day"], hard, unit),
                     _lim(hard, hard, unit),
                     None if share is None else H.Cell(f"{100 * share:.1f} %",
                                                        "fail" if share > 1 else "pass")])
    sec.table(["drug", "total", "mean per day", "largest day", "true peak 24 h", "soft limit",
               "hard limit", "peak / hard limit"], rows,
              caption="Per day in mg/day (ug/day for a drug whose hard limit is below 1 mg/day)")
    sec.figure(plots.dose_per_day(rec, rep), caption="Dose per day with the soft (dashed) and "
               "hard (solid) limits and the true peak 24 h (dotted)")


def write_html(rec: Recording, rep: dict[str, Any], path: str | Path) -> Path:
    """Render the page to ``path`` (normally DIR/index.html)."""
    return build(rec, rep).write(path)


__all__ = ["HTML", "build", "write_html"]
