"""The dose-safety sequences of docs/safety.md, replayed as scenarios (docs/examples/sequences/)
through the real protocol on the emulator: each ends within the hard limit by the plant's own
truth (what really reached the catheter tip, pumphil/plant/drugs.py), with the alarms the policy
names. Each of these sequences broke the hard limit, or reset silently, before the continuous
guard, the periodic spacing, the write-ahead reservation and the reset policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pumphil import report as R
from pumphil import scenario as S
from pumphil import simulate as sim
from pumphil.emulator import Emulator
from pumphost.client import PumpClient

SEQUENCES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sequences"
H = 3_600_000


def _run(name: str) -> tuple[R.Recording, dict[str, Any]]:
    rec = sim.run(S.load(SEQUENCES / f"{name}.toml"))
    rep = R.build_report(rec)
    # each sequence file states what it proves ([[expect]] rows): all of it holds
    failed = [e["text"] for e in rep["expectations"] if not e["passed"]]
    assert rep["expectations"] and rep["verdict"] == "pass", failed
    return rec, rep


def _within_hard_limits(rep: dict[str, Any]) -> None:
    for name, d in rep["drugs"].items():
        assert d["hard_limit_ug_per_day"] is not None, name
        assert d["peak_24h_ug"] <= d["hard_limit_ug_per_day"], (name, d)


def _alarms(rep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["code"]: a for a in rep["alarms"]}


def test_setting_the_clock_back_after_every_periodic_bolus_gives_it_once_a_day() -> None:
    rec, rep = _run("clock-setback")
    _within_hard_limits(rep)
    starts = [e for e in rec.log if e.get("kind") == "bolus_start" and e.get("code") == "periodic"]
    skipped = [e for e in rec.log if e.get("kind") == "periodic_skipped"]
    # the clock keeps coming back to 05:59: the 06:00 start falls due ~260 times in 48 h and is
    # given once per 23 h of monotonic time
    assert 2 <= len(starts) <= 3, [e["t_ms"] for e in starts]
    assert len(skipped) > 100 and {e["code"] for e in skipped} == {"too_soon"}
    # programmed: 11.6 mg/day; the busiest 24 h stays within one day's programme
    assert rep["drugs"]["morphine"]["peak_24h_ug"] <= 11600 * 1.02


def test_basal_and_periodic_delivery_stop_at_the_hard_limit_with_a_medium_alarm() -> None:
    rec, rep = _run("limit-carry")
    _within_hard_limits(rep)
    alarms = _alarms(rep)
    assert alarms["dose_limit_hold"]["priority"] == "medium"
    # the pump held, and resumed once the window allowed (the scenario ends running)
    assert rep["final"]["state"] == "running"
    kinds = [e.get("kind") for e in rec.log]
    assert "dose_hold" in kinds and "dose_hold_end" in kinds
    refused = [a for a in rec.actions if a.action == "clinician_bolus" and a.result != "ok"]
    assert refused and {a.result for a in refused} <= {"dose_limit", "alarm"}


def test_repeated_power_cuts_neither_hide_delivery_nor_open_the_limit() -> None:
    rec, rep = _run("power-cuts")
    _within_hard_limits(rep)
    cuts = len([e for e in rec.scenario.events if e.action == "power_restore"])
    assert cuts == 23
    assert len(rep["resets"]) == cuts and {r["cause"] for r in rep["resets"]} == {"power_on"}
    assert len([e for e in rec.log if e.get("kind") == "reset"]) == cuts   # every one logged
    assert _alarms(rep)["unexpected_reset"]["priority"] == "low"
    final = R.final_status(rec)
    assert final is not None and final["presumed"]["strokes"] > 0
    # the 1-mg boluses after the cuts stop at the hard limit
    given = [a for a in rec.actions if a.action == "clinician_bolus" and a.result == "ok"]
    refused = [a for a in rec.actions if a.action == "clinician_bolus" and a.result != "ok"]
    assert given and refused


def test_fifty_power_cuts_in_a_day_are_a_reset_loop() -> None:
    rec, rep = _run("power-cut-loop")
    _within_hard_limits(rep)
    loop = _alarms(rep)["reset_loop"]
    assert loop["priority"] == "high"
    assert loop["raised_s"] <= 2 * 3600            # the third cut, 58 min after the first
    assert rep["final"]["state"] == "safe_state"
    assert len(rep["resets"]) == len([e for e in rec.log if e.get("kind") == "reset"])


def test_a_firmware_hang_is_a_logged_alarmed_reset_and_the_bolus_is_not_resumed() -> None:
    rec, rep = _run("hang")
    # the watchdog fires 8.388 s after the last feed, which came at most a few seconds before
    [reset] = rep["resets"]
    assert reset["cause"] == "watchdog" and 36000 + 8.388 <= reset["t_s"] <= 36000 + 9 + 8.388
    assert _alarms(rep)["watchdog_reset"]["priority"] == "medium"
    interrupted = [e for e in rec.log if e.get("kind") == "bolus_interrupted"]
    assert len(interrupted) == 1 and interrupted[0]["code"] == "clinician"
    assert not [e for e in rec.log if e.get("kind") == "bolus_end" and e.get("code") == "clinician"]
    assert rep["final"]["state"] == "running"          # therapy goes on after one reset


def test_a_hang_at_every_boot_ends_in_the_safe_state_with_a_high_alarm() -> None:
    rec, rep = _run("hang-every-boot")
    assert len(rep["resets"]) >= 3
    assert _alarms(rep)["reset_loop"]["priority"] == "high"
    assert rep["final"]["state"] == "safe_state"


def test_host_traffic_does_not_drain_the_battery_model(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # 20 000 hellos at once, then status polls every 30 s for a day and a half (the docs'
    # sequence sends 200 000; the charge is zero per request either way): the battery model and
    # the plant's cell end exactly where a run without traffic ends, so ERI comes at the same time.
    monkeypatch.setenv("ITPUMP_HOME", str(tmp_path / "home"))
    text = (SEQUENCES / "traffic.toml").read_text().replace("200000", "20000") \
        .replace('requests = 16900', 'requests = 4000').replace('"10s"', '"30s"')
    quiet = "\n".join(line for line in text.splitlines()) .split("[[event]]")[0]
    used = []
    for doc in (text, quiet):
        sc = S.loads(doc, str(SEQUENCES / "traffic.toml"), SEQUENCES)
        with Emulator(state_dir=tmp_path / f"s{len(used)}", seed=sc.seed, speed=None) as emu:
            with PumpClient.open(emu.serial_url, key_file=emu.key_file, timeout_s=10.0) as c:
                runner = sim.Runner(sc, emu, c)
                rec = runner.run()
                assert emu.board.app is not None
                battery = emu.board.app.supervisor.battery
                battery_state = battery.state()
                used.append((battery_state["consumed_uah"], battery_state["days_uah"],
                             emu.plant.battery_percent(), runner.traffic_sent,
                             R.build_report(rec)))
    (busy_uah, busy_days, busy_pct, sent, busy_rep), (calm_uah, calm_days, calm_pct, _, _) = used
    assert sent == 24000
    assert "battery_eri" not in _alarms(busy_rep)
    assert busy_rep["verdict"] == "pass"            # the file's own expectations, on this run
    assert busy_days[0] > 0 and abs(busy_uah - calm_uah) <= calm_uah // 1000
    assert busy_pct == pytest.approx(calm_pct, abs=0.001)
