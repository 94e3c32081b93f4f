# Alarm manager: latching, acknowledge, silence (<= 2 min), escalation, bolus blocking, tones.
from pumpcore import alarms as A
from pumpcore import reasons as R


def _kinds(m):
    out = [(e[0], e[1]) for e in m.events]
    del m.events[:]
    return out


def test_catalogue_has_priority_and_action_for_every_code():
    for code, prio, action in A.CATALOGUE:
        assert prio in (A.LOW, A.MEDIUM, A.HIGH)
        assert action in (A.CONTINUE, A.STOP, A.SAFE)
    for code in ("occlusion", "dislodgement", "motor_stall", "reservoir_low", "reservoir_empty",
                 "battery_eri", "battery_eos"):
        assert code in A.CODES, code
    assert A.priority_of("occlusion") == A.HIGH
    assert A.priority_of("battery_eri") == A.MEDIUM
    assert A.priority_of("reservoir_low") == A.LOW
    assert A.priority_of("nonsense") == 0


def test_alarm_latches_until_acknowledged_and_condition_gone():
    m = A.AlarmManager()
    assert m.raise_("occlusion", 10)
    assert not m.raise_("occlusion", 11)          # still latched: not raised twice
    m.condition_gone("occlusion", 20)
    assert m.is_latched("occlusion")               # gone but unacknowledged: stays
    assert m.ack("occlusion", 30) == R.OK
    assert not m.is_latched("occlusion")
    assert _kinds(m) == [("alarm_raised", "occlusion"), ("alarm_acknowledged", "occlusion"),
                         ("alarm_cleared", "occlusion")]


def test_ack_before_condition_gone_clears_later():
    m = A.AlarmManager()
    m.raise_("dislodgement", 0)
    m.ack(None, 5)
    assert m.is_latched("dislodgement")
    assert m.blocks_bolus()                        # high and still present
    m.condition_gone("dislodgement", 9)
    assert not m.is_latched("dislodgement")
    assert not m.blocks_bolus()


def test_ack_unknown_or_inactive_is_refused():
    m = A.AlarmManager()
    assert m.ack("occlusion", 0) == R.UNKNOWN_ALARM
    assert m.ack(None, 0) == R.UNKNOWN_ALARM
    assert m.ack("nonsense", 0) == R.UNKNOWN_ALARM


def test_bolus_blocking_by_priority():
    m = A.AlarmManager()
    m.raise_("reservoir_low", 0)                   # low: never blocks
    assert not m.blocks_bolus()
    m.raise_("battery_eri", 0)                     # medium unacknowledged: blocks
    assert m.blocks_bolus()
    m.ack("battery_eri", 1)                        # medium acknowledged, still present: allowed
    assert not m.blocks_bolus()


def test_silence_mutes_at_most_two_minutes_and_cannot_disable():
    m = A.AlarmManager()
    assert m.silence(0) == R.UNKNOWN_ALARM         # nothing to silence
    m.raise_("occlusion", 100)
    assert m.sounding(100) == "high"
    assert m.silence(100) == R.OK
    assert m.sounding(101) is None
    assert m.sounding(100 + A.SILENCE_S - 1) is None
    assert m.sounding(100 + A.SILENCE_S) == "high"
    assert A.SILENCE_S <= 120


def test_tone_is_highest_unacknowledged_priority_and_escalates():
    m = A.AlarmManager()
    m.raise_("reservoir_low", 0)
    assert m.sounding(0) == "low"
    m.raise_("under_infusion", 0)
    assert m.sounding(0) == "medium"
    m.tick(A.ESCALATE_MEDIUM_S - 1)
    assert m.sounding(A.ESCALATE_MEDIUM_S - 1) == "medium"
    m.tick(A.ESCALATE_MEDIUM_S)
    assert m.sounding(A.ESCALATE_MEDIUM_S) == "high"
    assert ("alarm_escalated", "under_infusion") in [(e[0], e[1]) for e in m.events]
    m.ack(None, A.ESCALATE_MEDIUM_S + 1)
    assert m.sounding(A.ESCALATE_MEDIUM_S + 1) is None
    for name in ("high", "medium", "low"):
        assert name in A.TONES and name in A.LEDS
    assert A.TONES["high"][:2] == (2, 5)           # two bursts of five tones


def test_stopping_latched_tracks_flow_stopping_alarms():
    m = A.AlarmManager()
    m.raise_("reservoir_low", 0)
    m.raise_("dislodgement", 0)
    assert not m.stopping_latched()
    m.raise_("motor_stall", 0)
    assert m.stopping_latched()


def test_snapshot_restore_round_trip():
    m = A.AlarmManager()
    m.raise_("occlusion", 7)
    m.ack("occlusion", 8)
    m2 = A.AlarmManager()
    m2.restore(m.snapshot(), 9)
    assert m2.is_latched("occlusion")
    assert m2.active() == m.active()


def test_latched_count_follows_every_raise_ack_clear_and_restore():
    # the queries short-circuit on n_latched == 0, so the count must never drift from latched[]
    m = A.AlarmManager()
    codes = [row[0] for row in A.CATALOGUE]
    seq = 12345
    for step in range(600):
        seq = (seq * 1103515245 + 12345) % 2147483648
        code = codes[seq % len(codes)]
        op = (seq >> 8) % 4
        if op == 0:
            m.raise_(code, step)
        elif op == 1:
            m.condition_gone(code, step)
        elif op == 2:
            m.ack(code, step)
        else:
            m.ack(None, step)
        assert m.n_latched == sum(1 for x in m.latched if x), step
        assert m.any_latched() == (m.n_latched > 0)
        if not m.n_latched:
            assert m.sounding(step) is None and not m.blocks_bolus() and not m.stopping_latched()
    m.raise_(codes[0], 1)
    m.raise_(codes[1], 1)
    r = A.AlarmManager()
    r.restore(m.snapshot(), 2)
    assert r.n_latched == sum(1 for x in r.latched if x) == m.n_latched


def test_next_change_is_the_silence_end_or_the_next_escalation():
    # the shell sleeps until this second instead of polling: it must name every self-change
    m = A.AlarmManager()
    assert m.s_to_next_change(0) is None
    m.raise_("occlusion", 10)                      # high: never escalates
    assert m.s_to_next_change(10) is None
    m.silence(20)
    assert m.s_to_next_change(20) == A.SILENCE_S
    assert m.s_to_next_change(20 + A.SILENCE_S - 1) == 1
    assert m.s_to_next_change(20 + A.SILENCE_S) is None      # silence over, nothing else pending
    m.raise_("reservoir_low", 30)                  # low: escalates after ESCALATE_LOW_S
    m.raise_("battery_eri", 40)                    # medium: after ESCALATE_MEDIUM_S
    assert m.s_to_next_change(200) == 40 + A.ESCALATE_MEDIUM_S - 200
    m.tick(40 + A.ESCALATE_MEDIUM_S)
    assert m.sounding(40 + A.ESCALATE_MEDIUM_S) == "high"
    assert m.s_to_next_change(40 + A.ESCALATE_MEDIUM_S) == 30 + A.ESCALATE_LOW_S - 40 - A.ESCALATE_MEDIUM_S
    t = 41 + A.ESCALATE_MEDIUM_S
    m.ack("reservoir_low", t)                      # acknowledged: no escalation left to wait for
    assert m.s_to_next_change(t) is None
    m.raise_("battery_eri", t + 1)                 # still latched (escalated): nothing pending
    assert m.s_to_next_change(t + 1) is None
