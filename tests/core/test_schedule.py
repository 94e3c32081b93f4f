# Plain-assert tests of pumpcore.schedule (run by pytest and under real MicroPython).
from pumpcore import schedule as S

STEPS = [[0, 20000], [480, 30000], [1200, 0]]
PERIODIC = [
    {"times_min": [360, 1080], "volume_nl": 25000, "duration_ms": 600000},
    {"times_min": [0, 720], "volume_nl": 5000, "duration_ms": 60000},
]


def test_rate_at_each_step_and_edges():
    assert S.rate_at(STEPS, 0) == 20000
    assert S.rate_at(STEPS, 479) == 20000
    assert S.rate_at(STEPS, 480) == 30000
    assert S.rate_at(STEPS, 1199) == 30000
    assert S.rate_at(STEPS, 1200) == 0
    assert S.rate_at(STEPS, 1439) == 0
    assert S.rate_at([[0, 7000]], 1439) == 7000


def test_next_boundary_is_strictly_after():
    assert S.next_boundary_min(STEPS, 0) == 480
    assert S.next_boundary_min(STEPS, 479) == 480
    assert S.next_boundary_min(STEPS, 480) == 1200
    assert S.next_boundary_min(STEPS, 1200) == 1440
    assert S.next_boundary_min(STEPS, 1439) == 1440
    assert S.next_boundary_min([[0, 1]], 0) == 1440


def test_rate_constant_until_next_boundary():
    for m in range(0, 1440, 7):
        b = S.next_boundary_min(STEPS, m)
        r = S.rate_at(STEPS, m)
        for x in (m, b - 1):
            assert S.rate_at(STEPS, x) == r
        if b < 1440:
            assert S.rate_at(STEPS, b) != r


def test_daily_volume_floor_and_exact_numerator():
    # 20000*8 h + 30000*12 h + 0 = 160000 + 360000 = 520000 nL
    assert S.daily_volume_nl(STEPS) == 520000
    assert S.daily_volume_numerator(STEPS) == 520000 * 60
    # 2001 nL/h for one day = 48024 nL exactly
    assert S.daily_volume_nl([[0, 2001]]) == 48024
    # fractional: 61 nL/h for 1 minute + 0 after: 61/60 nL -> floor 1, numerator 61
    assert S.daily_volume_nl([[0, 0], [1439, 61]]) == 1
    assert S.daily_volume_numerator([[0, 0], [1439, 61]]) == 61
    # the maximum rate all day stays exact: 24 mL
    assert S.daily_volume_nl([[0, 1000000]]) == 24000000
    # floor identity against the exact numerator on awkward rates
    steps = [[0, 2999], [7, 12345], [333, 999983], [1001, 59]]
    assert S.daily_volume_nl(steps) == S.daily_volume_numerator(steps) // 60


def test_volume_between_matches_daily():
    total = S.volume_between_nl(STEPS, 0, 1440)
    assert total == S.daily_volume_numerator(STEPS)
    part = S.volume_between_nl(STEPS, 470, 490)
    assert part == 10 * 20000 + 10 * 30000
    assert S.volume_between_nl(STEPS, 600, 600) == 0
    assert S.volume_between_nl(STEPS, 0, 700) + S.volume_between_nl(STEPS, 700, 1440) == total


def test_profile_for_weekdays():
    sat = [[0, 5000]]
    basal = {"steps": STEPS, "days": {"sat": sat, "sun": None}}
    for wd in range(7):
        expect = sat if wd == 5 else STEPS
        assert S.profile_for(basal, wd) is expect
    assert S.profile_for({"steps": STEPS, "days": None}, 3) is STEPS
    assert S.profile_for({"steps": STEPS}, 6) is STEPS
    assert S.WEEKDAYS[0] == "mon" and S.WEEKDAYS[6] == "sun"


def test_periodic_at():
    assert S.periodic_at(PERIODIC, 360) == 0
    assert S.periodic_at(PERIODIC, 1080) == 0
    assert S.periodic_at(PERIODIC, 0) == 1
    assert S.periodic_at(PERIODIC, 720) == 1
    assert S.periodic_at(PERIODIC, 361) == -1
    assert S.periodic_at([], 0) == -1


def test_periodic_due_half_open_window():
    assert S.periodic_due(PERIODIC, 359, 360) == 0      # crossing into the start minute
    assert S.periodic_due(PERIODIC, 360, 361) == -1     # already delivered at 360
    assert S.periodic_due(PERIODIC, 360, 360) == -1     # empty window
    assert S.periodic_due(PERIODIC, 100, 359) == -1
    assert S.periodic_due(PERIODIC, 700, 720) == 1
    assert S.periodic_due([], 0, 1439) == -1


def test_periodic_due_wraps_midnight():
    assert S.periodic_due(PERIODIC, 1439, 0) == 1       # start at 00:00
    assert S.periodic_due(PERIODIC, 1400, 5) == 1
    assert S.periodic_due(PERIODIC, 1439, 359) == 1     # only 0 crossed
    assert S.periodic_due(PERIODIC, 1439, 360) == 0     # 0 and 360 crossed: latest (360) wins


def test_periodic_due_latest_wins_never_stacks():
    # window (300, 800] holds 360 (entry 0) and 720 (entry 1): the latest, 720, wins
    assert S.periodic_due(PERIODIC, 300, 800) == 1
    # window (300, 1100] holds 360, 720, 1080: 1080 (entry 0) wins
    assert S.periodic_due(PERIODIC, 300, 1100) == 0


def test_periodic_next_min():
    assert S.periodic_next_min(PERIODIC, 0) == 360
    assert S.periodic_next_min(PERIODIC, 359) == 360
    assert S.periodic_next_min(PERIODIC, 360) == 720
    assert S.periodic_next_min(PERIODIC, 1080) == 1440       # tomorrow 00:00
    assert S.periodic_next_min(PERIODIC[:1], 1080) == 1440 + 360
    assert S.periodic_next_min(PERIODIC[:1], 1439) == 1440 + 360
    assert S.periodic_next_min([], 5) == -1


def test_minute_crossing_equals_ms_crossing():
    # contract in the module docstring: p < t*60000 <= n  <=>  p//60000 < t <= n//60000
    t = 360
    for p_ms in (21599999, 21600000, 21540000, 21000000):
        for n_ms in (21600000, 21600001, 21659999, 21599999):
            if n_ms < p_ms:
                continue
            by_ms = p_ms < t * 60000 <= n_ms
            by_min = S.periodic_due(PERIODIC[:1], p_ms // 60000, n_ms // 60000) == 0
            assert by_ms == by_min


def test_hot_functions_allocate_nothing():
    # Under MicroPython the heap is locked: any allocation raises MemoryError.  Under CPython
    # the same calls run unlocked (results still checked).
    try:
        import micropython
    except ImportError:
        micropython = None
    basal = {"steps": STEPS, "days": {"sat": [[0, 5000]]}}
    res = [0] * 10
    if micropython is not None:
        micropython.heap_lock()
    try:
        res[0] = S.rate_at(STEPS, 500)
        res[1] = S.next_boundary_min(STEPS, 500)
        res[2] = S.daily_volume_nl(STEPS)
        res[3] = S.periodic_due(PERIODIC, 359, 360)
        res[4] = S.periodic_next_min(PERIODIC, 1080)
        res[5] = S.periodic_at(PERIODIC, 720)
        res[6] = S.rate_at(S.profile_for(basal, 5), 100)
        res[7] = S.rate_at(S.profile_for(basal, 0), 100)
        res[8] = S.periodic_due(PERIODIC, 1439, 0)
        res[9] = S.step_index_at(STEPS, 1300)
    finally:
        if micropython is not None:
            micropython.heap_unlock()
    assert res == [30000, 1200, 520000, 0, 1440, 1, 5000, 20000, 1, 2]


def test_values_stay_small():
    # the largest legal day: 13 steps at 1 mL/h; every result < 2**30
    steps = []
    for i in range(13):
        steps.append([i * 100, 1000000])
    v = S.daily_volume_nl(steps)
    assert v == 24000000
    assert v < (1 << 30)
