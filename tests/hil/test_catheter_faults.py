"""Dislodgement and leak through the switch unit (docs/safety.md H9, H10, H21): the alarm comes
within three sensing windows, at high priority, and flow continues (stopping would withdraw the
therapy abruptly)."""

from __future__ import annotations

from typing import Any

import hil_helpers as H
import pytest
from pumphil.drivers import SwitchUnit
from pumphil.hil.clock import RigClock
from pumphil.hil.measure import Measurements
from pumphil.hil.plugin import Rig

WINDOW_MIN = 5                   # a sensing window every 5 min (docs/detectors.md)


@pytest.mark.hil_duration(60)
@pytest.mark.parametrize("fault,code", [("dislodge", "dislodgement"), ("leak", "leak")])
def test_catheter_fault_alarms_within_three_windows_and_flow_continues(
        rig: Rig, pump: Any, switch: SwitchUnit, clock: RigClock, measure: Measurements,
        fault: str, code: str) -> None:
    H.start_therapy(pump, clock, H.rx(20_000), settle_ms=30 * H.MIN)
    getattr(switch, fault)()
    took = clock.wait_for(lambda: code in H.alarm_codes(pump), (3 * WINDOW_MIN + 1) * H.MIN,
                          30_000)
    measure(f"time to {code} alarm", None if took is None else took / 60_000, "min", 0,
            3 * WINDOW_MIN + 0.5, note="three sensing windows; resolution 0.5 min")
    st = pump.status()
    assert [a[1] for a in st["alarms"] if a[0] == code] == ["high"]
    assert st["state"] == "running"                        # flow continues (docs/safety.md)
    strokes = st["strokes"]
    clock.advance(5 * H.MIN)
    assert pump.status()["strokes"] > strokes
    switch.open_all_valves()
