# pumpcore.detect_motor (helper E): stall after one retry; over/under-infusion over 15 minutes at
# the GIP thresholds (> 110 %, < 90 %). Plain asserts; runs under pytest and MicroPython.
from pumpcore import detect_motor as mot

MIN = 60000


def test_stall_needs_one_failed_retry():
    d = mot.MotorDetector()
    assert d.stroke_result(True) is None
    assert d.stroke_result(False) == mot.RETRY
    assert d.stroke_result(True) is None           # the retry worked: no alarm
    assert not d.stalled
    assert d.stroke_result(False) == mot.RETRY
    assert d.stroke_result(False) == mot.EV_STALL
    assert d.stalled
    assert d.stroke_result(False) == mot.RETRY     # the shell may try again later: no repeat event
    assert d.stroke_result(False) is None
    assert d.stroke_result(True) == mot.EV_STALL_CLEAR
    assert not d.stalled


def _run(d, minutes, cmd_per_min, fb_per_min):
    evs = []
    for _ in range(minutes):
        d.note_command(cmd_per_min)
        d.note_feedback(fb_per_min)
        ev = d.advance(MIN)
        if ev is not None:
            evs.append(ev)
    return evs


def test_no_judgement_before_15_minutes():
    d = mot.MotorDetector()
    assert _run(d, 14, 1000, 2000) == []
    assert _run(d, 1, 1000, 2000) == [mot.EV_OVER]


def test_over_infusion_edge_110_percent():
    d = mot.MotorDetector()
    assert _run(d, 30, 1000, 1100) == []           # exactly 110 %: not over
    d.reset()
    evs = _run(d, 15, 1000, 1101)                  # 15 min at 110.1 %
    assert evs == [mot.EV_OVER] and d.over


def test_under_infusion_edge_90_percent():
    d = mot.MotorDetector()
    assert _run(d, 30, 1000, 900) == []            # exactly 90 %: not under
    d.reset()
    assert _run(d, 15, 1000, 899) == [mot.EV_UNDER] and d.under


def test_brief_excess_averaged_over_15_minutes_is_not_an_alarm():
    # 2 minutes at 150 % inside 15 minutes at 100 %: (13*1000 + 2*1500) / 15000 = 106.7 %
    d = mot.MotorDetector()
    _run(d, 15, 1000, 1000)
    assert _run(d, 2, 1000, 1500) == []
    assert _run(d, 13, 1000, 1000) == []


def test_runaway_without_command_is_over_infusion():
    d = mot.MotorDetector()
    assert _run(d, 15, 0, 250) == [mot.EV_OVER]


def test_nothing_commanded_nothing_delivered_is_fine():
    d = mot.MotorDetector()
    assert d.advance(3 * 3600000) is None
    assert not d.over and not d.under


def test_alarm_clears_when_the_window_is_back_in_bounds():
    d = mot.MotorDetector()
    assert _run(d, 15, 1000, 800) == [mot.EV_UNDER]
    evs = _run(d, 15, 1000, 1000)
    assert evs == [mot.EV_UNDER_CLEAR] and not d.under


def test_switch_from_over_to_under_loses_no_event():
    d = mot.MotorDetector()
    assert _run(d, 15, 1000, 2000) == [mot.EV_OVER]
    d.note_command(100000)
    ev = d.advance(MIN)                              # window now far under
    assert ev == mot.EV_OVER_CLEAR
    assert d.advance(MIN) == mot.EV_UNDER


def test_low_rate_stroke_granularity():
    # 2000 nL/h: one 250 nL stroke every 7.5 min; feedback for every stroke -> never an alarm
    d = mot.MotorDetector()
    for _ in range(200):
        d.note_command(250)
        d.note_feedback(250)
        for _ in range(15):
            assert d.advance(30000) is None
    assert not d.over and not d.under


def test_long_gap_is_bounded_work_and_judged():
    d = mot.MotorDetector()
    d.note_command(250)
    d.note_feedback(250)
    assert d.advance((1 << 29) - 1) is None
    assert d.minutes == mot.WINDOW_MIN and 0 <= d.ms_in_minute < mot.MINUTE_MS


def test_running_sums_equal_the_ring_after_any_sequence():
    # the 15-minute judgement reads running sums; they must always equal the ring's contents
    m = mot.MotorDetector()
    seq = 99
    for step in range(3000):
        seq = (seq * 1103515245 + 12345) % 2147483648
        op = seq % 5
        if op == 0:
            m.note_command(250)
        elif op == 1:
            m.note_feedback(250)
        elif op == 2:
            m.advance((seq >> 8) % 90000)
        elif op == 3 and step % 500 == 3:
            m.advance(40 * 60000)            # a long gap empties every bucket
        else:
            m.note_command(250)
            m.note_feedback(250)
        assert m.cmd_sum == sum(m.cmd_nl) and m.fb_sum == sum(m.fb_nl), step
