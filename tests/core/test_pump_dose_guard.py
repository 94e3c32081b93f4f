# The continuous dose guard (docs/therapy.md "Continuous dose guard"): every stroke is admitted
# only while every drug's rolling-24-h amount plus what the stroke pushes out of the tip stays
# within its hard limit; held strokes are dropped, never made up; dose_limit_hold (medium).
import rx_helpers as RXH
from library_helpers import core_library
from pump_helpers import DAY, HOUR, MIN, kinds, programmed, run

MORPHINE_HARD_NG = 30000000       # library hard limit, 30 mg/day


def _fill_with_clinician_boluses(p, volume_nl=100000):
    """Clinician boluses of 1 mg (100 uL at 10 mg/mL) back to back until the dose check refuses
    one: the rolling 24 h then sits just under the hard limit."""
    given = 0
    while True:
        code, data = p.clinician_bolus(volume_nl, 2 * MIN)
        if code != "ok":
            assert code == "dose_limit", code
            return given
        given += 1
        run(p, 2 * MIN + 1000, chunk=1000)


def _morphine_ng(p):
    return p.status()["rolling_24h_ng"]["morphine"]


def _delivered_ng(st):
    ug, ng = st["delivered_drug"]["morphine"]
    return ug * 1000 + ng


def test_basal_and_periodic_cannot_carry_the_rolling_24h_past_the_hard_limit():
    # Issue sequence: fill 24 h with clinician boluses just under the limit; basal and periodic
    # delivery then used to carry the total to 1.16 x the hard limit with no alarm.
    p = programmed(RXH.morphine_rx())
    assert _fill_with_clinician_boluses(p) >= 20
    ev = []
    cumulative = []                       # what left the tip, sampled every minute (truth)
    for minute in range(48 * 60):
        run(p, MIN)
        assert _morphine_ng(p) <= MORPHINE_HARD_NG, minute
        st = p.status()
        assert st["state"] == "running"
        cumulative.append(_delivered_ng(st))
        ev += kinds(p.pop_events())
    # every 24-h window of the truth (minute-aligned) is within the limit too
    for i in range(24 * 60, len(cumulative)):
        assert cumulative[i] - cumulative[i - 24 * 60] <= MORPHINE_HARD_NG, i
    assert ("alarm_raised", "dose_limit_hold") in ev
    assert ("dose_hold", "morphine") in ev
    assert ("dose_hold_end", None) in ev               # the window moved on: delivery resumed
    assert ("periodic_skipped", "dose_limit") in ev    # periodic boluses pass the same gate
    st = p.status()
    assert st["dose_guard"]["held_strokes"] > 0 and not st["dose_guard"]["holding"]
    assert ["dose_limit_hold", "medium", False, False] == [a[:4] for a in st["alarms"]
                                                            if a[0] == "dose_limit_hold"][0]


def test_held_strokes_are_never_made_up():
    # While the guard holds, the owed strokes are dropped: once it admits again, delivery goes on
    # at the programmed rate, not faster (no burst at the edge of the window).
    p = programmed(RXH.simple_rx(100000))          # 0.1 mL/h = 24 mg/day of morphine
    _fill_with_clinician_boluses(p)
    while not p.status()["dose_guard"]["holding"]:
        run(p, MIN)
    while True:                                   # the minute in which the hold ends counts too
        before = p.status()["delivered_nl"]
        run(p, MIN)
        if not p.status()["dose_guard"]["holding"]:
            break
    # the first hour from the end of the hold: at most the programmed hour (+1 stroke), however
    # long it held
    run(p, HOUR - MIN)
    assert p.status()["delivered_nl"] - before <= 100000 + 250


def test_a_hold_cancels_the_active_bolus_and_blocks_boluses_until_acknowledged():
    p = programmed(RXH.morphine_rx())
    _fill_with_clinician_boluses(p)
    # when the window next frees room, a clinician bolus that just fits the dose check starts;
    # the basal strokes on top of it then meet the guard, which holds and cancels the bolus
    started = False
    for _ in range(48 * 60):
        run(p, MIN)
        if p.status()["dose_guard"]["holding"]:
            continue
        room = MORPHINE_HARD_NG - _morphine_ng(p)
        vol = room * 100 // (10 * 105) // 250 * 250    # 10 ng/nL, counted at +5 %
        if vol >= 2500 and p.clinician_bolus(vol, 2 * MIN)[0] == "ok":
            started = True
            break
    assert started
    p.pop_events()
    run(p, 3 * MIN, chunk=1000)
    ev = kinds(p.pop_events())
    assert ("bolus_cancelled", "clinician") in ev and ("bolus_end", "clinician") not in ev
    assert p.status()["bolus"] is None
    assert ("alarm_raised", "dose_limit_hold") in ev or p.status()["dose_guard"]["holding"]
    assert p.patient_bolus()[0] == "alarm"                 # unacknowledged medium alarm
    assert p.clinician_bolus(250, MIN)[0] == "alarm"
    assert p.ack("dose_limit_hold") == ("ok", None)
    assert p.patient_bolus()[0] in ("dose_limit", "lockout")


def test_the_guard_stops_a_priming_bolus_at_the_limit():
    # priming strokes whose fluid leaves the tip (an over-prime) are guarded like any other
    p = programmed(RXH.morphine_rx(), start=False)
    _ = p.start()
    _fill_with_clinician_boluses(p)
    assert p.stop() == ("ok", None)
    run(p, MIN)
    assert p.prime(400000)[0] == "ok"       # the catheter is primed: all of it leaves the tip (4 mg)
    run(p, HOUR)
    assert _morphine_ng(p) <= MORPHINE_HARD_NG
    ev = kinds(p.pop_events())
    assert ("bolus_cancelled", "prime") in ev
    assert p.state == "stopped"


def test_the_guard_survives_a_snapshot_and_restore():
    from pumpcore.pump import Pump
    p = programmed(RXH.morphine_rx())
    _fill_with_clinician_boluses(p)
    run(p, 2 * HOUR)
    q = Pump(library=core_library())
    assert q.restore(p.snapshot()) == "ok"
    q.note_reset("power_on")
    q.boot(resume=q.was_running())
    assert q.state == "running"
    # the reset counts the record's reservation as delivered (it may take the ledger over the
    # limit): from then on no stroke is made while the ledger is over it
    for _ in range(6 * 60):
        over = _morphine_ng(q) > MORPHINE_HARD_NG
        before = q.status()["delivered_nl"]
        run(q, MIN)
        assert not over or q.status()["delivered_nl"] == before
        assert over or _morphine_ng(q) <= MORPHINE_HARD_NG


def test_limits_of_a_committed_program_only_tighten_until_it_applies():
    p = programmed(RXH.morphine_rx())
    slot = p.slot_names.index("morphine")
    assert p._hard_ng[slot] == MORPHINE_HARD_NG
    rx = RXH.morphine_rx()
    rx["drugs"][0]["hard_ng_per_day"] = 9000000
    rx["drugs"][0]["soft_ng_per_day"] = 9000000
    code, review = p.stage(rx)
    assert code == "ok", review
    assert p.commit(review["checksum"], confirm_soft=True)[0] == "ok"
    assert p._hard_ng[slot] == 9000000                     # stricter at once, before it applies
    run(p, DAY)
    assert p._hard_ng[slot] == 9000000
