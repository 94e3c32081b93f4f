"""The report builder (hil/pumphil/report.py) on hand-made recordings: day boundaries, missing
samples, counters, alarm intervals, summary. No emulator: fast, exact numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pumphil import report as R
from pumphil import scenario as S

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
H = 3_600_000
DAY = 24 * H


def status(delivered_nl: int, morphine_ng: int, reservoir_nl: int = 10_000_000,
           state: str = "running", requested: int = 0, delivered: int = 0,
           denied: dict[str, int] | None = None) -> dict[str, Any]:
    d = dict.fromkeys(("not_running", "alarm", "bolus_active", "lockout", "max_per_24h",
                       "dose_limit", "not_configured"), 0)
    d.update(denied or {})
    return {"state": state, "delivered_nl": delivered_nl, "reservoir_nl": reservoir_nl,
            "delivered_drug": {"morphine": [morphine_ng // 1000, morphine_ng % 1000]},
            "patient_bolus": {"requested": requested, "delivered": delivered, "denied": d},
            "clock": None}


def recording(duration: str = "2d") -> R.Recording:
    sc = S.loads(f'name = "synthetic"\nduration = "{duration}"\n'
                 'prescription = "rx-morphine.toml"\n', "syn.toml", EXAMPLES)
    return R.Recording(scenario=sc, stroke_nl=250)


def test_per_day_from_boundaries_and_totals_from_t0() -> None:
    rec = recording("2d")
    rec.baseline = status(150_000, 0)              # priming before t=0 is not counted
    rec.samples = [
        R.Sample(0, rec.baseline),
        R.Sample(12 * H, status(390_000, 2_400_000)),
        R.Sample(DAY, status(630_250, 4_802_500, requested=3, delivered=2,
                             denied={"lockout": 1})),
        R.Sample(DAY, status(640_250, 4_802_500, requested=3, delivered=2,
                             denied={"lockout": 1})),        # after an action at 24 h
        R.Sample(2 * DAY, status(1_110_250, 9_500_001, state="stopped", requested=4,
                                 delivered=2, denied={"lockout": 1, "alarm": 1})),
    ]
    rep = R.build_report(rec)
    assert rep["delivered_ul"] == 960.25
    assert rep["per_day"] == [
        {"day": 0, "delivered_ul": 480.25, "drugs_ug": {"morphine": 4802.5}},
        {"day": 1, "delivered_ul": 480.0, "drugs_ug": {"morphine": 4697.501}},
    ]
    assert rep["drugs"] == {"morphine": {"delivered_ug": 9500.001, "peak_24h_ug": 0.0,
                                         "peak_24h_end_s": None, "soft_limit_ug_per_day": None,
                                         "hard_limit_ug_per_day": None}}
    assert rep["patient_bolus"] == {"requested": 4, "delivered": 2, "denied": {
        "not_running": 0, "alarm": 1, "bolus_active": 0, "lockout": 1, "max_per_24h": 0,
        "dose_limit": 0}}
    assert rep["final"] == {"state": "stopped", "reservoir_ul": 10000.0}
    assert R.per_day_counts(rec)[1]["denied.alarm"] == 1
    assert R.per_day_counts(rec)[0]["delivered"] == 2


def test_missing_samples_use_the_next_answer() -> None:
    rec = recording("2d")
    rec.baseline = status(0, 0)
    rec.samples = [R.Sample(0, rec.baseline), R.Sample(DAY, None),
                   R.Sample(DAY + H, status(500_000, 5_000_000)),
                   R.Sample(2 * DAY, status(980_000, 9_800_000))]
    rep = R.build_report(rec)
    assert [d["delivered_ul"] for d in rep["per_day"]] == [500.0, 480.0]
    assert rep["delivered_ul"] == 980.0


def test_alarm_intervals_reraise_and_still_active() -> None:
    rec = recording("3d")
    log = [("alarm_raised", "occlusion", "high", 1000), ("alarm_raised", "occlusion", "high",
                                                          2000),
           ("alarm_cleared", "occlusion", "high", 5000),
           ("alarm_raised", "reservoir_low", "low", 6000),
           ("alarm_raised", "occlusion", "high", 7000),
           ("state", "alarm_stop", None, 7000)]
    rec.log = [{"kind": k, "code": c, "data": {"priority": p} if p else {}, "t_ms": t}
               for k, c, p, t in log] + [{"kind": "boot", "data": {}, "t_ms": 0}]
    rec.baseline = status(0, 0)
    rep = R.build_report(rec)
    assert rep["alarms"] == [
        {"code": "occlusion", "priority": "high", "raised_s": 1.0, "cleared_s": 5.0},
        {"code": "reservoir_low", "priority": "low", "raised_s": 6.0, "cleared_s": None},
        {"code": "occlusion", "priority": "high", "raised_s": 7.0, "cleared_s": None},
    ]
    text = R.summary_text(rec, rep)
    assert "0d 00:00:01  occlusion (high), cleared 0d 00:00:05" in text
    assert "0d 00:00:06  reservoir_low (low), still active" in text


def test_summary_lists_refusals() -> None:
    rec = recording("1d")
    rec.baseline = status(0, 0)
    rec.samples = [R.Sample(0, rec.baseline), R.Sample(DAY, status(480_000, 4_800_000))]
    rec.actions = [R.ActionResult(0, "start", "ok"),
                   R.ActionResult(8 * H, "patient_bolus", "lockout"),
                   R.ActionResult(9 * H, "refill", "titration_step", {"step": "program"})]
    text = R.summary_text(rec)
    assert "0d 08:00:00  patient_bolus: lockout" in text
    assert "0d 09:00:00  refill (program step): titration_step" in text
    assert "start" not in text.split("Actions not carried out:")[1]
    assert "Alarms: none" in text
    assert "Delivered: 0.480 mL" in text


def test_figures_say_what_they_show() -> None:
    """The PNG/HTML figures (pumphil.plots): doses in mg/day against the soft and hard limit
    lines; the alarm timeline with a priority legend and the fault injections; a pressure figure
    that does not claim "no alarms" when there was one."""
    from pumphil import plots

    sc = S.loads('name = "f"\nduration = "2d"\nprescription = "rx-morphine.toml"\n'
                 '[[event]]\nat = "1d 06:00"\naction = "occlusion"\n', "f.toml", EXAMPLES)
    rec = R.Recording(scenario=sc, stroke_nl=250, hard_limit_ng={"morphine": 30_000_000},
                      soft_limit_ng={"morphine": 20_000_000},
                      peak_24h_ng={"morphine": (4_850_000.0, DAY)})
    rec.baseline = status(0, 0)
    rec.samples = [R.Sample(0, rec.baseline), R.Sample(DAY, status(480_000, 4_800_000)),
                   R.Sample(2 * DAY, status(600_000, 6_000_000))]
    rec.log = [{"kind": "alarm_raised", "code": "occlusion", "data": {"priority": "high"},
                "t_ms": DAY + 6 * H + 135_000}]
    rep = R.build_report(rec)

    def legend(ax: Any) -> list[str]:
        return [t.get_text() for t in ax.get_legend().get_texts()]

    ax = plots.dose_per_day(rec, rep).axes[0]
    assert ax.get_ylabel() == "morphine (mg/day)"
    assert [b.get_height() for b in ax.patches] == [4.8, 1.2]
    assert legend(ax) == ["soft limit 20", "hard limit 30", "true peak 24 h 4.85",
                          "dose that day (pump)"]
    ax = plots.alarms(rec, rep).axes[0]
    assert legend(ax) == ["high priority", "medium priority", "low priority", "fault injected"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["occlusion"]
    # an alarm without a pressure window says so (it used to say "no alarms")
    texts = [t.get_text() for t in plots.pressure(rec, rep).axes[0].texts]
    assert texts == ["1 alarm(s), but no pressure windows were recorded"]
    rec.pressure = [R.PressureWindow("occlusion", DAY + 6 * H + 135_000,
                                     [(DAY + 6 * H, 1300), (DAY + 6 * H + 200_000, 9000)])]
    ax = plots.pressure(rec, rep).axes[0]
    assert legend(ax) == ["pressure samples", "alarm raised", "occlusion injected"]
    # a ziconotide-sized limit reads in ug/day
    from pumphost.units import dose_unit

    assert dose_unit(19.2) == ("ug/day", 1.0) and dose_unit(30000.0)[0] == "mg/day"
