# The state table: every row well-formed, decisions follow table order and guards, events without
# a row are refused with a reason code.
import rx_helpers as RXH
from library_helpers import core_library
from pump_helpers import HOUR, MIN, MONDAY, run
from pumpcore import reasons as R
from pumpcore import statemachine as SM
from pumpcore.pump import Pump


def _always_ok(name):
    return None


def test_every_row_names_known_states_and_events():
    events = SM.COMMANDS + SM.INTERNAL
    for state, event, nxt, guard in SM.TABLE:
        assert state in SM.STATES, state
        assert nxt in SM.STATES, nxt
        assert event in events, event
        assert guard is None or isinstance(guard, str)


def test_no_unreachable_duplicate_rows():
    seen = []
    for state, event, nxt, guard in SM.TABLE:
        # an unguarded row makes every later row for the same (state, event) unreachable
        assert (state, event, None) not in seen, (state, event)
        if guard is None:
            seen.append((state, event, None))


def test_every_state_is_reachable_from_booting():
    reach = [SM.BOOTING]
    changed = True
    while changed:
        changed = False
        for state, event, nxt, guard in SM.TABLE:
            if state in reach and nxt not in reach:
                reach.append(nxt)
                changed = True
    for s in SM.STATES:
        assert s in reach, s


def test_start_from_stopped_needs_guard():
    assert SM.decide(SM.STOPPED, SM.START, _always_ok) == (R.OK, SM.RUNNING)
    refusal = SM.decide(SM.STOPPED, SM.START, lambda name: R.NO_PROGRAM)
    assert refusal == (R.NO_PROGRAM, None)


def test_event_without_row_is_refused_with_reason():
    assert SM.decide(SM.RUNNING, SM.START, _always_ok) == (R.NOT_ALLOWED, None)
    assert SM.decide(SM.SAFE_STATE, SM.START, _always_ok) == (R.NOT_ALLOWED, None)
    assert SM.decide(SM.ALARM_STOP, SM.RESUME, _always_ok) == (R.NOT_ALLOWED, None)
    # the patient bolus gate's first check is "not running"
    assert SM.decide(SM.STOPPED, SM.PATIENT_BOLUS, _always_ok) == (R.NOT_RUNNING, None)
    assert SM.decide(SM.SUSPENDED, SM.PATIENT_BOLUS, _always_ok) == (R.NOT_RUNNING, None)


def test_rows_are_tried_in_order_with_fallback():
    # ack in alarm_stop leaves only when no stopping alarm is latched, otherwise stays
    assert SM.decide(SM.ALARM_STOP, SM.ACK, _always_ok) == (R.OK, SM.STOPPED)
    assert SM.decide(SM.ALARM_STOP, SM.ACK, lambda n: R.ALARM_ACTIVE) == (R.OK, SM.ALARM_STOP)
    # an expired suspend resumes when it can, else stops
    assert SM.decide(SM.SUSPENDED, SM.SUSPEND_EXPIRED, _always_ok) == (R.OK, SM.RUNNING)
    assert SM.decide(SM.SUSPENDED, SM.SUSPEND_EXPIRED, lambda n: R.RESERVOIR_EMPTY) == (R.OK, SM.STOPPED)


def test_faults_reach_alarm_stop_or_safe_state_from_every_active_state():
    for s in (SM.STOPPED, SM.PRIMING, SM.RUNNING, SM.SUSPENDED):
        assert SM.decide(s, SM.STOP_ALARM, _always_ok) == (R.OK, SM.ALARM_STOP)
        assert SM.decide(s, SM.FATAL, _always_ok) == (R.OK, SM.SAFE_STATE)


def test_motor_only_runs_in_running_or_priming():
    # Each state reached through the facade's commands; in each, an hour of time: strokes only
    # in running and priming (the expectation is docs/therapy.md's, written out here, not read
    # from the state table), and the motor enabled exactly there.
    moves = {"running": True, "priming": True}
    p = Pump(library=core_library())
    seen = []

    def check():
        enabled = p.motor_enabled()
        strokes = run(p, HOUR if p.state != "priming" else 5 * MIN)
        expected = moves.get(p.state, False)
        assert enabled == expected, (p.state, enabled)
        assert (strokes > 0) == expected, (p.state, strokes)
        seen.append(p.state)

    rx = RXH.morphine_rx()
    assert p.motor_enabled() is False                         # booting
    p.boot()
    code, review = p.stage(rx)
    assert p.commit(review["checksum"], confirm_soft=True)[0] == "ok"
    assert p.set_clock(MONDAY[0], MONDAY[1])[0] == "ok"
    check()                                                   # stopped, never primed
    assert p.prime(rx["catheter"]["volume_nl"])[0] == "ok"
    check()                                                   # priming
    run(p, 20 * MIN)
    check()                                                   # stopped after priming
    assert p.start()[0] == "ok"
    check()                                                   # running
    assert p.suspend(120)[0] == "ok"
    check()                                                   # suspended (an hour of two)
    assert p.resume()[0] == "ok"
    assert p.clinician_bolus(10000, 10 * MIN)[0] == "ok"      # a bolus active when it stops
    p.raise_alarm("occlusion")
    check()                                                   # alarm_stop
    p.fail_safe("test")
    check()                                                   # safe_state
    assert seen == ["stopped", "priming", "stopped", "running", "suspended", "alarm_stop",
                    "safe_state"]
