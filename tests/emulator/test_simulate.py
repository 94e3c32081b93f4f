"""`itpump simulate` end to end: scenario -> emulator (unchanged firmware) through the real serial
protocol -> JSON report (the issue-4 contract), summary and plots."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pumpcore import prescription
from pumphil import report as R
from pumphil import scenario as S
from pumphil import simulate as sim
from pumphil.emulator import Emulator
from pumphost.client import PumpClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"

# 3 days, flat 20 uL/h morphine 10 mg/mL, patient bolus 10 uL / 60-min lockout / max 4 per 24 h
SCENARIO = """
name = "three days"
duration = "3d"
seed = 7
prescription = "rx-morphine.toml"

[[event]]
at = "0d 08:00"
action = "patient_bolus"
[[event]]
at = "0d 08:30"                # inside the lockout
action = "patient_bolus"
[[event]]
at = "0d 12:00"
action = "clinician_bolus"
volume_ul = 20
duration_min = 10
[[event]]
at = "1d 06:00"
action = "occlusion"
severity = "complete"
[[event]]
at = "1d 09:00"                # the pump is in alarm: denied
action = "patient_bolus"
[[event]]
at = "1d 10:00"
action = "clear_occlusion"
[[event]]
at = "1d 10:05"
action = "ack"
[[event]]
at = "1d 10:06"
action = "start"
[[event]]
at = "2d 18:00"
action = "stop"
"""

CONTRACT_KEYS = ["schema_version", "scenario", "scenario_file", "scenario_sha256",
                 "prescription_checksum", "seed", "start_time", "firmware", "runtime", "verdict",
                 "duration_s", "stroke_nl", "delivered_ul", "per_day", "drugs", "patient_bolus",
                 "alarms", "faults", "resets", "final", "expectations"]


@pytest.fixture(scope="module")
def three_days() -> tuple[R.Recording, dict[str, Any]]:
    sc = S.loads(SCENARIO, str(EXAMPLES / "three.toml"), EXAMPLES)
    rec = sim.run(sc)
    return rec, R.build_report(rec)


def test_report_has_the_contract_shape(three_days: tuple[R.Recording, dict[str, Any]]) -> None:
    _, rep = three_days
    assert list(rep) == CONTRACT_KEYS
    assert rep["scenario"] == "three days"
    assert rep["duration_s"] == 3 * 86400
    assert rep["stroke_nl"] == 250
    assert rep["runtime"] == "cpython"
    assert [d["day"] for d in rep["per_day"]] == [0, 1, 2]
    assert all(list(d) == ["day", "delivered_ul", "drugs_ug"] for d in rep["per_day"])
    assert list(rep["drugs"]) == ["morphine"]
    assert list(rep["drugs"]["morphine"]) == ["delivered_ug", "peak_24h_ug", "peak_24h_end_s",
                                              "soft_limit_ug_per_day", "hard_limit_ug_per_day"]
    assert rep["schema_version"] == 2 and rep["seed"] == 7 and rep["firmware"] == "0.1.0"
    assert rep["start_time"] == "2026-01-05T00:00:00"
    assert rep["verdict"] == "none" and rep["expectations"] == []
    # the scenario's bytes and the pump's own checksum of the prescription it was given
    assert rep["scenario_sha256"] == hashlib.sha256(SCENARIO.encode()).hexdigest()
    assert rep["prescription_checksum"] == prescription.checksum(
        S.loads(SCENARIO, "x.toml", EXAMPLES).rx)
    assert [f["fault"] for f in rep["faults"]] == ["occlusion"]
    assert rep["resets"] == []
    assert list(rep["patient_bolus"]["denied"]) == ["not_running", "alarm", "bolus_active",
                                                    "lockout", "max_per_24h", "dose_limit"]
    for a in rep["alarms"]:
        assert list(a) == ["code", "priority", "raised_s", "cleared_s"]
    assert list(rep["final"]) == ["state", "reservoir_ul"]
    json.dumps(rep)   # JSON-able


def test_volumes_and_doses_add_up(three_days: tuple[R.Recording, dict[str, Any]]) -> None:
    _, rep = three_days
    per = rep["per_day"]
    assert sum(d["delivered_ul"] for d in per) == pytest.approx(rep["delivered_ul"], abs=1e-6)
    # day 0: basal 20 uL/h x 24 h + patient bolus 10 uL + clinician bolus 20 uL (whole strokes)
    assert per[0]["delivered_ul"] == pytest.approx(480 + 10 + 20, abs=0.5)
    # day 1 lost ~4 h to the occlusion alarm (06:00 + detection .. 10:06)
    assert 380 < per[1]["delivered_ul"] < 480 - 60
    # day 2 stops at 18:00
    assert per[2]["delivered_ul"] == pytest.approx(18 * 20, abs=0.5)
    # drug at the tip = volume x 10 ug/uL, shifted by the catheter's dead volume only
    total_ug = rep["drugs"]["morphine"]["delivered_ug"]
    assert total_ug == pytest.approx(rep["delivered_ul"] * 10, abs=10)
    # the plant's truth (its own line physics and plug flow) agrees: the busiest 24 h is day 0's
    # 510 uL at 10 ug/uL, give or take the window's position and the stroke jitter
    drug = rep["drugs"]["morphine"]
    assert drug["peak_24h_ug"] == pytest.approx(per[0]["drugs_ug"]["morphine"], rel=0.03)
    assert drug["hard_limit_ug_per_day"] == 30000
    assert sum(d["drugs_ug"]["morphine"] for d in per) == pytest.approx(total_ug, abs=1e-6)
    # the reservoir lost what left the pump
    fill_ul = 18000.0
    assert rep["final"]["reservoir_ul"] == pytest.approx(
        fill_ul - rep["delivered_ul"] - 150, abs=0.5)   # 150 uL primed before t=0
    assert rep["final"]["state"] == "stopped"


def test_boluses_and_alarms(three_days: tuple[R.Recording, dict[str, Any]]) -> None:
    rec, rep = three_days
    pb = rep["patient_bolus"]
    assert pb["requested"] == 3 and pb["delivered"] == 1
    assert pb["denied"]["lockout"] == 1
    assert pb["denied"]["alarm"] + pb["denied"]["not_running"] == 1
    occ = [a for a in rep["alarms"] if a["code"] == "occlusion"]
    assert len(occ) == 1 and occ[0]["priority"] == "high"
    assert 86400 + 6 * 3600 < occ[0]["raised_s"] < 86400 + 9 * 3600
    assert occ[0]["cleared_s"] is not None and occ[0]["cleared_s"] >= 86400 + 10 * 3600
    # every action has its result; refusals carry the pump's reason code
    results = [(a.action, a.result) for a in rec.actions]
    assert results[0] == ("start", "ok")
    assert ("patient_bolus", "lockout") in results
    assert ("clinician_bolus", "ok") in results
    assert results[-1] == ("stop", "ok")
    # the pressure the firmware sampled around the alarm shows the occlusion building up
    win = next(w for w in rec.pressure if w.code == "occlusion")
    before = [pa for t, pa in win.trace if t < 86400_000 + 6 * 3600_000]
    after = [pa for t, pa in win.trace if t >= win.raised_ms]
    assert before and after and max(after) > max(before)
    text = R.summary_text(rec, rep)
    assert "occlusion (high)" in text and "patient_bolus: lockout" in text


def test_plots_written(three_days: tuple[R.Recording, dict[str, Any]], tmp_path: Path) -> None:
    rec, _ = three_days
    rep = R.write_report(rec, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text()) == rep
    assert (tmp_path / "summary.txt").read_text().startswith("Scenario: three days")
    for name in R.PLOTS:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_same_scenario_and_seed_same_report(
        three_days: tuple[R.Recording, dict[str, Any]]) -> None:
    _, rep = three_days
    sc = S.loads(SCENARIO, str(EXAMPLES / "three.toml"), EXAMPLES)
    again = R.build_report(sim.run(sc))
    assert R.dumps(again) == R.dumps(rep)


def test_unprimed_no_autostart_and_refused_setup() -> None:
    text = SCENARIO.split("[[event]]")[0] + "[start]\nprimed = false\nautostart = false\n"
    sc = S.loads(text.replace('"3d"', '"2h"'), "x.toml", EXAMPLES)
    rec = sim.run(sc)
    rep = R.build_report(rec)
    assert rep["delivered_ul"] == 0.0 and rep["final"]["state"] == "stopped"
    assert rec.actions == []
    assert rec.baseline is not None and rec.baseline["catheter_primed"] is False
    # a prescription the pump refuses (morphine above the hard limit) stops the run at set-up
    bad = S.loads(SCENARIO.split("[[event]]")[0], "y.toml", EXAMPLES)
    rx = json.loads(json.dumps(bad.rx))
    rx["basal"]["steps"] = [[0, 200000]]     # 200 uL/h x 10 mg/mL = 48 mg/day > 30 hard
    bad = S.Scenario(**{**bad.__dict__, "rx": rx})
    with pytest.raises(sim.SimulationError) as e:
        sim.run(bad)
    assert e.value.reason == "hard_limit"


def test_runner_volume_matches_the_plant() -> None:
    """What the report says left the pump is what the plant's mechanism moved."""
    sc = S.loads(SCENARIO.split("[[event]]")[0].replace('"3d"', '"1d"'), "z.toml", EXAMPLES)
    emu = Emulator(seed=sc.seed).start()
    try:
        with PumpClient.open(emu.serial_url, key_file=emu.key_file, timeout_s=10.0) as c:
            runner = sim.Runner(sc, emu, c)
            runner.setup()
            moved0 = emu.plant.stroked_nl
            rec = runner.run_events()
            moved = emu.plant.stroked_nl - moved0
    finally:
        emu.close()
    rep = R.build_report(rec)
    assert rep["delivered_ul"] == pytest.approx(480, abs=0.5)
    assert rep["delivered_ul"] * 1000 == pytest.approx(moved, rel=0.02)   # stroke jitter/bias
