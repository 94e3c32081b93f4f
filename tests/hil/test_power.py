"""Power cuts through the supply, mid-infusion and mid-bolus, judged by the documented reset
policy (docs/therapy.md "Resets and accounting", docs/safety.md H14/H24/H25): therapy resumes,
the reset is alarmed (low) and reported with its cause, an interrupted bolus is not resumed, the
lockout survives, and nothing is under-counted: the pump's rolling-24-h dose is at least what
the balance weighed times the concentration. Low battery through the supply's voltage."""

from __future__ import annotations

from typing import Any

import hil_helpers as H
import pytest
from pumpcore.pump import STROKE_TOLERANCE_PCT
from pumphil.drivers import Balance, PowerSupply
from pumphil.hil.clock import RigClock
from pumphil.hil.measure import Measurements
from pumphil.hil.plugin import Rig

PATIENT = {"volume_nl": 10_000, "duration_ms": 120_000, "lockout_ms": 3_600_000,
           "max_per_24h": 3}


def cut(supply: PowerSupply, clock: RigClock, off_ms: int) -> None:
    supply.output(False)
    clock.advance(off_ms)
    supply.output(True)
    clock.advance(5_000)                        # the board boots


def accounted_vs_weighed(rig: Rig, pump: Any, balance: Balance, ledger0: int,
                         measure: Measurements) -> None:
    """Nothing under-counted: the ledger's growth against what the balance weighed. It may
    over-count by the accuracy margin (+5 %) and by what the cuts presumed delivered (at most
    each record's reservation), never under-count."""
    st = pump.status()
    weighed = H.weighed_ul(balance.weight_immediate_g()[0], rig.config.density_g_per_ml)
    ledger = H.ledger_ng(pump) - ledger0
    ratio = ledger / (weighed * H.CONC_UG_PER_ML)
    presumed_ul = st["presumed"]["nl"] / 1000
    high = 1 + STROKE_TOLERANCE_PCT / 100 + (presumed_ul + 2 * rig.config.stroke_nl / 1000) / weighed
    measure("dose counted / dose weighed", round(ratio, 4), "", 1.0, round(high, 4),
            note=f"ledger {ledger} ng; balance {weighed:.3f} uL x {H.CONC_UG_PER_ML} ug/mL; "
            f"presumed after the cut {presumed_ul:g} uL")


@pytest.mark.hil_duration(60)
def test_power_cut_mid_infusion_resumes_alarmed_and_counts_everything(
        rig: Rig, pump: Any, supply: PowerSupply, balance: Balance, clock: RigClock,
        measure: Measurements) -> None:
    H.program_and_prime(pump, clock, H.rx(100_000))
    clock.advance(2 * H.MIN)
    balance.zero_immediate()
    ledger0 = H.ledger_ng(pump)
    pump.start()
    clock.advance(20 * H.MIN)
    before = pump.status()
    cut(supply, clock, 2 * H.MIN)
    st = pump.status()
    measure("resets reported", st["resets"] - before["resets"], "", 1, 1)
    assert st["last_reset"]["cause"] == "power_on", st["last_reset"]
    assert ["unexpected_reset", "low"] in [a[:2] for a in st["alarms"]]
    assert st["state"] == "running"                          # therapy resumes
    presumed = st["presumed"]["strokes"]
    measure("strokes presumed delivered", presumed, "", 0, 41,
            note="at most the record's reservation (docs/therapy.md)")
    clock.advance(20 * H.MIN)
    pump.stop()
    clock.advance(H.MIN)
    accounted_vs_weighed(rig, pump, balance, ledger0, measure)


@pytest.mark.hil_duration(90)
def test_power_cut_mid_bolus_is_not_resumed_and_the_lockout_holds(
        rig: Rig, pump: Any, supply: PowerSupply, balance: Balance, clock: RigClock,
        measure: Measurements) -> None:
    H.program_and_prime(pump, clock, H.rx(20_000, patient=PATIENT))
    clock.advance(2 * H.MIN)
    balance.zero_immediate()
    ledger0 = H.ledger_ng(pump)
    pump.start()
    clock.advance(61 * H.MIN)                   # the lockout after commit has passed
    pump.patient_bolus()
    clock.advance(H.MIN)                        # half of the 2-min bolus
    assert pump.status()["bolus"] is not None
    cut(supply, clock, H.MIN)
    st = pump.status()
    assert st["bolus"] is None                  # not resumed
    assert st["state"] == "running"
    assert st["last_reset"]["cause"] == "power_on"
    assert st["last_reset"]["interrupted_bolus"]["kind"] == "patient"
    kinds = [e[1].get("kind") for e in pump.log_all() if isinstance(e[1], dict)]
    assert "bolus_interrupted" in kinds
    w0 = balance.weight_immediate_g()[0]
    clock.advance(10 * H.MIN)
    after_ul = H.weighed_ul(balance.weight_immediate_g()[0] - w0, rig.config.density_g_per_ml)
    basal_ul = 20 * 10 / 60
    measure("delivered in the 10 min after the cut", round(after_ul, 3), "uL", 0,
            round(basal_ul + 2 * rig.config.stroke_nl / 1000, 3),
            note="the basal only: the interrupted bolus is not resumed")
    with pytest.raises(Exception, match="lockout|alarm") as refused:
        pump.patient_bolus()                    # the lockout counts the interrupted bolus
    assert "lockout" in str(refused.value) or "alarm" in str(refused.value)
    H.ack_all(pump)
    with pytest.raises(Exception, match="lockout"):
        pump.patient_bolus()
    pump.stop()
    clock.advance(H.MIN)
    accounted_vs_weighed(rig, pump, balance, ledger0, measure)


@pytest.mark.hil_duration(30)
def test_low_battery_through_the_supply_voltage(
        rig: Rig, pump: Any, supply: PowerSupply, clock: RigClock, measure: Measurements) -> None:
    H.start_therapy(pump, clock, H.rx(20_000), settle_ms=5 * H.MIN)
    supply.set_voltage(3.40)                    # below ERI (3.45 V), above EOS (3.10 V)
    took = clock.wait_for(lambda: "battery_eri" in H.alarm_codes(pump), 3 * H.MIN, 10_000)
    measure("time to battery_eri at 3.40 V", None if took is None else took / 1000, "s", 0, 70,
            note="the supervisor reads the cell once a minute")
    st = pump.status()
    assert ["battery_eri", "medium"] in [a[:2] for a in st["alarms"]]
    assert st["state"] == "running"
    supply.set_voltage(3.05)
    took = clock.wait_for(lambda: "battery_eos" in H.alarm_codes(pump), 3 * H.MIN, 10_000)
    measure("time to battery_eos at 3.05 V", None if took is None else took / 1000, "s", 0, 70)
    st = pump.status()
    assert ["battery_eos", "high"] in [a[:2] for a in st["alarms"]]
    assert st["state"] == "alarm_stop"
