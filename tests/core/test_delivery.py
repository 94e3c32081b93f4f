# pumpcore.delivery: exact, allocation-free strokes from rates. Runs under pytest and MicroPython.
# Reference values use plain (possibly big) ints in the TEST, never in the engine.
from delivery_helpers import Lcg, run_no_alloc
from pumpcore.delivery import (
    MAX_RATE_NL_PER_H,
    MAX_STROKE_NL,
    DeliveryEngine,
    ceil_mul_div,
    mul_div,
    mul_mod,
)

H = 3_600_000


def test_strokes_at_basal_rate_exact_boundary():
    e = DeliveryEngine(250)
    e.set_rate(20_000)  # 80 strokes/h: one every 45 s exactly
    assert e.ms_to_next_stroke() == 45_000
    assert e.advance(44_999) == 0
    assert e.ms_to_next_stroke() == 1
    assert e.advance(1) == 1
    assert e.pending_nl == 0 and e.frac == 0
    assert e.ms_to_next_stroke() == 45_000
    assert e.advance(H) == 80
    assert e.strokes_total == 81


def test_rate_zero_never_strokes_and_has_no_next_stroke():
    e = DeliveryEngine(250)
    assert e.ms_to_next_stroke() is None
    assert e.advance(2**29 - 1) == 0
    e.set_rate(0)
    assert e.advance(123) == 0 and e.ms_to_next_stroke() is None
    assert e.advance(0) == 0


def test_tiny_rate_keeps_every_remainder():
    # 1 nL/h: a 250 nL stroke is owed after exactly 250 h = 9e8 ms, reached in odd chunks.
    e = DeliveryEngine(250)
    e.set_rate(1)
    total = 0
    elapsed = 0
    step = 7_777_777
    while elapsed + step < 900_000_000:
        total += e.advance(step)
        elapsed += step
    assert total == 0
    left = 900_000_000 - elapsed
    assert e.ms_to_next_stroke() == left
    assert e.advance(left - 1) == 0
    assert e.advance(1) == 1
    assert e.acc() == 0


def test_rate_change_mid_stroke_continues_the_integral():
    e = DeliveryEngine(250)
    e.set_rate(100_000)
    assert e.advance(4_000) == 0  # 111.1 nL owed
    e.set_rate(300_000)
    # owed acc = 100_000*4000 = 4e8; need 5e8 more at 3e5 -> ceil(1666.67) = 1667 ms
    assert e.ms_to_next_stroke() == 1667
    assert e.advance(1666) == 0
    assert e.advance(1) == 1
    assert e.acc() == 100_000 * 4000 + 300_000 * 1667 - 250 * H


def test_long_idle_advance_at_max_rate_is_exact():
    e = DeliveryEngine(250)
    e.set_rate(MAX_RATE_NL_PER_H)
    dt = 2**29 - 1
    s = e.advance(dt)
    exact = MAX_RATE_NL_PER_H * dt  # test-side big int
    assert s == exact // (250 * H)
    assert e.acc() == exact % (250 * H)
    assert 0 <= e.acc() < 2**30


def test_matches_reference_over_random_rates_and_chunks():
    g = Lcg(7)
    for stroke in (250, 1, 100, MAX_STROKE_NL):
        e = DeliveryEngine(stroke)
        T = stroke * H
        acc = 0
        total = 0
        for _ in range(400):
            r = g.choice([0, 1, 7, 20_000, 359_999, 3_600_001, MAX_RATE_NL_PER_H,
                          g.below(MAX_RATE_NL_PER_H + 1)])
            dt = g.choice([0, 1, 9, 999, 60_000, 3_599_999, g.below(2**29), g.below(100_000)])
            e.set_rate(r)
            nxt = e.ms_to_next_stroke()
            acc += r * dt
            total += e.advance(dt)
            assert total == acc // T
            assert e.acc() == acc % T
            assert e.pending_nl == (acc % T) // H and e.frac == acc % H
            if r:
                assert nxt == (T - (acc - r * dt) % T + r - 1) // r


def test_reset_remainder_and_suspend_keeps_remainder():
    e = DeliveryEngine(250)
    e.set_rate(90_000)
    e.advance(5_000)  # 125 nL owed
    assert e.pending_nl == 125
    e.set_rate(0)  # suspend: the owed 125 nL is kept
    e.advance(10 * H)
    assert e.pending_nl == 125
    e.set_rate(90_000)
    assert e.ms_to_next_stroke() == 5_000
    e.reset_remainder()
    assert e.acc() == 0 and e.ms_to_next_stroke() == 10_000


def test_bad_rates_and_strokes_are_refused():
    e = DeliveryEngine(250)
    for bad in (-1, MAX_RATE_NL_PER_H + 1, True, "5"):
        try:
            e.set_rate(bad)
        except ValueError:
            continue
        raise AssertionError("accepted rate %r" % (bad,))
    assert e.rate_nl_per_h == 0
    for bad in (0, -5, MAX_STROKE_NL + 1, 1000):
        try:
            DeliveryEngine(bad)
        except ValueError:
            continue
        raise AssertionError("accepted stroke %r" % (bad,))
    assert MAX_STROKE_NL * H < 2**30 <= (MAX_STROKE_NL + 2) * H


def test_mul_div_matches_big_int_reference():
    g = Lcg(3)
    cases = [(0, 5, 7), (5, 0, 7), (10**6, H, 600_001), (2**29 - 1, 2**29 - 1, 2**29 - 1),
             (1, 1, 1), (999_999, 3_600_000, 86_400_000)]
    for _ in range(300):
        cases.append((g.below(10**8), g.below(4 * 10**6), 1 + g.below(2**29 - 1)))
    for a, b, c in cases:
        if a * b // c >= 2**30:
            continue
        assert mul_div(a, b, c) == a * b // c
        assert mul_mod(a, b, c) == a * b % c
        assert ceil_mul_div(a, b, c) == (a * b + c - 1) // c
    try:
        mul_div(1, 1, 0)
    except ValueError:
        pass
    else:
        raise AssertionError("c = 0 accepted")


def _mul_div_all(cases):
    for i in range(len(cases)):
        a, b, c = cases[i]
        mul_div(a, b, c)
        mul_mod(a, b, c)


def test_mul_div_intermediates_stay_small_ints():
    # Under MicroPython the heap is locked: an intermediate >= 2**30 would be a big int, an
    # allocation, and fail here. Divisors across the whole range (so every digit width k),
    # multipliers up to 2**30 - 1, results just below 2**30.
    g = Lcg(11)
    cases = [(2**30 - 1, 2**30 - 1, 2**29 - 1), (2**29 - 2, 3, 2**29 - 1), (H - 1, H, 4_000_000),
             (2**30 - 1, 1, 1), (1, 2**30 - 1, 2), (99_000, H, 1)]
    for e in range(29):
        c = 1 << e
        cases.append((c - 1 if c > 1 else 0, 2**30 - 1, c + (e % 3)))
        cases.append((g.below(2**29) | 1, H, c + 1))
    for _ in range(200):
        c = 1 + g.below(2**29 - 1)
        cases.append((g.below(2**29), g.below(2**29), c))
    ok = [(a, b, c) for a, b, c in cases if a * b // c < 2**30]
    for a, b, c in ok:
        assert mul_div(a, b, c) == a * b // c
        assert mul_mod(a, b, c) == a * b % c
    assert len(ok) > 150
    run_no_alloc(_mul_div_all, ok)


def _steady(e):
    n = 0
    dt = 1
    for _ in range(2000):
        n += e.advance(dt)
        t = e.ms_to_next_stroke()
        dt = t if (n & 1) else t + 12_345
    return n


def test_advance_is_allocation_free():
    e = DeliveryEngine(250)
    e.set_rate(3_999_999)
    n = run_no_alloc(_steady, e)
    assert n >= 2000


def test_snapshot_restore_round_trip():
    e = DeliveryEngine(250)
    e.set_rate(12_345)
    e.advance(1_234_567)
    snap = e.snapshot()
    f = DeliveryEngine(250)
    f.restore(snap)
    assert f.acc() == e.acc() and f.rate_nl_per_h == 12_345
    assert f.advance(9_999_999) == e.advance(9_999_999)
    try:
        f.restore([10, 250, 0])
    except ValueError:
        pass
    else:
        raise AssertionError("bad snapshot accepted")


class _Rig:
    """The facade's steady-state stroke path, preallocated: engine -> reservoir -> catheter ->
    ledger, with a bolus on top of the basal."""

    def __init__(self):
        from pumpcore.bolus import Bolus
        from pumpcore.catheter import Catheter
        from pumpcore.ledger import Ledger
        from pumpcore.reservoir import Reservoir

        self.eng = DeliveryEngine(250)
        self.res = Reservoir(20_000_000, 2_000_000, 500_000, 18_000_000)
        self.cat = Catheter(150_000, 2, filled=True, concs=[10_000, 75])
        self.concs = [10_000, 75, 0, 0]
        self.led = Ledger(2)
        self.bolus = Bolus("patient", 100_000, 3_600_000)
        self.eng.set_rate(20_000 + self.bolus.rate_nl_per_h)


def _rig_loop(rig):
    n = 0
    for _ in range(400):
        dt = rig.eng.ms_to_next_stroke()
        rig.led.advance(dt)
        rig.bolus.advance(dt)
        k = rig.eng.advance(dt)
        while k > 0:
            drawn = rig.res.draw(250)
            rig.cat.push(drawn, rig.concs)
            out = rig.cat.out_ng
            for d in range(2):
                if out[d]:
                    rig.led.add(d, out[d])
            n += 1
            k -= 1
    return n


def test_stroke_path_engine_reservoir_catheter_ledger_is_allocation_free():
    rig = _Rig()
    n = run_no_alloc(_rig_loop, rig)
    assert n == 400
    assert rig.res.remaining_nl == 18_000_000 - 400 * 250
    # 400 strokes of 250 nL at 10 mg/mL and 75 µg/mL, all within the 24-h window
    assert rig.led.total(0) == 400 * 250 * 10_000 // 1000
    assert rig.led.total(1) == 400 * 250 * 75 // 1000
    # 400 strokes at 120_000 nL/h take 50 min: the bolus (100_000 nL/h) gave 83_333.3 nL
    assert rig.bolus.delivered_nl == 83_333 and not rig.bolus.done
