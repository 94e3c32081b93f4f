"""Occlusion on the rig (docs/safety.md H8; the IEC 60601-2-24 occlusion test): the complete
occluder is closed, the time to the alarm and the line pressure at the alarm are measured, the
occluder is opened and the volume the pressurised line releases is weighed."""

from __future__ import annotations

from typing import Any

import hil_helpers as H
import pytest
from pumphil.drivers import Balance, SwitchUnit
from pumphil.hil.clock import RigClock
from pumphil.hil.measure import Measurements
from pumphil.hil.plugin import Rig

MAX_STROKES_TO_ALARM = 2          # H8: a complete occlusion alarms within two strokes
RELEASE_LIMIT_UL = 1.0            # docs/safety.md H8 test: <= 1 uL (GIP allows 500 uL outside)
PRESSURE_LIMIT_PA = 5_000         # two strokes into the line's compliance, plus the CSF baseline


@pytest.mark.hil_duration(60)
@pytest.mark.parametrize("rate_ul_per_h", [1000, 20])
def test_occlusion_time_to_alarm_pressure_and_release(
        rig: Rig, pump: Any, switch: SwitchUnit, balance: Balance, clock: RigClock,
        measure: Measurements, rate_ul_per_h: int) -> None:
    H.start_therapy(pump, clock, H.rx(rate_ul_per_h * 1000), settle_ms=30 * H.MIN)
    stroke_s = 3600 * rig.config.stroke_nl / (rate_ul_per_h * 1000)
    strokes0 = pump.status()["strokes"]
    t0 = clock.now_ms()
    switch.occlude("complete")
    step = max(200, min(10_000, int(stroke_s * 1000 / 4)))
    trace_t: list[float] = []
    trace_p: list[float] = []

    def alarmed() -> bool:
        trace_t.append((clock.now_ms() - t0) / 1000)
        trace_p.append(switch.line_pressure_pa())
        return "occlusion" in H.alarm_codes(pump)

    took = clock.wait_for(alarmed, int((MAX_STROKES_TO_ALARM + 2) * stroke_s * 1000) + 10_000,
                          step)
    st = pump.status()
    p_alarm = switch.line_pressure_pa()
    strokes = st["strokes"] - strokes0
    measure("time to occlusion alarm", None if took is None else took / 1000, "s", 0,
            round(MAX_STROKES_TO_ALARM * stroke_s + step / 1000 + 3, 1),
            note=f"resolution {step / 1000:g} s; a stroke every {stroke_s:.3g} s")
    measure("strokes from occlusion to alarm", strokes, "", 0, MAX_STROKES_TO_ALARM)
    measure("line pressure at alarm", round(p_alarm), "Pa", None, PRESSURE_LIMIT_PA)
    assert took is not None, "no occlusion alarm"
    assert st["state"] == "alarm_stop"
    assert [a[1] for a in st["alarms"] if a[0] == "occlusion"] == ["high"]
    clock.advance(2 * H.MIN)
    assert pump.status()["strokes"] == st["strokes"]        # flow stopped
    balance.zero_immediate()
    switch.clear_occlusion()
    t_clear = (clock.now_ms() - t0) / 1000
    for _ in range(20):
        clock.advance(30_000)
        trace_t.append((clock.now_ms() - t0) / 1000)
        trace_p.append(switch.line_pressure_pa())
    released_ul = H.weighed_ul(balance.weight_immediate_g()[0], rig.config.density_g_per_ml)
    measure("volume released after clearing", round(released_ul, 3), "uL", None, RELEASE_LIMIT_UL,
            note="weighed over 10 min after the occluder opened")
    measure.trace(f"line pressure, complete occlusion at {rate_ul_per_h} uL/h", trace_t,
                  trace_p, "Pa", {"occluded": 0.0, "alarm": (took or 0) / 1000,
                                  "cleared": t_clear})
    H.ack_all(pump)
    st = pump.status()
    assert st["state"] == "stopped"                          # nothing restarts by itself
    assert st["strokes"] == strokes0 + strokes               # missed drug is not made up
