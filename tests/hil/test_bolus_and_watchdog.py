"""Patient bolus through the rig: the bolus weighed on the balance, the lockout, max-per-24h
(docs/therapy.md "Patient bolus gate", docs/safety.md H5); watchdog recovery (H16, H24)."""

from __future__ import annotations

from typing import Any

import hil_helpers as H
import pytest
from pumpcore.pump import STROKE_TOLERANCE_PCT
from pumphil.drivers import Balance
from pumphil.hil.clock import RigClock
from pumphil.hil.measure import Measurements
from pumphil.hil.plugin import Rig
from pumphost.errors import RefusedError

PATIENT = {"volume_nl": 10_000, "duration_ms": 120_000, "lockout_ms": 3_600_000,
           "max_per_24h": 2}
BASAL_NL_PER_H = 20_000


def refused(pump: Any) -> str:
    with pytest.raises(RefusedError) as e:
        pump.patient_bolus()
    return str(e.value.reason)


@pytest.mark.hil_duration(200)
def test_patient_bolus_volume_lockout_and_max_per_24h(
        rig: Rig, pump: Any, balance: Balance, clock: RigClock, measure: Measurements) -> None:
    H.start_therapy(pump, clock, H.rx(BASAL_NL_PER_H, patient=PATIENT))
    assert refused(pump) == "lockout"           # a commit starts the lockout
    clock.advance(61 * H.MIN)
    balance.zero_immediate()
    t0 = clock.now_ms()
    pump.patient_bolus()
    assert refused(pump) == "bolus_active"
    clock.advance(10 * H.MIN)
    grams = balance.weight_immediate_g()[0]
    basal_ul = BASAL_NL_PER_H / 1000 * (clock.now_ms() - t0) / 3_600_000
    bolus_ul = H.weighed_ul(grams, rig.config.density_g_per_ml) - basal_ul
    want = PATIENT["volume_nl"] / 1000
    tol = want * STROKE_TOLERANCE_PCT / 100 + 2 * rig.config.stroke_nl / 1000
    measure("patient bolus weighed", round(bolus_ul, 3), "uL", round(want - tol, 3),
            round(want + tol, 3), note="balance over 10 min less the basal")
    assert refused(pump) == "lockout"
    clock.advance(51 * H.MIN)                   # 61 min after the bolus started
    pump.patient_bolus()
    clock.advance(61 * H.MIN)
    assert refused(pump) == "max_per_24h"       # two started in the last 24 h
    st = pump.status()["patient_bolus"]
    measure("patient boluses delivered", st["delivered"], "", 2, 2)
    measure("refusals counted", sum(st["denied"].values()), "", 4, 4,
            note="lockout x2, bolus_active, max_per_24h")
    assert st["denied"]["max_per_24h"] == 1 and st["denied"]["lockout"] == 2


@pytest.mark.rig_needs("firmware_hang")
@pytest.mark.hil_duration(20)
def test_watchdog_recovers_a_hung_firmware_and_reports_it(
        rig: Rig, pump: Any, clock: RigClock, measure: Measurements) -> None:
    H.start_therapy(pump, clock, H.rx(BASAL_NL_PER_H, patient=PATIENT), settle_ms=2 * H.MIN)
    strokes = pump.status()["strokes"]
    rig.hang_firmware(60_000)                   # the main loop stops feeding the watchdog
    clock.advance(20_000)
    st = pump.status()
    measure("resets after a hang", st["resets"], "", 1, 1)
    assert st["last_reset"]["cause"] == "watchdog"
    assert ["watchdog_reset", "medium"] in [a[:2] for a in st["alarms"]]
    assert st["state"] == "running"             # therapy resumes after one reset
    assert refused(pump) == "alarm"             # boluses wait for the acknowledgement
    clock.advance(5 * H.MIN)
    assert pump.status()["strokes"] > strokes
