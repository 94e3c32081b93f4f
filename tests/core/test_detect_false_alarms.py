# False alarms (helper E): one simulated day of normal physiology with sensor noise and drift,
# fed to all four detectors exactly as the Pump will -> 0 alarms. The 90-day version is
# bench/bench_false_alarms.py (prints the count). Plain asserts; pytest and MicroPython.
from pumpcore import detect_battery, detect_motor
from signals import normal_day


def test_one_day_of_normal_physiology_raises_nothing():
    rig = normal_day(2026, hours=24)
    assert rig.windows == 288
    assert rig.strokes >= 7 * 24 + 4 * 40     # 7-8 low-rate strokes an hour + 4 boluses
    assert rig.events == [], rig.events
    assert rig.occ.ref_pa() is not None and 1150 <= rig.occ.ref_pa() <= 1450


def test_one_day_of_normal_motor_and_battery_raises_nothing():
    m = detect_motor.MotorDetector()
    b = detect_battery.BatteryDetector()
    events = []
    # lowest rate: a stroke every 7.5 min, each with its feedback; windows and wake-ups charged
    for i in range(24 * 8):
        m.note_command(250)
        assert m.stroke_result(True) is None
        m.note_feedback(250)
        b.note_strokes(1)
        b.note_wakeups(2)
        b.note_samples(55 + 150)
        for ev in (m.advance(450000), b.advance(450000)):
            if ev is not None:
                events.append(ev)
    assert events == []
    assert b.days_recorded == 1
    assert 300 <= b.usage_uah_per_day() <= 600          # ~160 strokes' worth + sleep + samples
    assert b.days_to_eos() > 3 * 365
