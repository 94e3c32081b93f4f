"""Scenario expectations ([[expect]] rows, pumphil.expect / judge / programme) on hand-made
recordings: parsing with named errors, every kind judged pass and fail, the programme's integral
against figures worked out by hand. No emulator: fast, exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pumphil import report as R
from pumphil import scenario as S
from pumphil import simulate as sim
from pumphil.judge import human_s
from pumphil.programme import program_ng
from pumphil.recording import DrugTruth

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
MIN = 60_000
H = 3_600_000
DAY = 24 * H

HEAD = """
name = "x"
duration = "3d"
prescription = "rx-morphine.toml"
[[event]]
id = "occ"
at = "1d 09:00"
action = "occlusion"
[[event]]
at = "1d 10:00"
action = "clear_occlusion"
[[event]]
at = "0d 08:00"
action = "patient_bolus"
[[event]]
at = "0d 20:00"
action = "patient_bolus"
"""


def sc_with(rows: str, head: str = HEAD) -> S.Scenario:
    return S.loads(head + rows, "x.toml", EXAMPLES)


def problems(rows: str, head: str = HEAD) -> list[tuple[str, str]]:
    with pytest.raises(S.ScenarioError) as e:
        sc_with(rows, head)
    return e.value.problems


def status(state: str = "running", morphine_ng: int = 0, delivered_nl: int = 0,
           denied: dict[str, int] | None = None, requested: int = 0,
           delivered: int = 0) -> dict[str, Any]:
    d = dict.fromkeys(("not_running", "alarm", "bolus_active", "lockout", "max_per_24h",
                       "dose_limit"), 0)
    d.update(denied or {})
    return {"state": state, "delivered_nl": delivered_nl, "reservoir_nl": 10_000_000,
            "delivered_drug": {"morphine": [morphine_ng // 1000, morphine_ng % 1000]},
            "patient_bolus": {"requested": requested, "delivered": delivered, "denied": d}}


def alarm(kind: str, code: str, t_ms: int, prio: str = "high") -> dict[str, Any]:
    return {"kind": kind, "code": code, "data": {"priority": prio}, "t_ms": t_ms}


def judged(rows: str, **rec_fields: Any) -> list[dict[str, Any]]:
    rec = R.Recording(scenario=sc_with(rows), stroke_nl=250)
    rec.baseline = status()
    rec.samples = [R.Sample(0, rec.baseline), R.Sample(3 * DAY, status())]
    for k, v in rec_fields.items():
        setattr(rec, k, v)
    return R.build_report(rec)["expectations"]


# --- parsing ---------------------------------------------------------------------------------------
def test_every_kind_parses_into_its_fields_and_a_sentence() -> None:
    sc = sc_with("""
[[expect]]
alarm = "occlusion"
after = "occ"
within = "15min"
priority = "high"
why = "time to alarm"
[[expect]]
no_alarm = "any"
priority = "high"
to = "1d 09:00"
[[expect]]
delivered = "morphine"
expected = "program"
tolerance_pct = 2
from = "1d 00:00"
to = "2d 00:00"
[[expect]]
delivered = "morphine"
source = "pump"
at_most_ug = 0
from = "1d 09:05"
[[expect]]
peak_24h = "each"
[[expect]]
final_state = ["running", "stopped"]
[[expect]]
state = "alarm_stop"
at = "1d 09:30"
[[expect]]
resets = "any"
count = 0
[[expect]]
log = "bolus_start"
code = "patient"
at_least = 1
at_most = 2
[[expect]]
refused = "patient_bolus"
reason = ["lockout", "alarm"]
[[expect]]
accepted = "clear_occlusion"
[[expect]]
patient_bolus = "denied"
reason = "lockout"
count = 0
""")
    e = sc.expectations
    assert [x.kind for x in e] == ["alarm", "no_alarm", "delivered", "delivered", "peak_24h",
                                   "final_state", "state", "resets", "log", "refused",
                                   "accepted", "patient_bolus"]
    assert (e[0].subject, e[0].after_ms, e[0].within_ms, e[0].priority, e[0].why) == (
        ("occlusion",), DAY + 9 * H, 15 * MIN, "high", "time to alarm")
    assert e[0].text == "high-priority occlusion alarm within 15min after occ (occlusion at " \
        "1d 09:00:00)"
    assert (e[1].subject, e[1].to_ms, e[1].high) == ((), DAY + 9 * H, None)
    assert e[1].text == "no high-priority alarm in [0d 00:00:00, 1d 09:00:00)"
    assert (e[2].program, e[2].tolerance_pct, e[2].from_ms, e[2].to_ms, e[2].source) == (
        True, 2.0, DAY, 2 * DAY, "plant")
    assert (e[3].source, e[3].at_most_ug, e[3].to_ms) == ("pump", 0.0, None)
    assert e[4].subject == () and e[4].at_most_ug is None
    assert e[5].subject == ("running", "stopped") and e[6].at_ms == DAY + 9 * H + 30 * MIN
    assert (e[7].subject, e[7].low, e[7].high) == ((), 0, 0)
    assert (e[8].code, e[8].low, e[8].high) == ("patient", 1, 2)
    assert (e[9].reasons, e[9].low, e[9].high) == (("lockout", "alarm"), 1, None)  # default >= 1
    assert (e[10].low, e[11].reasons) == (1, ("lockout",))


def test_row_errors_are_named_like_the_scenario_format_all_at_once() -> None:
    got = problems("""
[[expect]]
alarm = "occlusoin"
[[expect]]
alarm = "occlusion"
no_alarm = "leak"
[[expect]]
final_state = "runing"
[[expect]]
delivered = "fentanyl"
expected_ug = 10
[[expect]]
delivered = "morphine"
expected = "program"
[[expect]]
resets = "watchdog"
[[expect]]
log = "reset"
count = 1
at_least = 1
[[expect]]
alarm = "occlusion"
within = "15 min"
[[expect]]
peak_24h = "morphine"
colour = "red"
[[expect]]
state = "running"
""")
    assert ("expect[0].alarm", "unknown alarm code 'occlusoin' (one of: "
            "occlusion, motor_stall, over_infusion, reservoir_empty, battery_eos, dislodgement, "
            "leak, self_test, state_lost, fault, reset_loop, under_infusion, battery_eri, "
            "dose_limit_hold, watchdog_reset, reservoir_low, unexpected_reset)") in got
    assert ("expect[1]", "needs exactly one of: alarm, no_alarm, delivered, peak_24h, "
            "final_state, state, resets, log, refused, accepted, patient_bolus "
            "(has alarm, no_alarm)") in got
    assert ("expect[2].final_state", "unknown state 'runing' (one of: booting, stopped, "
            "priming, running, suspended, alarm_stop, safe_state)") in got
    assert ("expect[3].delivered", "unknown drug of the prescription 'fentanyl' (one of: "
            "morphine)") in got
    assert ("expect[4].tolerance_pct", "missing (e.g. 2 for +-2 %)") in got
    assert ("expect[5].resets", "needs count, at_least or at_most") in got
    assert ("expect[6].count", "count (exactly) excludes at_least and at_most") in got
    assert ("expect[7].after", "missing (within is counted from an event)") in got
    assert ("expect[8].colour", "unknown key for 'peak_24h' (allowed: at_most_ug, why)") in got
    assert ("expect[9].at", "missing (the time the state is read)") in got
    # the file name leads the message, as for every scenario problem
    with pytest.raises(S.ScenarioError, match=r"^x\.toml: expect\[0\]\.alarm: unknown alarm"):
        sc_with('[[expect]]\nalarm = "occlusoin"\n')


def test_after_names_one_event_by_id_or_by_its_only_action() -> None:
    assert sc_with('[[expect]]\nalarm = "occlusion"\nafter = "occlusion"\nwithin = "1h"\n'
                   ).expectations[0].after_ms == DAY + 9 * H
    assert problems('[[expect]]\nalarm = "occlusion"\nafter = "patient_bolus"\n'
                    'within = "1h"\n') == [
        ("expect[0].after", "2 events have action 'patient_bolus': give the one you mean an id "
         "(id = \"...\") and name it")]
    assert problems('[[expect]]\nalarm = "occlusion"\nafter = "nope"\nwithin = "1h"\n') == [
        ("expect[0].after", "no event has id or action 'nope'")]
    # a repeating event counts from its first time; ids are unique and well-formed
    rep = """
name = "r"
duration = "1d"
prescription = "rx-morphine.toml"
[[event]]
id = "cuts"
at = "0d 01:00"
action = "power_cut"
repeat_every = "2h"
until = "0d 09:00"
"""
    e = sc_with('[[expect]]\nalarm = "unexpected_reset"\nafter = "cuts"\nwithin = "3h"\n',
                rep).expectations[0]
    assert e.after_ms == H
    bad = rep + '[[event]]\nid = "cuts"\nat = "0d 12:00"\naction = "leak"\n' \
        '[[event]]\nid = "a b"\nat = "0d 13:00"\naction = "clear_leak"\n'
    assert problems("", bad) == [
        ("event[2].id", "must be a name of letters, digits, '_', '-' or '.'"),
        ("event[1].id", "'cuts' is also the id of event[0]")]


def test_the_plants_reservoir_is_the_set_up_prescriptions(tmp_path: Path) -> None:
    # a refill the reservoir cannot hold and a later prescription of another size are scenario
    # errors (the plant's reservoir does not change size), named before any run
    head = HEAD.replace('prescription = "rx-morphine.toml"',
                        'prescription = "rx-morphine.toml"\n[[event]]\nat = "2d 10:00"\n'
                        'action = "refill"\nfill_ml = 25\n')
    got = problems("", head)
    assert got == [("event[0].fill_ml", "25 mL does not fit the reservoir (20 mL, the "
                    "prescription's capacity_ml, which sets the plant's)")]
    forty = tmp_path / "rx-40.toml"
    forty.write_text((EXAMPLES / "rx-morphine.toml").read_text().replace("capacity_ml = 20",
                                                                         "capacity_ml = 40"))
    later = HEAD + f'[[event]]\nat = "2d 10:00"\naction = "program"\nprescription = "{forty}"\n'
    assert problems("", later) == [("event[4].prescription.reservoir.capacity_ml",
                                    "40 mL differs from the set-up prescription's 20 mL (the "
                                    "plant's reservoir does not change size)")]


# --- judging ---------------------------------------------------------------------------------------
LATENCY = """
[[expect]]
alarm = "occlusion"
after = "occ"
within = "15min"
priority = "high"
"""


def test_fault_to_alarm_latency_pass_fail_already_active_and_missing() -> None:
    t = DAY + 9 * H
    [ok] = judged(LATENCY, log=[alarm("alarm_raised", "occlusion", t + 135_000)])
    assert (ok["passed"], ok["measured"], ok["unit"], ok["high"]) == (True, 135.0, "s", 900.0)
    assert ok["measured_text"] == "2 min 15 s" and ok["limit"] == "<= 15 min 00 s"
    assert ok["detail"] == "raised 1d 09:02:15, high"
    [late] = judged(LATENCY, log=[alarm("alarm_raised", "occlusion", t + 16 * MIN)])
    assert late["passed"] is False and late["measured"] == 960.0
    [low] = judged(LATENCY, log=[alarm("alarm_raised", "occlusion", t + MIN, "low")])
    assert low["passed"] is False and low["detail"] == "raised 1d 09:01:00, low, not high"
    [active] = judged(LATENCY, log=[alarm("alarm_raised", "occlusion", 2 * H)])
    assert active["passed"] is True and active["measured"] == 0.0
    assert active["detail"] == "already active since 0d 02:00:00, high"
    cleared = [alarm("alarm_raised", "occlusion", 2 * H), alarm("alarm_cleared", "occlusion", 3 * H)]
    [gone] = judged(LATENCY, log=cleared)
    assert gone["passed"] is False and gone["measured"] is None
    assert gone["detail"] == "not raised by the end"
    # the same latencies in the report, for every injected fault
    rec = R.Recording(scenario=sc_with(""), stroke_nl=250)
    rec.log = [alarm("alarm_raised", "occlusion", t + 135_000)]
    assert R.build_report(rec)["faults"] == [
        {"fault": "occlusion", "t_s": 118800.0, "alarm": "occlusion", "priority": "high",
         "raised_s": 118935.0, "latency_s": 135.0, "already_active": False}]


def test_alarm_counts_no_alarm_windows_and_priorities() -> None:
    log = [alarm("alarm_raised", "reservoir_low", 5 * H, "low"),
           alarm("alarm_raised", "occlusion", DAY + 10 * H),
           alarm("alarm_cleared", "occlusion", DAY + 11 * H),
           alarm("alarm_raised", "occlusion", 2 * DAY)]
    res = judged("""
[[expect]]
no_alarm = "any"
to = "0d 05:00"
[[expect]]
no_alarm = "any"
to = "0d 05:00:01"
[[expect]]
no_alarm = "any"
priority = "high"
to = "1d 00:00"
[[expect]]
no_alarm = ["leak", "occlusion"]
[[expect]]
alarm = "occlusion"
count = 2
[[expect]]
alarm = "occlusion"
from = "1d 12:00"
""", log=log)
    assert [r["passed"] for r in res] == [True, False, True, False, True, True]
    assert res[1]["detail"] == "reservoir_low 0d 05:00:00"
    assert res[3]["measured"] == 2 and res[3]["limit"] == "= 0"


def test_counted_rows_on_the_log_actions_resets_and_bolus_counters() -> None:
    log = [{"kind": "bolus_start", "code": "patient", "t_ms": 8 * H},
           {"kind": "bolus_start", "code": "periodic", "t_ms": 9 * H},
           {"kind": "bolus_start", "code": "patient", "t_ms": DAY}]
    actions = [R.ActionResult(8 * H, "patient_bolus", "ok"),
               R.ActionResult(20 * H, "patient_bolus", "lockout"),
               R.ActionResult(DAY + 10 * H, "clear_occlusion", "ok")]
    rows = """
[[expect]]
log = "bolus_start"
code = "patient"
count = 2
[[expect]]
log = "bolus_start"
code = "patient"
to = "1d 00:00"
at_most = 0
[[expect]]
refused = "patient_bolus"
reason = "lockout"
[[expect]]
refused = "patient_bolus"
reason = "alarm"
[[expect]]
accepted = "patient_bolus"
count = 1
[[expect]]
resets = "watchdog"
count = 1
[[expect]]
resets = "any"
at_least = 2
[[expect]]
patient_bolus = "denied"
reason = "lockout"
count = 1
[[expect]]
patient_bolus = "requested"
at_least = 3
"""
    rec = R.Recording(scenario=sc_with(rows), stroke_nl=250, log=log, actions=actions,
                      resets=[(5 * H, "power_on"), (6 * H, "watchdog")])
    rec.baseline = status()
    rec.samples = [R.Sample(0, rec.baseline),
                   R.Sample(3 * DAY, status(requested=2, delivered=1, denied={"lockout": 1}))]
    res = R.build_report(rec)["expectations"]
    assert [(r["passed"], r["measured"]) for r in res] == [
        (True, 2), (False, 1), (True, 1), (False, 0), (True, 1), (True, 1), (True, 2),
        (True, 1), (False, 2)]
    assert res[1]["limit"] == "<= 0" and res[1]["detail"] == "0d 08:00:00"
    assert res[2]["detail"] == "0d 20:00:00 lockout"


def test_state_rows_read_the_status_at_or_after_their_time() -> None:
    rows = """
[[expect]]
final_state = "running"
[[expect]]
state = "alarm_stop"
at = "1d 09:30"
[[expect]]
state = ["running", "suspended"]
at = "1d 09:30"
"""
    rec = R.Recording(scenario=sc_with(rows), stroke_nl=250)
    rec.baseline = status()
    rec.samples = [R.Sample(0, rec.baseline), R.Sample(DAY + 9 * H, status()),
                   R.Sample(DAY + 9 * H + 30 * MIN, status("alarm_stop")),
                   R.Sample(3 * DAY, status("stopped"))]
    res = R.build_report(rec)["expectations"]
    assert [(r["passed"], r["measured"], r["limit"]) for r in res] == [
        (False, "stopped", "= running"), (True, "alarm_stop", "= alarm_stop"),
        (False, "alarm_stop", "one of running, suspended")]
    # a checkpoint is added at each time an expectation reads the pump's status
    assert DAY + 9 * H + 30 * MIN in sim.checkpoints(rec.scenario)


def test_delivered_by_the_plant_or_the_pump_against_amounts_and_tolerances() -> None:
    rows = """
[[expect]]
delivered = "morphine"
expected_ug = 4800
tolerance_pct = 1
to = "1d 00:00"
[[expect]]
delivered = "morphine"
expected_ug = 4700
tolerance_pct = 1
to = "1d 00:00"
[[expect]]
delivered = "morphine"
source = "pump"
expected_ug = 4700
tolerance_pct = 1
to = "1d 00:00"
[[expect]]
delivered = "morphine"
at_most_ug = 1
from = "1d 00:00"
to = "2d 00:00"
"""
    rec = R.Recording(scenario=sc_with(rows), stroke_nl=250)
    rec.baseline = status()
    rec.samples = [R.Sample(0, rec.baseline), R.Sample(DAY, status(morphine_ng=4_700_000)),
                   R.Sample(3 * DAY, status(morphine_ng=4_700_000))]
    # the plant's truth: 4848 ug in day 0 (the mechanism's +1 %), 0.5 ug on day 1
    rec.truth = {"morphine": DrugTruth([-H, 0, DAY, 2 * DAY], [0.0, 0.0, 4_848_000.0,
                                                               4_848_500.0])}
    res = R.build_report(rec)["expectations"]
    assert [(r["passed"], r["measured"]) for r in res] == [
        (True, 4848.0), (False, 4848.0), (True, 4700.0), (True, 0.5)]
    assert res[0]["limit"] == "4.8 mg +-1 %" and res[0]["detail"] == "+1.00 % of expected"
    assert res[0]["low"] == pytest.approx(4752) and res[0]["high"] == pytest.approx(4848)
    assert res[0]["measured_text"] == "4.848 mg" and res[3]["measured_text"] == "0.5 ug"


def test_peak_24h_against_the_hard_limit_per_drug() -> None:
    rows = '[[expect]]\npeak_24h = "each"\n[[expect]]\npeak_24h = "morphine"\nat_most_ug = 5000\n'
    res = judged(rows, peak_24h_ng={"morphine": (30_100_000.0, DAY)},
                 hard_limit_ng={"morphine": 30_000_000})
    assert [(r["passed"], r["measured"], r["limit"]) for r in res] == [
        (False, 30100.0, "<= 30 mg (hard limit)"), (False, 30100.0, "<= 5 mg")]
    assert res[0]["text"] == "true peak 24 h of each drug at most the hard limit: morphine"
    [ok] = judged(rows.split("[[expect]]\npeak_24h = \"morphine\"")[0],
                  peak_24h_ng={"morphine": (29_000_000.0, DAY)},
                  hard_limit_ng={"morphine": 30_000_000})
    assert ok["passed"] is True
    # no known limit is no pass
    [unknown] = judged('[[expect]]\npeak_24h = "each"\n')
    assert unknown["passed"] is False and unknown["limit"] == "no limit known"


def test_verdict_and_summary() -> None:
    rec = R.Recording(scenario=sc_with(""), stroke_nl=250)
    assert R.build_report(rec)["verdict"] == "none"
    assert "Expectations: none stated" in R.summary_text(rec)
    rows = '[[expect]]\nfinal_state = "running"\nwhy = "therapy goes on"\n' \
           '[[expect]]\nresets = "any"\ncount = 0\n'
    rec = R.Recording(scenario=sc_with(rows), stroke_nl=250)
    rec.baseline = status("stopped")
    rep = R.build_report(rec)
    assert rep["verdict"] == "fail"
    text = R.summary_text(rec, rep)
    assert "Expectations: 1 of 2 passed: FAIL" in text
    assert "  FAIL  final state is running: measured stopped, limit = running" in text
    assert "        why: therapy goes on" in text
    assert "  PASS  any resets = 0: measured 0, limit = 0" in text
    rec.baseline = status("running")
    assert R.build_report(rec)["verdict"] == "pass"


def test_human_durations() -> None:
    assert [human_s(s) for s in (9, 135, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "9 s", "2 min 15 s", "3 h 05 min", "2 d 04 h"]


# --- the programme's integral ----------------------------------------------------------------------
FLEX = """
name = "flex"
duration = "7d"
prescription = "rx-morphine-clonidine.toml"
"""


def test_program_integral_follows_weekday_profiles_steps_and_periodic_boluses() -> None:
    rec = R.Recording(scenario=S.loads(FLEX, "f.toml", EXAMPLES), stroke_nl=250)
    # Monday: 20 uL/h 00-08, 28 uL/h 08-22, 20 uL/h 22-24 = 592 uL, + 2 x 25 uL periodic
    assert program_ng(rec, 0, DAY) == {"morphine": 6_420_000.0, "clonidine": 321_000.0}
    # Saturday (day 5): 22 uL/h flat = 528 uL + 50 uL
    assert program_ng(rec, 5 * DAY, 6 * DAY)["morphine"] == 5_780_000.0
    # a night: 20:30-22:00 at 28, 22:00-06:00 at 20 = 202 uL (the 06:00 bolus is after the end)
    assert program_ng(rec, DAY + 20 * H + 30 * MIN, 2 * DAY + 6 * H)["morphine"] == 2_020_000.0
    # seconds count: 90 s at 20 uL/h = 0.5 uL
    assert program_ng(rec, 0, 90_000)["morphine"] == pytest.approx(5_000.0)
    # a start at noon: the first 12 h are Monday's afternoon (28 x 10 + 20 x 2 + 25 at 18:00)
    noon = S.loads(FLEX + 'start_time = "2026-01-05T12:00"\n', "n.toml", EXAMPLES)
    assert program_ng(R.Recording(scenario=noon, stroke_nl=250), 0, 12 * H)["morphine"] \
        == 3_450_000.0


def test_program_integral_switches_at_accepted_programs_only() -> None:
    text = FLEX + '[[event]]\nat = "1d 00:00"\naction = "program"\n' \
        'prescription = "rx-morphine.toml"\n'
    rec = R.Recording(scenario=S.loads(text, "f.toml", EXAMPLES), stroke_nl=250)
    rec.actions = [R.ActionResult(DAY, "program", "ok")]
    # from day 1: morphine alone at 20 uL/h, no clonidine
    assert program_ng(rec, DAY, 2 * DAY) == {"morphine": 4_800_000.0}
    rec.actions = [R.ActionResult(DAY, "program", "titration_step")]
    assert program_ng(rec, DAY, 2 * DAY)["morphine"] == 6_420_000.0
