"""The HIL report: ``DIR/index.html`` through the project's one report writer
(pumphil.htmlreport) with the measurement table, start-up and trumpet curves and traces, and
``DIR/measurements.json`` for tools. The JUnit XML (``DIR/junit.xml``) is pytest's own, with every
measurement as a property."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..htmlreport import Cell, Report
from .measure import Curve, TestRecord


def _figure(curve: Curve) -> Any:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    d = curve.data
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    if curve.kind == "startup":
        ax.step(d["t_min"], d["flow"], where="pre", lw=0.9, label="Q_i (30 s intervals)")
        ax.axhline(d["rate"], color="k", lw=0.8, ls="--", label="set rate")
        ax.axvspan(*d["analysis"], color="0.9", label="analysis period")
        ax.set_xlabel("time from start (min)")
        ax.set_ylabel("flow (uL/h)")
    elif curve.kind == "trumpet":
        w = d["windows"]
        ax.plot(w, d["ep_max"], "o-", label="Ep(max)")
        ax.plot(w, d["ep_min"], "s-", label="Ep(min)")
        ax.plot(w, d["limits"], "k--", lw=0.8, label="limit")
        ax.plot(w, [-v for v in d["limits"]], "k--", lw=0.8)
        ax.axhline(d["overall"], color="C2", lw=0.9, label=f"A = {d['overall']:.2f} %")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_xlabel("observation window P (min)")
        ax.set_ylabel("error (%)")
        ax.set_xticks(w)
    else:
        ax.plot(d["t_s"], d["values"], lw=0.9)
        for label, t in d["events"].items():
            ax.axvline(t, color="C3", lw=0.8, ls=":")
            ax.annotate(label, (t, ax.get_ylim()[1]), fontsize=8, rotation=90, va="top",
                        ha="right")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(d["unit"])
    ax.set_title(curve.title, fontsize=10)
    ax.grid(alpha=0.3)
    if curve.kind != "trace":
        ax.legend(fontsize=8)
    return fig


def write(out_dir: Path, records: list[TestRecord], info: dict[str, str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    rep = Report("itpump HIL report", info.get("target", ""))
    n_fail = sum(1 for r in records if r.outcome == "failed")
    rep.summary([("tests", len(records)), ("failed", n_fail),
                 ("measurements", sum(len(r.measurements) for r in records))]
                + list(info.items()))
    overview = rep.section("Tests")
    overview.table(["test", "outcome", "measurements", "rig time (min)", "wall (s)"], [
        [r.nodeid, Cell(r.outcome, "pass" if r.outcome == "passed" else
                        "muted" if r.outcome == "skipped" else "fail"),
         len(r.measurements), round(r.rig_ms / 60000, 2), round(r.duration_s, 2)]
        for r in records])
    for r in records:
        if not r.measurements and not r.curves:
            continue
        sec = rep.section(r.nodeid, f"outcome: {r.outcome}")
        if r.measurements:
            sec.measurements(r.measurements)
        for c in r.curves:
            sec.figure(_figure(c), caption=c.title)
        if r.longrepr and r.outcome == "failed":
            sec.details("failure", r.longrepr[-4000:])
    rep.provenance(schema_version=1, extra={"tool": "pytest tests/hil (pumphil.hil.plugin)"})
    page = rep.write(out_dir / "index.html")
    (out_dir / "measurements.json").write_text(json.dumps({"info": info, "tests": [
        {"nodeid": r.nodeid, "outcome": r.outcome, "measurements": [
            {"name": m.name, "value": m.value, "unit": m.unit, "low": m.low, "high": m.high,
             "passed": m.ok, "note": m.note} for m in r.measurements]} for r in records]},
        indent=1))
    return page
