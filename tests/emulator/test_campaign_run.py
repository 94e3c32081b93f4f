"""One campaign run on the emulator: the detector probe records every judged stroke and window
without changing what the firmware does, follows the board through a reboot, and a run's row
is what its own scenario file gives when replayed alone with `itpump simulate`."""

from __future__ import annotations

import json
from pathlib import Path

import campaign_helpers as H
import pytest
from pumphil import report, scenario, simulate
from pumphil.campaign import spec, task
from pumphil.campaign.probe import MISSING, DetectorProbe
from pumphost import cli

SCEN = f"""
duration = "100min"
seed = 4
prescription = "{H.RX}"
[[event]]
at = "20min"
action = "power_cut"
[[event]]
at = "22min"
action = "power_restore"
[[event]]
at = "60min"
action = "occlusion"
severity = "complete"
"""


def test_probe_records_statistics_and_verdicts_without_changing_them() -> None:
    sc = scenario.loads(SCEN)
    plain = report.build_report(simulate.run(sc))
    probe = DetectorProbe()
    probed_rec = simulate.run(sc, on_runner=probe.attach_runner)
    probe.finish()
    probed = report.build_report(probed_rec)
    # the firmware behaves the same with the probe attached (its verdicts are the authority)
    assert probed["alarms"] == plain["alarms"] and probed["delivered_ul"] == plain["delivered_ul"]
    (occl,) = [a for a in probed["alarms"] if a["code"] == "occlusion"]
    s, w = probe.strokes, probe.windows
    assert probe.apps == 2                        # the App after the power cut is probed too
    assert min(s["t_ms"]) < 0 <= max(s["t_ms"])   # priming strokes before t=0
    assert list(s["t_ms"]) == sorted(s["t_ms"]) and list(w["t_ms"]) == sorted(w["t_ms"])
    raised = [t for t, e in zip(s["t_ms"], s["event"], strict=True) if e == 1]
    raised += [t for t, e in zip(w["t_ms"], w["occ_event"], strict=True) if e == 1]
    # the recorded verdict is the alarm the pump logged (the probe's time is the capture's end)
    assert len(raised) == 1 and 0 <= raised[0] / 1000 - occl["raised_s"] <= 3
    i = list(s["event"]).index(1) if 1 in s["event"] else None
    if i is not None:                             # raised on a stroke: a FLAT pair or elevation
        assert s["active"][i] == 1 and (s["flat_run"][i] >= 2 or s["elev_pa"][i] >= 400)
    # windows carry the catheter statistics every 5 min while powered
    after = [t for t in w["t_ms"] if t >= 0]
    assert 15 <= len(after) <= 20
    assert all(900 <= b <= 1700 for b, t in zip(w["baseline_pa"], w["t_ms"], strict=True)
               if 0 <= t < 60 * 60_000)
    assert MISSING not in [e for e, t in zip(w["occ_elev_pa"], w["t_ms"], strict=True)
                           if t > 10 * 60_000]


def test_a_run_replays_alone_from_its_scenario_file(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    camp = H.write_small(tmp_path)
    c = spec.load(camp)
    k = 2                                         # a complete occlusion
    r = task.execute(c, k)
    row = r.row
    assert row["status"] == "ok" and row["kind"] == "occlusion" and r.strokes and r.windows
    assert row["evaluable"] and row["detected"] and 0 < row["tta_s"] < 600
    assert row["seed"] == spec.draw(c, k).seed and row["plant.tau_s"] == spec.draw(c, k).plant[
        "tau_s"]
    out = tmp_path / "run.toml"
    assert cli.main(["campaign", "scenario", str(camp), "--run", str(k), "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["simulate", str(out), "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert [(a["code"], a["raised_s"]) for a in alone["alarms"]] == \
        [(a["code"], a["raised_s"]) for a in row["alarms"]]
    assert alone["delivered_ul"] == row["delivered_ul"]
    assert cli.main(["campaign", "scenario", str(camp), "--run", "99"]) == 2


def test_a_refused_run_is_a_row_with_its_error_and_seeds(tmp_path: Path) -> None:
    rx = Path(H.RX).read_text().replace("rate_ul_per_h = 20", "rate_ul_per_h = 4000")
    (tmp_path / "rx-high.toml").write_text(rx)
    text = H.SMALL.replace(H.RX, (tmp_path / "rx-high.toml").as_posix())
    c = spec.loads(text, "high.toml")
    r = task.execute(c, 0)
    assert r.row["status"] == "refused" and "program" in r.row["error"]
    assert r.row["seed"] == spec.draw(c, 0).seed and r.row["draw_seed"] == spec.draw(c, 0).draw_seed
    assert r.strokes is None
