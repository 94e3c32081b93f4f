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
    # still leaves the pump; day 1: the half hour without power; day 2: the stall from 06:00
    per = [d["delivered_ul"] for d in rep["per_day"]]
    assert per[0] == pytest.approx(480, abs=0.5)
    assert 480 - 20 <= per[1] <= 480 - 5
    assert per[2] == pytest.approx(6 * 20, abs=3)
    assert rep["final"]["state"] == "alarm_stop"
    assert [(a.action, a.result) for a in rec.actions if a.result != "ok"] == [
        ("start", "not_allowed")]
