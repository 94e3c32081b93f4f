# pumpcore.reservoir: levels at exact thresholds, draw, refill, times to low/empty.
from delivery_helpers import run_no_alloc
from pumpcore.reservoir import LEVEL_EMPTY, LEVEL_LOW, LEVEL_OK, MS_CAP, Reservoir

H = 3_600_000


def _rv(fill=18_000_000):
    return Reservoir(20_000_000, 2_000_000, 500_000, fill)


def test_levels_at_exact_thresholds():
    r = _rv(2_000_001)
    assert r.level() == LEVEL_OK
    assert r.draw(1) == 1
    assert r.remaining_nl == 2_000_000 and r.level() == LEVEL_LOW and r.is_low()
    r.draw(1_499_999)
    assert r.remaining_nl == 500_001 and r.level() == LEVEL_LOW and not r.is_empty()
    r.draw(1)
    assert r.level() == LEVEL_EMPTY and r.is_empty()


def test_draw_clamps_when_running_dry_and_refill():
    r = _rv(300)
    assert r.draw(250) == 250
    assert r.draw(250) == 50
    assert r.draw(250) == 0
    assert r.remaining_nl == 0 and r.drawn_nl == 300
    r.refill(20_000_000)
    assert r.remaining_nl == 20_000_000 and r.drawn_nl == 0 and r.level() == LEVEL_OK
    for bad in (-1, 20_000_001):
        try:
            r.refill(bad)
        except ValueError:
            continue
        raise AssertionError("accepted fill %r" % bad)


def test_bad_thresholds_are_refused():
    for cap, low, empty in ((20_000_000, 500_000, 500_000), (20_000_000, 20_000_000, 0),
                            (0, 1, 0), (20_000_000, 100, -1), (50_000_000, 2, 1)):
        try:
            Reservoir(cap, low, empty)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % ((cap, low, empty),))


def test_times_to_low_and_empty():
    r = _rv(18_000_000)
    # 16 mL to the low alert at 20 µL/h = 800 h: beyond the ms cap, exact in minutes
    assert r.ms_to_low(20_000) == MS_CAP
    assert r.minutes_to(r.low_alert_nl, 20_000) == 48_000
    assert r.minutes_to(r.empty_nl, 20_000) == 52_500
    # a fast rate: exact ceil in ms
    assert r.ms_to_low(4_000_000) == 16_000_000 * H // 4_000_000
    assert r.ms_to(17_999_999, 7) == (1 * H + 6) // 7
    assert r.ms_to_empty(0) is None and r.minutes_to(0, 0) is None
    assert r.ms_to(18_000_000, 5) == 0 and r.minutes_to(18_000_001, 5) == 0
    # the cap boundary itself
    gap = MS_CAP // 100  # at 36_000 nL/h one nL takes exactly 100 ms
    r2 = Reservoir(40_000_000, 2_000_000, 1_000, 1_000 + gap)
    assert r2.ms_to(1_000, 36_000) == gap * 100 < MS_CAP
    r2.refill(1_000 + gap + 1)
    assert r2.ms_to(1_000, 36_000) == MS_CAP
    # minutes_to floors: 1 nL at 7 nL/h = 8.57 min -> 8
    r3 = _rv(2_000_001)
    assert r3.minutes_to(2_000_000, 7) == 8


def _draw_many(r):
    n = 0
    for _ in range(1000):
        n += r.draw(250)
        if r.level() is LEVEL_EMPTY:
            n += 1
    return n


def test_draw_and_level_are_allocation_free():
    r = _rv(18_000_000)
    assert run_no_alloc(_draw_many, r) == 250_000
    assert r.remaining_nl == 17_750_000


def test_snapshot_restore():
    r = _rv(123_456)
    r.draw(1_000)
    r2 = _rv(0)
    r2.restore(r.snapshot())
    assert r2.remaining_nl == 122_456 and r2.drawn_nl == 1_000
    try:
        r2.restore({"remaining_nl": 30_000_000, "drawn_nl": 0})
    except ValueError:
        pass
    else:
        raise AssertionError("bad snapshot accepted")
