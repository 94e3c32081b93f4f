"""`itpump simulate` with plant faults and a power cut (docs/examples/faults.toml): alarms are timed
on the scenario's time line even after the board rebooted with a stale clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from pumphil import report as R
from pumphil import scenario as S
from pumphil import simulate as sim

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
H = 3_600_000
DAY = 24 * H


def test_faults_and_power_cut() -> None:
    sc = S.load(EXAMPLES / "faults.toml")
    rec = sim.run(sc)
    rep = R.build_report(rec)
    alarms = {a["code"]: a for a in rep["alarms"]}
    # leak injected at 0d 06:00, detected by the next sensing windows
    assert 6 * 3600 <= alarms["leak"]["raised_s"] <= 6 * 3600 + 15 * 60
    assert alarms["leak"]["cleared_s"] is not None
    # motor stall at 2d 06:00, after the power cut of day 1: the board restored a clock that runs
    # behind; the report still puts the alarm right after the injection
    assert (2 * DAY + 6 * H) / 1000 <= alarms["motor_stall"]["raised_s"] \
        <= (2 * DAY + 6 * H) / 1000 + 300
    assert alarms["motor_stall"]["priority"] == "high"
    # no status while the board was off (1d 06:00 .. 06:30; the first read at 06:00 is the one
    # before the cut), answers again after
    off = [s for s in rec.samples if DAY + 6 * H <= s.t_ms < DAY + 6.5 * H]
    assert off[0].status is not None
    assert len(off) >= 3 and all(s.status is None for s in off[1:])
    back = next(s for s in rec.samples if s.t_ms >= DAY + 6.5 * H and s.status is not None)
    assert back.t_ms == DAY + 6.5 * H       # the read right after power_restore
    # day 0: a leak alarms but flow continues (alarm catalogue: high, continue) and the volume
    # still leaves the pump; day 1: the half hour without power; day 2: no flow from the stall
    # at 06:00 until the serviced pump is acknowledged (a stall is cleared by acknowledgement)
    # and restarted at 07:16
    per = [d["delivered_ul"] for d in rep["per_day"]]
    assert per[0] == pytest.approx(480, abs=0.5)
    # day 1: 30 min without power lose 10 uL of delivery; the restore counts the record's
    # reservation (<= 40 strokes = 10 uL) as delivered, so the counters never under-count
    assert 480 - 10 - 0.5 <= per[1] <= 480 + 0.5
    assert per[2] == pytest.approx(480 - (76 / 60) * 20, abs=3)
    assert rep["final"]["state"] == "running"
    assert "battery_eri" in alarms                  # 5 % on the cell-voltage backstop
    assert [(a.action, a.result) for a in rec.actions if a.result != "ok"] == [
        ("patient_bolus", "powered_off")]
    assert rep["patient_bolus"]["requested"] == 0      # the pump never saw it
    # the file states what it proves; every fault's latency is in the report
    assert rep["verdict"] == "pass", [e["text"] for e in rep["expectations"] if not e["passed"]]
    lat = {f["fault"]: f for f in rep["faults"]}
    assert lat["leak"]["alarm"] == "leak" and 0 < lat["leak"]["latency_s"] <= 15 * 60
    assert lat["motor_stall"]["alarm"] == "motor_stall"
    assert lat["power_cut"]["alarm"] == "unexpected_reset"
    assert lat["power_cut"]["latency_s"] == pytest.approx(30 * 60, abs=1)


ADMIXTURE = """
name = "admixture change"
duration = "1d"
prescription = "rx-morphine.toml"
[[event]]
at = "0d 06:00"
action = "suspend"
minutes = 30
[[event]]
at = "0d 06:05"
action = "refill"
fill_ml = 18
[event.prescription]
reservoir = { capacity_ml = 20, fill_ml = 18, low_alert_ml = 2 }
catheter = { volume_ul = 150 }
basal = { steps = [ { start = "00:00", rate_ul_per_h = 20 } ] }
[[event.prescription.drug]]
name = "morphine"
concentration_ug_per_ml = 10000
[[event.prescription.drug]]
name = "clonidine"
concentration_ug_per_ml = 500
hard_limit_ug_per_day = 600
soft_limit_ug_per_day = 480
[[event]]
at = "0d 06:10"
action = "resume"
"""


def test_refill_with_new_admixture_reaches_the_tip_after_the_dead_volume() -> None:
    sc = S.loads(ADMIXTURE, "adm.toml", EXAMPLES)
    rec = sim.run(sc)
    rep = R.build_report(rec)
    assert [(a.action, a.result) for a in rec.actions] == [
        ("start", "ok"), ("suspend", "ok"), ("refill", "ok"), ("resume", "ok")]
    assert list(rep["drugs"]) == ["morphine", "clonidine"]
    # 20 uL/h for 24 h less the 10-min pause; the new admixture leaves the tip only after the
    # 150 uL of old (morphine-only) fluid in the catheter: ~(17.8 h x 20 - 150) uL x 0.5 ug/uL
    assert rep["delivered_ul"] == pytest.approx(480 - 20 * 10 / 60, abs=1)
    clonidine = rep["drugs"]["clonidine"]["delivered_ug"]
    assert clonidine == pytest.approx((17.83 * 20 - 150) * 0.5, abs=3)
    assert rep["drugs"]["morphine"]["delivered_ug"] == pytest.approx(
        rep["delivered_ul"] * 10, abs=1)
