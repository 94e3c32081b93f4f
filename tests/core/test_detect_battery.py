# pumpcore.detect_battery (helper E): consumption model, ERI >= 90 days before EOS at the current
# usage, EOS, no charge lost to rounding, persistence. Plain asserts; pytest and MicroPython.
from pumpcore import detect_battery as bat

DAY = 86400000


def test_sleep_only_consumption_is_exact():
    b = bat.BatteryDetector(sleep_ua=10)
    for _ in range(24 * 60):
        b.advance(60000)                 # 1 min steps: 10 uA * 1 min = 1/6 uAh each
    assert b.consumed_uah == 240 and b.rem_nas == 0
    assert b.days_recorded == 1 and b.usage_uah_per_day() == 240


def test_remainders_are_carried_not_dropped():
    b = bat.BatteryDetector(sleep_ua=0, stroke_nas=1)
    b.note_strokes(3599999)
    assert b.consumed_uah == 0 and b.rem_nas == 3599999
    b.note_strokes(1)
    assert b.consumed_uah == 1 and b.rem_nas == 0


def test_default_figures_match_the_plant():
    b = bat.BatteryDetector()
    b.note_strokes(1200)                 # 1200 strokes * 3 mC = 3.6 C = 1000 uAh
    assert b.consumed_uah == 1000
    b.note_samples(720)                  # 720 * 5 uC = 1 uAh
    b.note_wakeups(36)                   # 36 * 100 uC = 1 uAh
    assert b.consumed_uah == 1002 and b.rem_nas == 0


def test_a_burst_on_the_first_day_is_not_extrapolated_into_an_eri():
    # 5.6 mAh in the first hour (the charge 200 000 wake-ups would cost) used to be extrapolated to
    # 133 mAh/day and raise ERI at once; usage is now judged on whole days only
    b = bat.BatteryDetector(sleep_ua=0)
    b.note_wakeups(200000)
    assert b.advance(60 * 60000) is None
    assert b.usage_uah_per_day() is None          # no whole day yet: unknown, no model ERI
    assert b.advance(23 * 3600000) is None and not b.eri
    assert b.usage_uah_per_day() == b.consumed_uah    # one whole day: its consumption
    b.note_strokes(1200)                          # 1000 uAh on the second day
    b.advance(86400000)
    assert b.usage_uah_per_day() == (b.consumed_uah) // 2


def test_eri_exactly_at_90_days_and_eos_at_the_reserve():
    # capacity 100 000 uAh, reserve 2 000; usage 1 000 uAh/day (sleep only: 1000/24 uA is not an
    # int, so use strokes: 1200 strokes = 1000 uAh per day)
    b = bat.BatteryDetector(capacity_uah=100000, sleep_ua=0)
    assert b.eos_reserve_uah == 2000
    days = 0
    eri_day = None
    eos_day = None
    while days < 200 and eos_day is None:
        b.note_strokes(1200)
        ev = b.advance(DAY)
        days += 1
        if ev == bat.EV_ERI:
            eri_day = days
            # at ERI: remaining above the reserve is <= 90 days of usage, the day before it was not
            assert b.remaining_uah() - 2000 <= 90 * 1000
            assert b.remaining_uah() - 2000 + 1000 > 90 * 1000
        if ev == bat.EV_EOS:
            eos_day = days
    assert eri_day == 8 and eos_day == 98 and eos_day - eri_day >= 90
    assert b.eri and b.eos
    assert b.advance(DAY) is None                 # latched: no repeats


def test_eos_first_then_eri_when_both_are_due():
    b = bat.BatteryDetector(capacity_uah=10000, sleep_ua=0)
    b.note_strokes(12000)                         # 10 000 uAh: empty
    assert b.advance(1000) == bat.EV_EOS
    assert b.advance(1000) == bat.EV_ERI
    assert b.advance(1000) is None
    assert b.remaining_uah() == 0


def test_usage_is_the_mean_of_the_last_7_days():
    b = bat.BatteryDetector(sleep_ua=0)
    for d in range(10):
        b.note_strokes(1200 * (d + 1))            # 1000, 2000, ... uAh per day
        b.advance(DAY)
    assert b.days_recorded == 7
    assert b.usage_uah_per_day() == (4 + 5 + 6 + 7 + 8 + 9 + 10) * 1000 // 7
    assert b.days_to_eos() == (b.remaining_uah() - b.eos_reserve_uah) // b.usage_uah_per_day()


def test_state_roundtrip_and_malformed_state_refused():
    b = bat.BatteryDetector()
    b.note_strokes(12345)
    b.advance(3 * DAY + 12345)
    st = b.state()
    c = bat.BatteryDetector()
    c.load(st)
    assert c.state() == st
    for bad in ({"rem_nas": -1}, {"rem_nas": 3600000}, {"days_uah": [0]}, {"day_idx": 7},
                {"consumed_uah": True}, {"ms_in_day": DAY}):
        s2 = dict(st)
        s2.update(bad)
        try:
            c.load(s2)
            raise AssertionError("accepted %r" % (bad,))  # noqa: UP031 (MicroPython-portable)
        except ValueError:
            pass


def test_long_advance_splits_days():
    b = bat.BatteryDetector(sleep_ua=10)
    b.advance((1 << 29) - 1)                       # ~6.2 days in one call
    assert b.days_recorded == 6
    assert b.usage_uah_per_day() == 240
