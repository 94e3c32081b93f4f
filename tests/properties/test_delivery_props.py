"""Hypothesis properties of the delivery engine (CPython only).

90 days of a weekly flex schedule (1..13 steps per day, a profile per weekday), advanced by random
elapsed chunks (irregular wake-ups that do not line up with stroke times or schedule boundaries) and
optional boluses on top of the basal: the engine's strokes x stroke_nl never exceed the exact
integral of the programmed rate, and fall short of it by less than one stroke.
The schedule reference here is independent of pumpcore.schedule on purpose.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pumpcore.bolus import BolusArbiter
from pumpcore.catheter import Catheter
from pumpcore.clock import MS_PER_DAY, MS_PER_MIN, Clock, weekday
from pumpcore.delivery import MAX_RATE_NL_PER_H, DeliveryEngine
from pumpcore.ledger import Ledger

H = 3_600_000
DAYS = 90

rates = st.one_of(
    st.sampled_from([0, 1, 7, 2_000, 20_000, 359_999, 1_000_000]),
    st.integers(min_value=0, max_value=1_500_000),
)


@st.composite
def day_profile(draw: st.DrawFn) -> list[tuple[int, int]]:
    n = draw(st.integers(min_value=1, max_value=13))
    starts = sorted(draw(st.sets(st.integers(min_value=1, max_value=1439), min_size=n - 1,
                                 max_size=n - 1)))
    return [(s, draw(rates)) for s in [0, *starts]]


def rate_at(steps: list[tuple[int, int]], minute: int) -> int:
    r = steps[0][1]
    for s, rate in steps:
        if s <= minute:
            r = rate
    return r


def ms_to_boundary(steps: list[tuple[int, int]], ms_of_day: int) -> int:
    minute = ms_of_day // MS_PER_MIN
    for s, _ in steps:
        if s > minute:
            return s * MS_PER_MIN - ms_of_day
    return MS_PER_DAY - ms_of_day


# Wake-ups: a coarse part (1 min .. 4 h, or the shell's largest elapsed 2**29 - 1) plus an irregular
# jitter; a third of the wake-ups are tiny steps (1 .. 5000 ms) as around a bolus.
chunks = st.lists(
    st.tuples(st.one_of(st.integers(min_value=60_000, max_value=4 * H),
                        st.sampled_from([60_000, H, 2**29 - 1])),
              st.integers(min_value=0, max_value=5_000)).map(lambda t: t[0] + t[1]),
    min_size=1, max_size=20,
)
tiny = st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=25)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    week=st.lists(day_profile(), min_size=7, max_size=7),
    chunk_cycle=chunks,
    tiny_cycle=tiny,
    stroke_nl=st.sampled_from([250, 250, 100, 297, 1]),
    start_ms=st.integers(min_value=0, max_value=MS_PER_DAY - 1),
    bolus_every=st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
    bolus=st.tuples(st.integers(min_value=1, max_value=500_000),
                    st.integers(min_value=60_000, max_value=4 * H)),
)
def test_strokes_never_exceed_and_stay_within_one_stroke_of_the_integral(
    week: list[list[tuple[int, int]]],
    chunk_cycle: list[int],
    tiny_cycle: list[int],
    stroke_nl: int,
    start_ms: int,
    bolus_every: int | None,
    bolus: tuple[int, int],
) -> None:
    eng = DeliveryEngine(stroke_nl)
    arb = BolusArbiter()
    wall = Clock(9000, start_ms)
    end_day, end_ms = 9000 + DAYS, start_ms
    integral = 0  # exact, in nL*ms/h (a big int here in the test)
    strokes = 0
    bolus_delivered = 0
    bolus_requested = 0
    max_basal = max(rate for day in week for _, rate in day)
    i = 0
    while (wall.day, wall.ms) < (end_day, end_ms):
        steps = week[weekday(wall.day)]
        basal = rate_at(steps, wall.ms // MS_PER_MIN)
        if bolus_every and i % bolus_every == 0 and arb.active is None:
            vol, dur = bolus
            # the facade's limit holds for the whole bolus: against the week's highest basal (the
            # basal may step up while the bolus runs)
            if max_basal + vol * H // dur <= MAX_RATE_NL_PER_H and vol * H // dur > 0:
                code, _ = arb.request("clinician", vol, dur)
                assert code == "ok"
                bolus_requested += vol
        rate = basal + arb.rate_nl_per_h()
        eng.set_rate(rate)
        # the facade's wake-up: the earliest of schedule boundary, bolus end, the random chunk
        if i % 75 < 25:
            step = tiny_cycle[i % len(tiny_cycle)]
        else:
            step = chunk_cycle[i % len(chunk_cycle)]
        step = min(step, ms_to_boundary(steps, wall.ms))
        to_end = arb.ms_to_end()
        if to_end is not None:
            step = min(step, to_end)
        left = (end_day - wall.day) * MS_PER_DAY + end_ms - wall.ms
        step = min(step, left)
        nxt = eng.ms_to_next_stroke()
        s = eng.advance(step)
        if nxt is not None and step < nxt:
            assert s == 0
        strokes += s
        integral += rate * step
        ended = arb.advance(step)
        if ended is not None:
            assert ended.delivered_nl == ended.volume_nl
            bolus_delivered += ended.volume_nl
        wall.advance(step)
        i += 1
        delivered = strokes * stroke_nl
        # no over-delivery; under-delivery below one stroke (checked at every wake-up)
        assert delivered * H <= integral < (delivered + stroke_nl) * H
    assert integral == (strokes * stroke_nl) * H + eng.acc()
    if arb.active is None:
        assert bolus_delivered == bolus_requested


@settings(max_examples=60, deadline=None)
@given(
    volume_nl=st.integers(min_value=0, max_value=300_000),
    pushes=st.lists(st.tuples(st.integers(min_value=1, max_value=20_000),
                              st.sampled_from([0, 1, 2])), min_size=1, max_size=80),
    concs=st.lists(st.lists(st.integers(min_value=0, max_value=100_000), min_size=2, max_size=2),
                   min_size=3, max_size=3),
    max_segments=st.integers(min_value=2, max_value=8),
)
def test_catheter_conserves_volume_and_never_undercounts_drug(
    volume_nl: int, pushes: list[tuple[int, int]], concs: list[list[int]], max_segments: int
) -> None:
    """Volume out = volume in - dead volume; amounts out >= the exact plug-flow amounts (equal when
    no segment merge happened), within < 1 ng of rounding."""
    cat = Catheter(volume_nl, 2, max_segments=max_segments)
    fifo: list[list[int]] = []  # exact model: [volume, c0, c1] oldest first
    fill = 0
    out_nl = 0
    out_ng = [0, 0]
    exact_pg = [0, 0]
    merged = False
    for vol, k in pushes:
        c = concs[k]
        out_nl += cat.push(vol, c)
        out_ng[0] += cat.out_ng[0]
        out_ng[1] += cat.out_ng[1]
        # exact plug flow: the oldest content leaves first, then the new fluid is appended
        if volume_nl == 0:
            for d in range(2):
                exact_pg[d] += vol * c[d]
            continue
        excess = max(0, fill + vol - volume_nl)
        from_old = min(excess, fill)
        through = excess - from_old  # new fluid passing straight out (push > whole catheter)
        keep = vol - through
        fill -= from_old
        while from_old:
            take = min(from_old, fifo[0][0])
            for d in range(2):
                exact_pg[d] += take * fifo[0][1 + d]
            fifo[0][0] -= take
            from_old -= take
            if fifo[0][0] == 0:
                fifo.pop(0)
        for d in range(2):
            exact_pg[d] += (vol - keep) * c[d]
        if fifo and fifo[-1][1:] == c:
            fifo[-1][0] += keep
        else:
            if len(fifo) == max_segments:
                merged = True  # the catheter merges its two oldest segments here
            fifo.append([keep, *c])
        fill += keep
    total_in = sum(v for v, _ in pushes)
    assert out_nl == max(0, total_in - volume_nl)
    assert cat.fill_nl == min(total_in, volume_nl)
    for d in range(2):
        assert out_ng[d] >= exact_pg[d] // 1000
        if not merged:
            assert out_ng[d] == exact_pg[d] // 1000


@settings(max_examples=40, deadline=None)
@given(
    adds=st.lists(st.tuples(st.integers(min_value=0, max_value=3 * H),
                            st.integers(min_value=0, max_value=10**6)), min_size=1, max_size=200),
)
def test_ledger_window_is_conservative(adds: list[tuple[int, int]]) -> None:
    lg = Ledger(1)
    now = 0
    hist: list[tuple[int, int]] = []
    for dt, ng in adds:
        lg.advance(dt)
        now += dt
        lg.add(0, ng)
        hist.append((now, ng))
        inside = sum(a for t, a in hist if now - t <= MS_PER_DAY)
        horizon = sum(a for t, a in hist if now - t < MS_PER_DAY + lg.bucket_ms)
        assert inside <= lg.total(0) <= horizon
