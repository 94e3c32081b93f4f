"""Shared steps of the HIL suite: programs and the way a test engineer brings a pump to therapy.
Only the plugin's fixtures are used (pump, clock, balance...), so every step runs on every target.
The doses are examples for a research rig, not clinical guidance."""

from __future__ import annotations

from typing import Any

from pumpcore.clock import from_ymd_hms
from pumphil.hil.clock import RigClock

MIN = 60_000
HOUR = 3_600_000
MONDAY = from_ymd_hms(2026, 1, 5)
CONC_UG_PER_ML = 100          # midazolam 100 ug/mL: 1 uL carries 100 ng
CATHETER_NL = 150_000


def rx(rate_nl_per_h: int, patient: dict[str, int] | None = None,
       hard_ng_per_day: int = 3_000_000) -> dict[str, Any]:
    """Midazolam 100 ug/mL (explicit limits: no library entry), one basal rate, optional patient
    bolus. 1 mL/h for a day is 2.4 mg, inside the 3 mg hard limit."""
    return {
        "reservoir": {"capacity_nl": 20_000_000, "fill_nl": 20_000_000,
                      "low_alert_nl": 2_000_000, "empty_nl": 500_000},
        "catheter": {"volume_nl": CATHETER_NL},
        "drugs": [{"name": "midazolam", "conc_ug_per_ml": CONC_UG_PER_ML,
                   "hard_ng_per_day": hard_ng_per_day, "soft_ng_per_day": hard_ng_per_day}],
        "basal": {"steps": [[0, rate_nl_per_h]], "days": None},
        "periodic": [],
        "patient": patient,
    }


def alarm_codes(pump: Any) -> list[str]:
    return [a[0] for a in pump.status()["alarms"]]


def ack_all(pump: Any) -> None:
    """Acknowledge every latched alarm (each by its code)."""
    for code in alarm_codes(pump):
        pump.ack(code)


def program_and_prime(pump: Any, clock: RigClock, program: dict[str, Any]) -> None:
    """Acknowledge what the last test left latched, set the clock, commit the program (the
    review's checksum quoted) and prime the catheter; returns when priming has ended."""
    ack_all(pump)
    pump.set_clock(*MONDAY)
    review = pump.stage(program)
    pump.commit(review["checksum"], confirm_soft=True)
    pump.prime(CATHETER_NL)
    took = clock.wait_for(lambda: pump.status()["state"] != "priming", 20 * MIN, 30_000)
    assert took is not None, "priming did not end within 20 min"


def start_therapy(pump: Any, clock: RigClock, program: dict[str, Any],
                  settle_ms: int = 0) -> None:
    program_and_prime(pump, clock, program)
    pump.start()
    if settle_ms:
        clock.advance(settle_ms)      # the detectors learn the line's baseline
    assert pump.status()["state"] == "running"


def ledger_ng(pump: Any) -> int:
    """The pump's rolling-24-h amount of the drug (ng), counted at the top of the mechanism's
    accuracy (docs/safety.md H25)."""
    return int(pump.status()["rolling_24h_ng"]["midazolam"])


def weighed_ul(grams: float, density_g_per_ml: float) -> float:
    return grams * 1000.0 / density_g_per_ml
