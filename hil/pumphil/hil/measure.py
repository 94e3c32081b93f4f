"""Measurements of a HIL test, in the manner of OpenHTF's: each has a name, a value, a unit,
limits and a verdict; a test whose measurement is outside its limits fails (the plugin turns the
verdict into the test's outcome), and every measurement goes into the JUnit XML (as a property)
and the HTML report. Curves (start-up, trumpet, pressure traces) are kept for the report's
figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..htmlreport import Measurement
from .flow import FlowAnalysis


@dataclass
class Curve:
    kind: str                      # "startup", "trumpet", "trace"
    title: str
    data: dict[str, Any]


@dataclass
class TestRecord:
    nodeid: str
    measurements: list[Measurement] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    outcome: str = ""
    duration_s: float = 0.0
    rig_ms: int = 0
    longrepr: str = ""


class Measurements:
    """The ``measure`` fixture: ``measure("time to alarm", 42.0, "s", high=60.0)``."""

    def __init__(self, record: TestRecord) -> None:
        self.record = record

    def __call__(self, name: str, value: float | int | None, unit: str = "",
                 low: float | None = None, high: float | None = None,
                 note: str = "") -> Measurement:
        if any(m.name == name for m in self.record.measurements):
            raise ValueError(f"measurement {name!r} recorded twice in one test")
        m = Measurement(name, value, unit, low, high, note=note)
        self.record.measurements.append(m)
        return m

    @property
    def failed(self) -> list[Measurement]:
        return [m for m in self.record.measurements if not m.ok]

    def flow(self, label: str, fa: FlowAnalysis, limits_pct: dict[int, float],
             accuracy_pct: float) -> None:
        """The measurements and curves of one IEC 60601-2-24 flow test (pumphil.hil.flow)."""
        self(f"{label}: overall accuracy A", round(fa.overall_pct, 3), "%", -accuracy_pct,
             accuracy_pct, note=f"mean flow {fa.mean_flow_ul_per_h:.4g} uL/h over "
             f"{fa.analysis_min[0]:g}-{fa.analysis_min[1]:g} min")
        for p, (ep_max, ep_min) in fa.trumpet.items():
            lim = round(limits_pct[p], 2)
            self(f"{label}: Ep(max) {p} min", round(ep_max, 3), "%", -lim, lim)
            self(f"{label}: Ep(min) {p} min", round(ep_min, 3), "%", -lim, lim)
        self.record.curves.append(Curve("startup", f"{label}: start-up curve", {
            "t_min": fa.t_min, "flow": fa.flow_ul_per_h, "rate": fa.rate_ul_per_h,
            "analysis": fa.analysis_min}))
        self.record.curves.append(Curve("trumpet", f"{label}: trumpet curve", {
            "windows": list(fa.trumpet), "ep_max": [v[0] for v in fa.trumpet.values()],
            "ep_min": [v[1] for v in fa.trumpet.values()],
            "limits": [round(limits_pct[p], 2) for p in fa.trumpet], "overall": fa.overall_pct}))

    def trace(self, title: str, t_s: list[float], values: list[float], unit: str,
              events: dict[str, float] | None = None) -> None:
        """A time series for the report (e.g. line pressure around an occlusion alarm);
        events: label -> time (s) drawn as vertical lines."""
        self.record.curves.append(Curve("trace", title, {"t_s": t_s, "values": values,
                                                         "unit": unit, "events": events or {}}))
