# pumpcore.clock: (day, ms_of_day) time without big ints. Runs under pytest and MicroPython.
from delivery_helpers import run_no_alloc
from pumpcore.clock import (
    MS_PER_DAY,
    Clock,
    add_ms,
    diff_ms,
    from_ymd_hms,
    minute_of_day,
    to_ymd_hms,
    weekday,
)


def test_add_ms_rolls_over_at_exactly_midnight():
    assert add_ms(0, MS_PER_DAY - 1, 0) == (0, MS_PER_DAY - 1)
    assert add_ms(0, MS_PER_DAY - 1, 1) == (1, 0)
    assert add_ms(5, 0, MS_PER_DAY) == (6, 0)
    assert add_ms(5, 10, -11) == (4, MS_PER_DAY - 1)
    assert add_ms(3, 7, 3 * MS_PER_DAY + 5) == (6, 12)


def test_clock_advance_long_idle_and_rollover():
    c = Clock(0, 0)
    c.advance(2**29 - 1)  # the largest elapsed the shell may pass: 6 days + 18_470_911 ms
    assert (c.day, c.ms) == (6, 18_470_911)
    c.advance(2**29 - 1)
    assert (c.day, c.ms) == (12, 36_941_822)
    for _ in range(400):
        c.advance(MS_PER_DAY)
    assert (c.day, c.ms) == (412, 36_941_822)
    c.advance(MS_PER_DAY - 36_941_822)
    assert (c.day, c.ms) == (413, 0)
    c.set(0, 3 * MS_PER_DAY + 1)
    assert (c.day, c.ms) == (3, 1)


def _advance_many(c):
    for _ in range(1000):
        c.advance(123_456_789)
    return c.day


def test_clock_advance_does_not_allocate():
    c = Clock(9000, 86_000_000)
    run_no_alloc(_advance_many, c)
    total = 1000 * 123_456_789 + 86_000_000
    assert c.day == 9000 + total // MS_PER_DAY
    assert c.ms == total % MS_PER_DAY


def test_diff_ms_exact_below_cap_and_capped_at_or_above():
    cap = 3_600_000
    assert diff_ms(10, 1000, 10, 5000, cap) == 4000
    assert diff_ms(10, MS_PER_DAY - 1000, 11, 500, cap) == 1500
    assert diff_ms(10, 0, 10, cap - 1, cap) == cap - 1
    assert diff_ms(10, 0, 10, cap, cap) == cap
    assert diff_ms(10, MS_PER_DAY - 10, 11, cap - 10, cap) == cap
    assert diff_ms(10, MS_PER_DAY - 10, 11, cap - 11, cap) == cap - 1
    assert diff_ms(10, 0, 5000, 0, cap) == cap
    # negative differences are clamped symmetrically
    assert diff_ms(10, 5000, 10, 1000, cap) == -4000
    assert diff_ms(5000, 0, 10, 0, cap) == -cap


def test_diff_ms_large_caps_never_build_big_ints():
    # The largest small-int-safe cap (12.4 days): results below it are exact.
    cap = 2**30 - 1
    assert diff_ms(0, 0, 12, 0, cap) == 12 * MS_PER_DAY
    assert diff_ms(0, 0, 12, 30_000_000, cap) == 12 * MS_PER_DAY + 30_000_000
    assert diff_ms(0, 0, 12, 50_000_000, cap) == cap  # 1_086_800_000 > cap
    assert diff_ms(0, 80_000_000, 13, 0, cap) == 13 * MS_PER_DAY - 80_000_000
    assert diff_ms(0, 0, 13, 0, cap) == cap
    assert diff_ms(0, 0, 10**6, 0, cap) == cap
    assert diff_ms(0, 0, 1, 0, MS_PER_DAY) == MS_PER_DAY
    assert diff_ms(0, 1, 1, 0, MS_PER_DAY) == MS_PER_DAY - 1

    def many(_):
        s = 0
        for d in range(30):
            s += diff_ms(0, 0, d, 50_000_000, cap) & 1
        return s

    run_no_alloc(many, None)  # under MicroPython a big int would raise MemoryError


def test_weekday_known_dates():
    assert weekday(0) == 5  # 2000-01-01 was a Saturday
    assert weekday(from_ymd_hms(2026, 11, 24)[0]) == 1  # Tuesday
    assert weekday(from_ymd_hms(2024, 2, 29)[0]) == 3  # Thursday
    assert weekday(from_ymd_hms(1999, 12, 31)[0]) == 4  # Friday (negative day)
    for d in range(0, 3000, 7):
        assert weekday(d) == 5


def test_minute_of_day():
    assert minute_of_day(0) == 0
    assert minute_of_day(59_999) == 0
    assert minute_of_day(60_000) == 1
    assert minute_of_day(MS_PER_DAY - 1) == 1439


def test_civil_round_trip_and_leap_years():
    assert from_ymd_hms(2000, 1, 1) == (0, 0)
    assert from_ymd_hms(2000, 3, 1)[0] == 60  # 2000 is a leap year
    assert from_ymd_hms(2100, 3, 1)[0] - from_ymd_hms(2100, 2, 28)[0] == 1  # 2100 is not
    assert from_ymd_hms(2001, 1, 1)[0] == 366
    assert from_ymd_hms(2026, 11, 24, 13, 40, 5, 7) == (9824, 49_205_007)
    prev = None
    for day in range(-800, 40000, 37):
        y, mo, d, h, mi, s, ms = to_ymd_hms(day, 12_345_678)
        assert (h, mi, s, ms) == (3, 25, 45, 678)
        assert from_ymd_hms(y, mo, d, h, mi, s, ms) == (day, 12_345_678)
        if prev is not None:
            assert (y, mo, d) > prev
        prev = (y, mo, d)


def test_from_ymd_hms_rejects_bad_fields():
    bad = [(2023, 2, 29), (2026, 4, 31), (2026, 13, 1), (2026, 0, 1), (2026, 1, 0), (2100, 2, 29)]
    for y, m, d in bad:
        try:
            from_ymd_hms(y, m, d)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % ((y, m, d),))
    for hms in [(24, 0, 0), (0, 60, 0), (0, 0, 60)]:
        try:
            from_ymd_hms(2026, 1, 1, hms[0], hms[1], hms[2])
        except ValueError:
            continue
        raise AssertionError("accepted time %r" % (hms,))
    assert from_ymd_hms(2024, 2, 29)[0] == 8825
