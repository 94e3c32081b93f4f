"""Scenario files (hil/pumphil/scenario.py): the TOML contract of issue 4, errors naming the file,
the field and the reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pumphil import scenario as S
from pumphil.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"

RX = """
[prescription.reservoir]
capacity_ml = 20
fill_ml = 18
low_alert_ml = 2
[prescription.catheter]
volume_ul = 150
[[prescription.drug]]
name = "morphine"
concentration_ug_per_ml = 10000
[prescription.basal]
steps = [ { start = "00:00", rate_ul_per_h = 20 } ]
"""


def scen(head: str, events: str = "") -> S.Scenario:
    return S.loads(head + RX + events, "t.toml", EXAMPLES)


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as e:
        S.loads(text, "bad.toml", EXAMPLES)
    assert str(e.value).startswith("bad.toml: ")
    return e.value.problems


def test_durations_exact_in_ms() -> None:
    assert S.parse_duration("30d") == 30 * 86_400_000
    assert S.parse_duration("90min") == 5_400_000
    assert S.parse_duration("36h") == 129_600_000
    assert S.parse_duration("45s") == 45_000
    assert S.parse_duration("1.5h") == 5_400_000
    assert S.parse_duration("0.001s") == 1
    for bad in ("30", "30 days", "1.5", "-1h", "0.0001s", "h", "", "1e3s"):
        with pytest.raises(ValueError):
            S.parse_duration(bad)
    with pytest.raises(TypeError):
        S.parse_duration(30)
    with pytest.raises(TypeError):
        S.parse_at(5)


def test_event_times() -> None:
    assert S.parse_at("1d 08:30") == 86_400_000 + 8.5 * 3_600_000
    assert S.parse_at("0d 00:00:05") == 5000
    assert S.parse_at("2d 23:59:59") == 3 * 86_400_000 - 1000
    assert S.parse_at("90min") == 5_400_000
    assert S.parse_at("36h") == S.parse_at("1d 12:00")
    for bad in ("1d 24:00", "1d 08:60", "1d 8", "08:30", "d 08:30", "1d08:30x"):
        with pytest.raises(ValueError):
            S.parse_at(bad)
    assert S.format_ms(S.parse_at("3d 04:05:06")) == "3d 04:05:06"


def test_minimal_scenario_defaults() -> None:
    sc = scen('duration = "36h"\n')
    assert sc.duration_ms == 36 * 3_600_000
    assert sc.days == 2              # a partial last day counts
    assert sc.seed == 0
    assert sc.start_time == dt.datetime(2026, 1, 5, 0, 0)
    assert sc.start_time.weekday() == 0
    assert sc.primed and sc.autostart
    assert sc.events == ()
    assert sc.name == "t"
    assert sc.rx["reservoir"]["fill_nl"] == 18_000_000
    assert sc.rx["drugs"][0]["conc_ug_per_ml"] == 10000


def test_prescription_file_relative_to_scenario(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rx.toml").write_text((EXAMPLES / "rx-morphine.toml").read_text())
    f = tmp_path / "sub" / "s.toml"
    f.write_text('duration = "1d"\nprescription = "rx.toml"\n')
    sc = S.load(f)
    assert sc.rx["basal"]["steps"] == [[0, 20000]]
    assert sc.prescription_source == str(tmp_path / "sub" / "rx.toml")
    # missing file: named with the field
    f.write_text('duration = "1d"\nprescription = "nope.toml"\n')
    with pytest.raises(ScenarioError) as e:
        S.load(f)
    assert e.value.problems[0][0] == "prescription.file"
    assert "nope.toml" in str(e.value)


def test_every_action_parses_to_wire_units() -> None:
    events = """
[start]
primed = false
autostart = false
[[event]]
at = "0d 01:00"
action = "patient_bolus"
[[event]]
at = "0d 02:00"
action = "clinician_bolus"
volume_ul = 12.5
duration_min = 1.5
[[event]]
at = "0d 03:00"
action = "program"
prescription = "rx-morphine.toml"
[[event]]
at = "0d 04:00"
action = "refill"
fill_ml = 17.5
[[event]]
at = "0d 04:30"
action = "refill"
fill_ml = 18
prescription = "rx-morphine-clonidine.toml"
[[event]]
at = "0d 05:00"
action = "suspend"
minutes = 30
[[event]]
at = "0d 06:00"
action = "ack"
alarm = "occlusion"
[[event]]
at = "0d 06:01"
action = "ack"
[[event]]
at = "0d 07:00"
action = "occlusion"
severity = "partial"
[[event]]
at = "0d 07:01"
action = "occlusion"
[[event]]
at = "0d 08:00"
action = "battery"
percent = 12
[[event]]
at = "0d 08:10"
action = "set_clock"
wall = "2026-03-29T02:30"
[[event]]
at = "0d 08:20"
action = "traffic"
requests = 200000
role = "none"
[[event]]
at = "0d 08:21"
action = "traffic"
requests = 100
every = "10s"
[[event]]
at = "0d 08:30"
action = "firmware_hang"
seconds = 9
[[event]]
at = "0d 08:31"
action = "firmware_hang"
seconds = 20
every_boot = true
"""
    events += '[[event]]\nat = "0d 09:00"\naction = "prime"\nvolume_ul = 150\n'
    simple = ["start", "stop", "resume", "silence", "clear_occlusion", "dislodge", "reseat",
              "leak", "clear_leak", "power_cut", "power_restore", "motor_stall",
              "clear_motor_stall"]
    for i, a in enumerate(simple):
        events += f'[[event]]\nat = "{10 + i}h"\naction = "{a}"\n'
    sc = scen('duration = "1d"\n', events)
    assert not sc.primed and not sc.autostart
    by = {(e.action, e.at_ms // 60000): e.params for e in sc.events}
    assert by[("clinician_bolus", 120)] == {"volume_nl": 12500, "duration_ms": 90000}
    assert by[("program", 180)]["rx"]["drugs"][0]["name"] == "morphine"
    assert by[("refill", 240)] == {"fill_nl": 17_500_000, "new_admixture": False, "rx": None,
                                   "source": ""}
    assert [d["name"] for d in by[("refill", 270)]["rx"]["drugs"]] == ["morphine", "clonidine"]
    assert by[("suspend", 300)] == {"minutes": 30}
    assert by[("ack", 360)] == {"alarm": "occlusion"}
    assert by[("ack", 361)] == {"alarm": None}
    assert by[("occlusion", 420)] == {"severity": "partial"}
    assert by[("occlusion", 421)] == {"severity": "complete"}
    assert by[("battery", 480)] == {"percent": 12}
    assert by[("prime", 540)] == {"volume_nl": 150_000}
    wall = dt.datetime(2026, 3, 29, 2, 30)
    assert by[("set_clock", 490)] == {"wall": wall, "day": (wall.date() - dt.date(2000, 1, 1)).days,
                                      "ms": 9_000_000}
    assert by[("traffic", 500)] == {"requests": 200000, "role": "none", "every_ms": 0}
    assert by[("traffic", 501)] == {"requests": 100, "role": "readonly", "every_ms": 10_000}
    assert by[("firmware_hang", 510)] == {"ms": 9000, "every_boot": False}
    assert by[("firmware_hang", 511)] == {"ms": 20000, "every_boot": True}
    assert set(S.ACTIONS) == {e.action for e in sc.events}
    assert [e.at_ms for e in sc.events] == sorted(e.at_ms for e in sc.events)


def test_events_sorted_stably_by_time() -> None:
    events = "".join(f'[[event]]\nat = "{t}"\naction = "{a}"\n' for t, a in (
        ("2h", "stop"), ("1h", "patient_bolus"), ("2h", "start"), ("0d 01:00", "ack")))
    sc = scen('duration = "1d"\n', events)
    assert [(e.at_ms // 3_600_000, e.action) for e in sc.events] == [
        (1, "patient_bolus"), (1, "ack"), (2, "stop"), (2, "start")]
    assert [e.index for e in sc.events] == [1, 3, 0, 2]


def test_errors_name_field_and_reason_all_at_once() -> None:
    text = """
duration = "30 days"
seed = -1
start_time = "yesterday"
colour = "blue"
[start]
primed = "yes"
[[event]]
at = "1d 25:00"
action = "patient_bolus"
[[event]]
at = "1h"
action = "teleport"
[[event]]
at = "1h"
action = "clinician_bolus"
volume_ul = 10
[[event]]
at = "1h"
action = "suspend"
minutes = 0
speed = 3
[[event]]
action = "ack"
[[event]]
at = "1h"
action = "occlusion"
severity = "total"
[[event]]
at = "1h"
action = "battery"
percent = 12.5
""" + RX
    got = dict(problems(text))
    assert "duration" in got and "30 days" in got["duration"]
    assert "seed" in got
    assert "start_time" in got
    assert got["colour"].startswith("unknown key")
    assert "start.primed" in got
    assert "event[0].at" in got
    assert "unknown action 'teleport'" in got["event[1].action"]
    assert got["event[2].duration_min"].startswith("missing")
    assert "event[3].minutes" in got and "event[3].speed" in got
    assert got["event[4].at"] == "missing"
    assert "event[5].severity" in got
    assert "decimals" in got["event[6].percent"]


def test_event_after_end_and_prescription_problems_prefixed() -> None:
    got = problems('duration = "1d"\n[[event]]\nat = "1d 00:01"\naction = "stop"\n' + RX)
    assert got[0][0] == "event[0].at" and "after the end" in got[0][1]
    bad_rx = RX.replace("volume_ul = 150", "volume_ul = 150.0001")
    got = problems('duration = "1d"\n' + bad_rx.replace("fill_ml = 18", "fil_ml = 18"))
    fields = [f for f, _ in got]
    assert "prescription.catheter.volume_ul" in fields
    assert "prescription.reservoir.fil_ml" in fields
    assert "prescription.reservoir.fill_ml" in fields
    got = problems('duration = "1d"\nprescription = 3\n')
    assert got == [("prescription", ("must be a file name (relative to the scenario) or an "
                                    "inline table"))]
    got = problems('duration = "1d"\n')
    assert got[0][0] == "prescription"
    got = problems('prescription = "rx-morphine.toml"\n')
    assert got[0][0] == "duration"


def test_unreadable_files_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as e:
        S.load(tmp_path / "missing.toml")
    assert "missing.toml" in str(e.value)
    f = tmp_path / "broken.toml"
    f.write_text("duration = \n")
    with pytest.raises(ScenarioError) as e:
        S.load(f)
    assert e.value.problems[0][0] == "toml"


def test_examples_parse() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("*.toml")
                   if not p.name.startswith(("rx-", "campaign-")))   # campaigns: test_campaign_spec
    assert names == ["dislodgement.toml", "faults.toml", "month-morphine-clonidine.toml",
                     "occlusion.toml",
                     "reservoir-empty.toml"]
    month = S.load(EXAMPLES / "month-morphine-clonidine.toml")
    assert month.duration_ms == 30 * 86_400_000 and month.days == 30
    acts = {e.action for e in month.events}
    assert {"patient_bolus", "clinician_bolus", "suspend", "refill"} <= acts
    assert [d["name"] for d in month.rx["drugs"]] == ["morphine", "clonidine"]
    assert month.rx["periodic"] and month.rx["patient"] is not None
    assert month.rx["basal"]["days"] is not None      # a flex (weekday) schedule
    for n in names:
        sc = S.load(EXAMPLES / n)
        assert sc.events and all(0 <= e.at_ms <= sc.duration_ms for e in sc.events)


def test_start_time_forms() -> None:
    assert scen('duration = "1d"\nstart_time = "2026-03-04T08:15"\n').start_time == \
        dt.datetime(2026, 3, 4, 8, 15)
    # a TOML local date-time literal works too
    assert scen('duration = "1d"\nstart_time = 2026-03-04T08:15:30\n').start_time == \
        dt.datetime(2026, 3, 4, 8, 15, 30)
    for bad in ('"2026-03-04T08:15+01:00"', "2026-03-04", '"1999-12-31T00:00"', "5"):
        got = dict(problems(f'duration = "1d"\nstart_time = {bad}\n' + RX))
        assert "start_time" in got, bad


def test_plant_table_sets_plant_figures_by_dotted_name() -> None:
    sc = scen('duration = "1h"\n[plant]\ntau_s = 0.45\nleak_factor = 5\n'
              '[plant.csf]\nbaseline_pa = 1100\ncardiac_hz = 1.25\n')
    assert sc.plant == {"tau_s": 0.45, "leak_factor": 5.0, "csf.baseline_pa": 1100.0,
                        "csf.cardiac_hz": 1.25}
    assert scen('duration = "1h"\n').plant == {}
    from pumphil.plant.params import PlantParams, with_overrides

    p = with_overrides(sc.plant)
    assert (p.tau_s, p.leak_factor, p.csf.baseline_pa, p.csf.cardiac_hz) == (0.45, 5.0, 1100.0, 1.25)
    assert PlantParams().csf.baseline_pa == 1300.0          # the defaults are not changed


def test_plant_table_errors_name_the_figure() -> None:
    got = problems('duration = "1h"\n[plant]\ntau = 1\ndislodged_pulsation_fraction = 2\n'
                   'noise_sigma_pa = "x"\n[plant.csf]\nbaseline_pa = true\n' + RX)
    fields = [f for f, _ in got]
    assert fields == ["plant.tau", "plant.dislodged_pulsation_fraction", "plant.noise_sigma_pa",
                      "plant.csf.baseline_pa"]
    assert "unknown plant figure" in got[0][1] and "between 0 and 1" in got[1][1]
    assert problems('duration = "1h"\nplant = 3\n' + RX) == [("plant", "must be a table")]
