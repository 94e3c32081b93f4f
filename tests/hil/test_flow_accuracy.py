"""Flow accuracy by the IEC 60601-2-24 method (pumphil.hil.flow): the balance read every 30 s for
two hours from the start of the infusion; start-up curve over the whole period, trumpet curve
(Ep(max), Ep(min) over 2, 5, 11, 19, 31-min windows) and the overall accuracy A over the second
hour; and the pump's own count of the dose against what the balance weighed. The limit on A is
the mechanism's documented accuracy, +-5 % (docs/safety.md H25: the pump counts every stroke at
+5 % for its dose limits, so a mechanism outside it breaks that promise);
each window's limit adds one stroke and the balance's uncertainty (docs/hil.md)."""

from __future__ import annotations

from typing import Any

import hil_helpers as H
import pytest
from pumpcore.pump import STROKE_TOLERANCE_PCT
from pumphil.drivers import Balance
from pumphil.hil.clock import RigClock
from pumphil.hil.flow import SAMPLE_S, WINDOWS_MIN, analyse, trumpet_limit_pct
from pumphil.hil.measure import Measurements
from pumphil.hil.plugin import Rig

TEST_MIN = 120


@pytest.mark.hil_duration(TEST_MIN + 15)
@pytest.mark.parametrize("rate_ul_per_h", [1000, 100, 20])
def test_flow_accuracy_iec_60601_2_24(rig: Rig, pump: Any, balance: Balance, clock: RigClock,
                                      measure: Measurements, rate_ul_per_h: int) -> None:
    H.program_and_prime(pump, clock, H.rx(rate_ul_per_h * 1000))
    clock.advance(2 * H.MIN)                 # the primed line comes to rest before taring
    balance.zero_immediate()
    ledger0 = H.ledger_ng(pump)
    pump.start()
    t0 = clock.now_ms()
    masses = [balance.weight_immediate_g()[0]]
    for k in range(1, TEST_MIN * 60 // SAMPLE_S + 1):
        clock.advance_to(t0 + k * SAMPLE_S * 1000)
        masses.append(balance.weight_immediate_g()[0])
    assert pump.status()["state"] == "running"
    cfg = rig.config
    weighed_ul = H.weighed_ul(masses[-1] - masses[0], cfg.density_g_per_ml)
    ratio = (H.ledger_ng(pump) - ledger0) / (weighed_ul * H.CONC_UG_PER_ML)
    measure(f"{rate_ul_per_h} uL/h: dose counted / dose weighed", round(ratio, 4), "", 1.0,
            round(1 + (STROKE_TOLERANCE_PCT + 1) / 100, 4),
            note="the ledger counts each stroke at +5 % (H25): never below the balance")
    fa = analyse(masses, rate_ul_per_h, cfg.density_g_per_ml)
    limits = {p: trumpet_limit_pct(STROKE_TOLERANCE_PCT, p, rate_ul_per_h, cfg.stroke_nl / 1000,
                                   cfg.balance_uncertainty_mg, cfg.density_g_per_ml)
              for p in WINDOWS_MIN}
    measure.flow(f"{rate_ul_per_h} uL/h", fa, limits, STROKE_TOLERANCE_PCT)
    assert set(fa.trumpet) == set(WINDOWS_MIN)
