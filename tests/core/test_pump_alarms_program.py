# Pump facade: alarm actions (stop at once / continue / safe state), reservoir low and empty,
# program changes at a stroke boundary, weekday profiles, bridge bolus, persistence seam.
import sys

import rx_helpers as RXH
from library_helpers import core_library
from pump_helpers import DAY, HOUR, MIN, MONDAY, kinds, programmed, run
from pumpcore.pump import Pump


def test_occlusion_stops_flow_at_once_and_cancels_bolus():
    p = programmed(RXH.morphine_rx())
    run(p, 2 * HOUR)
    p.patient_bolus()
    p.raise_alarm("occlusion")
    assert p.state == "alarm_stop"
    assert p.stop_mode == "immediate"                     # a fault stops mid-stroke
    assert not p.motor_enabled()
    assert p.status()["bolus"] is None
    assert run(p, HOUR) == 0
    assert p.patient_bolus()[0] == "not_running"
    assert p.start()[0] == "not_allowed"
    ev = kinds(p.pop_events())
    assert ("bolus_cancelled", "patient") in ev
    assert ("alarm_raised", "occlusion") in ev


def test_alarm_stop_left_only_after_ack_and_condition_gone():
    p = programmed(RXH.morphine_rx())
    p.raise_alarm("occlusion")
    assert p.ack("occlusion") == ("ok", None)
    assert p.state == "alarm_stop"                         # condition still present
    p.clear_condition("occlusion")
    assert p.state == "stopped"                            # no auto-restart: a clinician starts
    assert p.start() == ("ok", None)


def test_ack_of_unknown_or_inactive_alarm_is_refused():
    p = programmed(RXH.morphine_rx())
    assert p.ack("nonsense")[0] == "unknown_alarm"
    assert p.ack("occlusion")[0] == "unknown_alarm"
    assert p.ack()[0] == "unknown_alarm"


def test_dislodgement_continues_flow_but_blocks_boluses():
    p = programmed(RXH.morphine_rx())
    run(p, 2 * HOUR)
    p.raise_alarm("dislodgement")
    assert p.state == "running"
    assert p.patient_bolus()[0] == "alarm"
    p.ack()
    assert p.patient_bolus()[0] == "alarm"                 # high and still present
    assert run(p, HOUR) > 0


def test_fail_safe_goes_to_safe_state_and_commit_leaves_it():
    p = programmed(RXH.morphine_rx())
    p.fail_safe("ZeroDivisionError")
    assert p.state == "safe_state" and not p.motor_enabled()
    assert p.stop_mode == "immediate"
    assert p.start()[0] == "not_allowed"
    code, review = p.stage(RXH.morphine_rx())
    assert p.commit(review["checksum"])[0] == "ok"
    assert p.state == "stopped"


def test_reservoir_low_alerts_and_flow_continues_then_empty_stops():
    rx = RXH.simple_rx(100000)                            # 100 uL/h
    rx["reservoir"]["fill_nl"] = 2600000
    rx["reservoir"]["low_alert_nl"] = 2000000
    rx["reservoir"]["empty_nl"] = 500000
    p = programmed(rx)                                    # priming took 150 uL: 2.45 mL left
    assert p.status()["ms_to_low"] == (2450000 - 2000000) * 36000 // 1000
    run(p, 5 * HOUR)
    st = p.status()
    assert st["state"] == "running"
    assert [a[0] for a in st["alarms"]] == ["reservoir_low"]
    run(p, 15 * HOUR)                                     # 19.5 h to the empty threshold
    st = p.status()
    assert st["state"] == "alarm_stop"
    assert st["reservoir_nl"] == 500000
    assert "reservoir_empty" in [a[0] for a in st["alarms"]]
    assert p.refill(18000000)[0] == "ok"
    p.ack()
    assert p.state == "stopped"
    assert p.start()[0] == "ok"


def test_reservoir_times_recomputed_at_bolus_start():
    # At the start of a bolus the times to the low alert and to empty are those of the volume
    # left now at the new total rate (basal + bolus), exactly (ceil of the integral): computed
    # here from the prescription, not from the pump's own arithmetic.
    rx = RXH.morphine_rx()
    p = programmed(rx)
    run(p, 2 * HOUR)                                      # 02:00: basal 20 uL/h
    p.patient_bolus()
    st = p.status()
    bolus = rx["patient"]
    rate = 20000 + bolus["volume_nl"] * 3600000 // bolus["duration_ms"]   # 320 uL/h
    assert st["rate_nl_per_h"] == rate
    left = st["reservoir_nl"]
    for key, threshold in (("ms_to_empty", rx["reservoir"]["empty_nl"]),
                           ("ms_to_low", rx["reservoir"]["low_alert_nl"])):
        assert st[key] == -(-(left - threshold) * 3600000 // rate), key


def test_commit_while_running_takes_effect_at_stroke_boundary():
    p = programmed(RXH.simple_rx(10000))
    run(p, 10 * MIN + 1)
    pending_before = p.engine.acc()
    assert pending_before > 0
    code, review = p.stage(RXH.simple_rx(9900))   # a decrease: no titration interval
    assert code == "ok", review
    assert p.commit(review["checksum"])[0] == "ok"
    st = p.status()
    assert st["pending_program"] and st["basal_rate_nl_per_h"] == 10000
    run(p, p.next_wake_ms())                              # exactly to the next stroke
    st = p.status()
    assert not st["pending_program"]
    assert st["basal_rate_nl_per_h"] == 9900
    assert ("program_active", None) in kinds(p.pop_events())


def test_weekday_profiles_and_periodic_times():
    p = programmed(RXH.flex_rx())                         # Monday: weekday steps
    mon = run(p, DAY)
    assert mon * 250 <= 8 * 20000 + 16 * 30000 + 20000 < mon * 250 + 250
    run(p, 4 * DAY)                                       # Tue..Fri
    sat_steps = RXH.flex_rx()["basal"]["days"]["sat"]
    expected = 0
    for i in range(len(sat_steps)):
        end = sat_steps[i + 1][0] if i + 1 < len(sat_steps) else 1440
        expected += sat_steps[i][1] * (end - sat_steps[i][0]) // 60
    expected += 20000
    acc = p.engine.acc()
    sat = run(p, DAY)
    got = sat * 250
    assert abs(got - expected) < 250 + acc // 3600000 + 1


def test_bridge_keeps_old_rate_until_new_admixture_reaches_tip():
    rx = RXH.simple_rx(10000)
    p = programmed(rx)
    run(p, HOUR)
    p.stop()
    p.refill(18000000, new_admixture=True)
    new = RXH.simple_rx(5000)
    new["drugs"][0]["conc_ug_per_ml"] = 20000             # same daily dose, half the volume
    code, review = p.stage(new)
    assert code == "ok", review
    bridge = review["bridge"]
    assert bridge["volume_nl"] == 150000
    assert bridge["duration_ms"] == 15 * HOUR             # 150 uL at the old 10 uL/h
    assert p.commit(review["checksum"], bridge=True)[0] == "ok"
    p.start()
    assert p.status()["bridging"]
    assert p.status()["basal_rate_nl_per_h"] == 10000
    run(p, 15 * HOUR - 2 * MIN)
    assert p.status()["bridging"]
    run(p, 4 * MIN)
    st = p.status()
    assert not st["bridging"] and st["basal_rate_nl_per_h"] == 5000
    # the patient received the OLD concentration at the old volume rate throughout the bridge:
    # 24 h of 10 uL/h at 10 mg/mL == 2.4 mg/day, unchanged (nominal, what the pump reports)
    assert abs(p.delivered_ug[0] * 1000 - 16 * 10000 * 10) <= 250 * 10
    # the ledger counts each stroke at the top of the mechanism's accuracy (+5 %), and the
    # catheter's uncertainty band (band_in_nl = 150 uL x 5/105) at the higher concentration
    # twice: the prime's drug front and the 10 -> 20 mg/mL boundary, each counted that much early
    band = p.catheter.band_in_nl
    assert band == 7143
    expected = (16 * 10000 * 10 + band * 10 + band * (20 - 10)) * 105 // 100
    assert abs(st["rolling_24h_ng"]["morphine"] - expected) <= 250 * 20


def test_snapshot_restore_round_trip_continues_identically():
    p = programmed(RXH.morphine_rx())
    run(p, 5 * HOUR + 17)
    p.patient_bolus()
    snap = p.snapshot()
    q = Pump(library=core_library())
    assert q.restore(snap) == "ok"
    assert q.was_running()
    assert q.boot(resume=True) == ("ok", None)
    assert q.state == "running"
    p.pop_events()
    q.pop_events()
    # the restored pump continues the same therapy (the active bolus was cancelled by the reset)
    p.arbiter.cancel()
    p._update_rate()
    a = run(p, 10 * HOUR)
    b = run(q, 10 * HOUR)
    assert a == b
    assert p.status()["rolling_24h_ng"] == q.status()["rolling_24h_ng"]
    assert q.status()["patient_bolus"]["delivered"] == 1


def test_corrupt_snapshot_is_refused_whole():
    # refused whole: after a refusal the pump is a fresh one, whatever part of the snapshot was
    # read before the damaged field (clocks, slots, reservoir...)
    p = programmed(RXH.morphine_rx())
    snap = p.snapshot()
    fresh = Pump().snapshot()
    for breaker in ("rx", "reservoir", "catheter", "v", "ledger"):
        bad = dict(snap)
        bad[breaker] = "garbage"
        q = Pump(library=core_library())
        assert q.restore(bad) == "state_corrupt", breaker
        assert q.rx is None and q.state == "booting"
        assert q.snapshot() == fresh, breaker
    bad = dict(snap)
    bad["rx"] = RXH.simple_rx(10000)                      # program does not match its checksum
    assert Pump(library=core_library()).restore(bad) == "state_corrupt"


def test_steady_state_advance_does_not_allocate_on_micropython():
    p = programmed(RXH.simple_rx(20000))
    run(p, HOUR)
    if sys.implementation.name != "micropython":
        assert run(p, HOUR, chunk=45000) == 80
        return
    import micropython
    strokes = 0
    micropython.heap_lock()
    try:
        for _ in range(80):
            strokes += p.advance(45000)                  # one stroke every 45 s at 20 uL/h
    finally:
        micropython.heap_unlock()
    assert strokes == 80


def test_reset_comes_back_in_the_state_its_latched_alarms_demand():
    p = programmed(RXH.morphine_rx())
    p.raise_alarm("occlusion")
    q = Pump(library=core_library())
    assert q.restore(p.snapshot()) == "ok"
    q.boot(resume=q.was_running())
    assert q.state == "alarm_stop"
    p2 = programmed(RXH.morphine_rx())
    p2.fail_safe("MemoryError")
    q2 = Pump(library=core_library())
    assert q2.restore(p2.snapshot()) == "ok"
    q2.boot(resume=q2.was_running())
    assert q2.state == "safe_state"


def test_motor_stall_is_cleared_by_acknowledgement_after_service():
    p = programmed(RXH.morphine_rx())
    p.raise_alarm("motor_stall")
    assert p.state == "alarm_stop"
    assert p.ack("motor_stall") == ("ok", None)
    assert p.state == "stopped"
    assert p.start() == ("ok", None)


def test_restore_continues_log_sequence_and_flags_the_clock():
    p = programmed(RXH.morphine_rx())
    p.stop()
    last = p.pop_events()[-1]["seq"]
    q = Pump(library=core_library())
    q.restore(p.snapshot())
    q.boot()
    assert q.pop_events()[0]["seq"] == last + 1
    assert q.status()["clock_suspect"] is True
    q.set_clock(MONDAY[0], 0)
    assert q.status()["clock_suspect"] is False
