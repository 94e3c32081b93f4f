"""`itpump campaign report DIR`: the campaign's HTML page, through pumphil.htmlreport.

Reads DIR/results.parquet (or the parts of an unfinished campaign: the page then says how many
runs it covers) and DIR/campaign.toml, and writes DIR/report.html: run integrity, sensitivity
with Wilson intervals per fault class and rate band, time to alarm (Kaplan-Meier curves, median,
95th percentile), false alarms per patient-year with exact Poisson intervals, alarms during
priming, ROC curves of the recorded detector statistics with the firmware's operating point, the
worst runs with the commands that replay each alone (and their scenario files inline), and the
drawn plant figures. Figures and definitions: analysis.py and docs/campaigns.md.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .. import htmlreport as H
from . import analysis as A
from . import spec as _spec
from . import store as _store
from .statistics import STATISTICS
from .task import SCHEMA_VERSION


def _pct(p: A.Proportion) -> str:
    return "\u2014" if p.p is None else f"{100 * p.p:.1f} %"


def _ci(lo: float | None, hi: float | None, scale: float = 100.0, unit: str = " %") -> str:
    if lo is None or hi is None:
        return "\u2014"
    return f"{scale * lo:.3g}\u2013{scale * hi:.3g}{unit}"


def _replay(directory: str, run: int) -> str:
    return (f"itpump campaign scenario {directory} --run {run} --out run-{run}.toml && "
            f"itpump simulate run-{run}.toml")


def _figure_ecdf(curves: list[tuple[str, A.TimeToAlarm]]) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.0))
    ax = fig.add_subplot()
    for name, tta in curves:
        if not tta.times_s:
            continue
        xs = [t / 60 for t in tta.times_s]
        ax.step([xs[0]] + xs, [0.0] + tta.fraction, where="post",
                label=f"{name} ({tta.detected}/{tta.n})")
    ax.set_xscale("log")
    ax.set_xlabel("time from fault onset to alarm (min, log scale)")
    ax.set_ylabel("fraction of runs alarmed")
    ax.set_ylim(0, 1.02)
    ax.axhline(0.5, color="#999", lw=0.6, ls=":")
    ax.axhline(0.95, color="#999", lw=0.6, ls=":")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _figure_roc(curves: list[A.RocCurve], fw_points: dict[str, tuple[float, float]]) -> Any:
    """Left: the ROC (sensitivity against false alarms per patient-year). Right: the same two
    figures against the threshold, the firmware's threshold marked: what moving it would do."""
    from matplotlib.figure import Figure

    st = curves[0].stat
    fig = Figure(figsize=(10.5, 4.0))
    ax, bx = fig.subplots(1, 2)
    for i, c in enumerate(curves):
        color = f"C{i}"
        ax.plot(c.fa_per_year, c.sensitivity, color=color, lw=1.4,
                label=f"{c.fault_class} (n={c.runs})")
        j = c.firmware_index
        ax.plot([c.fa_per_year[j]], [c.sensitivity[j]], "o", color=color, ms=7,
                markerfacecolor="white", markeredgewidth=1.6, clip_on=False)
        fw = fw_points.get(c.fault_class)
        if fw is not None:
            ax.plot([fw[0]], [fw[1]], "*", color=color, ms=12, markeredgecolor="black",
                    markeredgewidth=0.5, clip_on=False)
        bx.step(c.thresholds, c.sensitivity, where="post", color=color, lw=1.4)
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlim(left=0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("false alarms per patient-year (symlog)")
    ax.set_ylabel("sensitivity within the observation time")
    ax.grid(True, which="both", alpha=0.3)
    ax.plot([], [], "o", color="gray", markerfacecolor="white", label="replay, firmware threshold")
    ax.plot([], [], "*", color="gray", markeredgecolor="black", label="firmware verdicts")
    ax.legend(fontsize=7, loc="lower right")
    c0 = curves[0]
    fx = bx.twinx()
    fx.step(c0.thresholds, c0.fa_per_year, where="post", color="black", ls="--", lw=1.0,
            label="false alarms / patient-year")
    fx.set_yscale("symlog", linthresh=0.1)
    fx.set_ylim(bottom=0)
    fx.set_ylabel("false alarms per patient-year (dashed)")
    bx.axvline(st.threshold, color="#c33", lw=1.0, ls=":")
    bx.text(st.threshold, 1.03, f" firmware {st.threshold} {st.unit}", color="#c33", fontsize=7,
            va="bottom")
    bx.set_ylim(-0.02, 1.02)
    bx.set_xlabel(f"threshold T ({st.unit}); abnormal when x {'>=' if st.direction == 'above' else '<'} T")
    bx.set_ylabel("sensitivity (solid)")
    bx.grid(True, alpha=0.3)
    lo, hi = float(st.threshold), float(st.threshold)
    for c in curves:     # show where the curves change, not the far tails
        ch = [t for t, a, b in zip(c.thresholds[1:], c.sensitivity, c.sensitivity[1:],
                                   strict=False) if a != b]
        ch += [t for t, a, b in zip(c.thresholds[1:], c.fa_per_year, c.fa_per_year[1:],
                                    strict=False) if a != b]
        if ch:
            lo, hi = min(lo, *ch), max(hi, *ch)
    pad = max(1.0, 0.08 * (hi - lo))
    bx.set_xlim(lo - pad, hi + pad)
    fig.tight_layout()
    return fig


def build(directory: str | Path) -> H.Report:
    d = Path(directory)
    c = _store.load_campaign(d)
    table = _store.read_table(d)
    if table is None:
        raise _store.StoreError(f"{d}: no results yet (run `itpump campaign run` first)")
    rows: list[dict[str, Any]] = table.to_pylist()
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r for r in rows if r["status"] != "ok"]
    dname = str(d)
    rep = H.Report(f"Campaign: {c.name}",
                   subtitle=f"{len(rows)} of {c.runs} runs"
                   + ("" if len(rows) == c.runs else " (unfinished: rerun the campaign to "
                      "complete it)") + f"; campaign seed {c.seed}")
    exposure_y = sum(r["exposure_s"] or 0 for r in ok) / A.S_PER_YEAR
    sim_days = sum(r["duration_s"] for r in ok) / 86400
    digests = sorted({f"{r['firmware']} ({r['firmware_digest']})" for r in rows})
    rep.summary({
        "runs": f"{len(ok)} completed, {len(bad)} failed, {c.runs - len(rows)} not run yet",
        "simulated time": f"{sim_days:,.1f} patient-days",
        "fault-free therapy time": f"{exposure_y:.2f} patient-years",
        "fault classes": ", ".join(f"{f.name} ({f.runs})" for f in c.faults),
        "programs": "; ".join(f"{p.name}: {p.daily_ul:g} uL/day (band {p.band})"
                              for p in c.programs),
        "firmware": ", ".join(digests),
    })

    # --- integrity ------------------------------------------------------------------------------
    sec = rep.section("Campaign integrity",
                      "Every run has a row; failed runs are listed at the end with their seeds.")
    sec.measurements([
        H.Measurement("runs with a row", len(rows), "runs", low=c.runs, high=c.runs),
        H.Measurement("failed runs (error or refused)", len(bad), "runs", high=0),
        H.Measurement("firmware builds across workers", len(digests), "", high=1,
                      note="one digest: every worker ran the same firmware"),
    ])

    # --- sensitivity ----------------------------------------------------------------------------
    faulted = [f for f in c.faults if f.kind != "none"]
    bands = sorted({p.band for p in c.programs})
    sec = rep.section(
        "Sensitivity and time to alarm",
        "Per fault class and rate band (the program's mean basal volume per day). Evaluable: "
        "the pump was running at the onset with no detector alarm active. Detected: the class's "
        "alarm was raised after the onset, within the observation time. Times to alarm are "
        "Kaplan-Meier estimates with missed runs censored at the observation time: 'not "
        "reached' when fewer than 50 % / 95 % of the runs alarmed in time.")
    trows: list[list[Any]] = []
    curves: list[tuple[str, A.TimeToAlarm]] = []
    sens_by_class: dict[str, A.Proportion] = {}
    for f in faulted:
        for band in [*bands, "all"] if len(bands) > 1 else ["all"]:
            rs = [r for r in ok if r["fault_class"] == f.name and (band == "all"
                                                                  or r["rate_band"] == band)]
            ev = [r for r in rs if r["evaluable"]]
            p = A.wilson(sum(1 for r in ev if r["detected"]), len(ev))
            tta = A.time_to_alarm([r["tta_s"] if r["detected"] else None for r in ev],
                                  [r["observe_s"] for r in ev])
            wrong = sum(1 for r in ev if r["wrong_alarms"])
            if band == "all":
                curves.append((f.name, tta))
                sens_by_class[f.name] = p
            cls = "" if p.p is None else ("pass" if p.p >= 0.95 else "warn" if p.p >= 0.8
                                          else "fail")
            trows.append([f.name, band, len(rs), len(ev), p.k, H.Cell(_pct(p), cls),
                          _ci(p.lo, p.hi), A.fmt_duration(tta.median_s),
                          A.fmt_duration(tta.p95_s),
                          A.fmt_duration(tta.median_detected_s) if tta.detected else None,
                          A.fmt_duration(tta.p95_detected_s) if tta.detected else None, wrong])
    sec.table(["fault class", "rate band (uL/day)", "runs", "evaluable", "detected",
               "sensitivity", "95 % CI (Wilson)", "median TTA", "95th pct TTA",
               "median TTA (detected)", "95th pct (detected)", "runs with a wrong alarm"],
              trows, caption="Sensitivity, time to alarm (TTA) after the fault's onset")
    if any(t.times_s for _, t in curves):
        sec.figure(_figure_ecdf(curves), caption="Cumulative fraction of evaluable runs alarmed "
                   "against time after the fault's onset (Kaplan-Meier; the curve ends below 1 "
                   "by the share of missed runs). Dotted: 50 % and 95 %.")
    wrong_codes = Counter(code for r in ok for code in (r["wrong_alarms"] or []))
    if wrong_codes:
        sec.text("Alarms with another code than the fault's after its onset (runs): "
                 + ", ".join(f"{k} {v}" for k, v in wrong_codes.most_common()) + ".")

    # --- false alarms ---------------------------------------------------------------------------
    sec = rep.section(
        "False alarms",
        "A false alarm is a detector alarm (occlusion, dislodgement, leak, motor stall, over- or "
        "under-infusion) raised in fault-free therapy time: a whole fault-free run, or a faulted "
        "run before its onset. Rate = runs with a false alarm / patient-years at risk (each run "
        "counts until its first false alarm): exact Poisson 95 % interval.")
    frows = []
    fa_by_code: dict[str, A.Rate] = {}
    for band in [*bands, "all"] if len(bands) > 1 else ["all"]:
        rs = [r for r in ok if (r["exposure_s"] or 0) > 0 and (band == "all"
                                                              or r["rate_band"] == band)]
        years = sum(r["at_risk_s"] for r in rs) / A.S_PER_YEAR
        k = sum(1 for r in rs if r["fa_count"])
        rate = A.poisson_rate(k, years)
        codes = Counter(r["fa_first_code"] for r in rs if r["fa_count"])
        frows.append([band, len(rs), years, k, rate.per_year, _ci(rate.lo, rate.hi, 1.0, ""),
                      sum(r["fa_count"] for r in rs),
                      ", ".join(f"{a} {n}" for a, n in codes.most_common()) or None])
        if band == "all":
            for code in {a for f in faulted if (a := f.expected_alarm)}:
                kc = codes.get(code, 0)
                fa_by_code[code] = A.poisson_rate(kc, years)
    sec.table(["rate band (uL/day)", "runs", "patient-years at risk", "runs with a false alarm",
               "false alarms / patient-year", "95 % CI", "false alarms (all)", "first by code"],
              frows, caption="False alarms per patient-year of fault-free therapy")
    primed = [r for r in ok]
    setup = A.wilson(sum(1 for r in primed if r["setup_alarms"]), len(primed))
    codes = Counter(code for r in primed for code in (r["setup_alarms"] or []))
    sec.text(f"Alarms during set-up (priming the catheter before t=0): {setup.k} of {setup.n} "
             f"runs ({_pct(setup)}, 95 % CI {_ci(setup.lo, setup.hi)})"
             + (": " + ", ".join(f"{a} {n}" for a, n in codes.most_common()) if codes else "")
             + ". A run whose pump could not start after such an alarm has no fault-free "
             "therapy time and no evaluable fault.", "warn" if setup.k else "")

    # --- ROC ------------------------------------------------------------------------------------
    sec = rep.section(
        "ROC curves of the detectors' statistics",
        "Each detector statistic was recorded at every judged stroke and sensing window. The "
        "curves replay one rule of the firmware offline with its threshold moved: sensitivity "
        "within the observation time against false alarms per patient-year, for every fault "
        "class the rule's alarm should catch. Circle: the replay at the firmware's threshold. "
        "Star: the firmware's own verdicts (sensitivity of the class; false alarms with the "
        "class's alarm code). Right: sensitivity (solid) and false alarms per patient-year (dashed) "
        "against the threshold, the firmware's marked. Agreement: runs where the replay at the "
        "firmware threshold and the firmware's verdict say the same; it is low where another "
        "rule raises the alarm (the elevation rule rarely decides a partial occlusion).")
    classes = [(f.name, f.expected_alarm or "") for f in faulted]
    fw_points = {f.name: ((fa_by_code[f.expected_alarm].per_year or 0.0)
                          if f.expected_alarm in fa_by_code else 0.0,
                          sens_by_class[f.name].p or 0.0)
                 for f in faulted if f.name in sens_by_class and sens_by_class[f.name].n}
    agree_rows = []
    for st, curves_st in zip(STATISTICS, A.all_roc(ok, classes), strict=True):
        if not curves_st:
            continue
        sec.figure(_figure_roc(curves_st, fw_points),
                   caption=f"{st.title}: {st.rule}.")
        for cv in curves_st:
            j = cv.firmware_index
            agree_rows.append([st.name, cv.fault_class, f"{st.threshold} {st.unit}",
                               f"{100 * cv.sensitivity[j]:.1f} %", cv.fa_per_year[j],
                               _pct(cv.agreement), _ci(cv.agreement.lo, cv.agreement.hi)])
    if agree_rows:
        sec.table(["statistic", "fault class", "firmware threshold", "replayed sensitivity",
                   "replayed false alarms / patient-year", "agreement with firmware",
                   "95 % CI"], agree_rows,
                  caption="The replayed rule at the firmware's threshold")

    # --- worst runs -----------------------------------------------------------------------------
    n_worst = c.worst_runs
    sec = rep.section(
        "Worst runs",
        "Missed faults first (the slowest-to-alarm next), then false alarms and wrong alarms. "
        "Each command writes the run as a scenario file and replays it alone with itpump "
        "simulate; the scenario files are also below.")
    ranked: list[tuple[tuple[int, float], dict[str, Any], str]] = []
    for r in ok:
        if r["setup_alarms"]:
            ranked.append(((1, 0.0), r, "alarm during priming: " + ", ".join(r["setup_alarms"])
                           + ("" if r["started"] else " (the pump could not start)")))
        elif r["kind"] != "none" and r["evaluable"] and not r["detected"]:
            ranked.append(((0, -(r["observe_s"] or 0)), r,
                           f"missed: no {r['expected_alarm']} alarm within "
                           f"{A.fmt_duration(r['observe_s'])}"))
        elif r["fa_count"]:
            ranked.append(((1, r["fa_first_s"] or 0), r,
                           f"false {r['fa_first_code']} alarm at "
                           f"{A.fmt_duration(r['fa_first_s'])} of therapy"))
        elif r["wrong_alarms"]:
            ranked.append(((2, -(r["tta_s"] or 0)), r, "wrong alarm after the onset: "
                           + ", ".join(r["wrong_alarms"])))
        elif r["detected"]:
            ranked.append(((3, -(r["tta_s"] or 0)), r,
                           f"slowest: alarm {A.fmt_duration(r['tta_s'])} after the onset"))
    ranked.sort(key=lambda x: (x[0][0], x[0][1], x[1]["run"]))
    worst = ranked[:n_worst]
    sec.table(["run", "fault class", "program", "what happened", "replay"],
              [[r["run"], r["fault_class"], r["program"], what, H.Cell(_replay(dname, r["run"]),
                                                                       "muted")]
               for _, r, what in worst])
    for _, r, _what in worst:
        sec.details(f"run {r['run']}: scenario file",
                    _spec.scenario_text(c, _spec.draw(c, r["run"])))

    # --- plant figures ---------------------------------------------------------------------------
    sec = rep.section("Drawn plant figures", "Simulation inputs drawn per run (not clinical data).")
    prow = []
    for col in [n for n in table.column_names if n.startswith("plant.")]:
        vals = sorted(v for v in table[col].to_pylist() if v is not None)
        if not vals:
            continue
        name = col[len("plant."):]
        dists = [t[k].describe() for t in [c.plant, *(f.plant for f in c.faults)]
                 for k in t if _spec.PER_MINUTE.get(k, k) == name]
        prow.append([name, "; ".join(dists), len(vals), vals[0], vals[len(vals) // 2], vals[-1]])
    sec.table(["figure", "distribution", "runs", "min", "median", "max"], prow)

    # --- failures -------------------------------------------------------------------------------
    if bad:
        sec = rep.section("Failed runs", "Recorded with their error and seeds; replay to debug.")
        sec.table(["run", "fault class", "status", "error", "seed", "replay"],
                  [[r["run"], r["fault_class"], H.Cell(r["status"], "fail"),
                    (r["error"] or "").splitlines()[0][:300], str(r["seed"]),
                    H.Cell(_replay(dname, r["run"]), "muted")] for r in bad])

    from importlib.metadata import version

    rep.provenance(schema_version=SCHEMA_VERSION, seed=c.seed, firmware=", ".join(digests),
                   input_hash=f"sha256:{c.digest}",
                   extra={"results": f"{len(rows)} rows", "itpump": version("itpump"),
                          "written by": "itpump campaign report"})
    return rep


def write(directory: str | Path, out: str | Path | None = None) -> Path:
    """Build the report of DIR and write it (default DIR/report.html)."""
    rep = build(directory)
    return rep.write(out if out is not None else Path(directory) / "report.html")

