# pumpcore.bolus: exact-ending boluses as a rate component; arbiter precedence.
from delivery_helpers import Lcg, run_no_alloc
from pumpcore import reasons
from pumpcore.bolus import (
    CLINICIAN,
    MAX_PENDING,
    PATIENT,
    PERIODIC,
    Bolus,
    BolusArbiter,
    bolus_rate_nl_per_h,
)
from pumpcore.delivery import DeliveryEngine

H = 3_600_000


def test_simple_bolus_ends_exactly_at_duration():
    b = Bolus(PATIENT, 10_000, 120_000)
    assert b.rate_nl_per_h == 300_000
    assert b.ms_to_end() == 120_000
    assert not b.advance(119_999)
    assert b.delivered_nl == 9_999
    assert b.ms_to_end() == 1
    assert b.advance(1)
    assert b.done and b.delivered_nl == 10_000 and b.remaining_nl() == 0
    assert b.ms_to_end() == 0
    assert b.elapsed_ms == 120_000


def test_awkward_bolus_delivers_its_volume_within_one_nl():
    g = Lcg(11)
    for _ in range(60):
        vol = 1 + g.below(2_000_000)
        dur = 1_000 + g.below(86_400_000)
        try:
            rate = bolus_rate_nl_per_h(vol, dur)
        except ValueError:
            continue
        assert rate == vol * H // dur
        b = Bolus(CLINICIAN, vol, dur)
        t_end = b.ms_to_end()
        # exact end: the integral reaches vol at t_end and not one ms earlier
        assert rate * t_end >= vol * H > rate * (t_end - 1)
        assert dur <= t_end <= dur + dur // rate + 1
        # overshoot of the integral beyond the volume is below one nL for rates < 3.6 mL/h
        assert rate * t_end - vol * H < rate
        # advance in random chunks, never past the end: ends at exactly t_end
        t = 0
        while not b.done:
            left = b.ms_to_end()
            step = 1 + g.below(left)
            assert t + left == t_end
            b.advance(step)
            t += step
        assert t == t_end and b.delivered_nl == vol


def test_bad_boluses_are_refused():
    for vol, dur in ((0, 1000), (-5, 1000), (1000, 0), (1000, -1), (10**9, 1000), (1, 3_600_001),
                     (1000, 2**29), (True, 1000)):
        try:
            bolus_rate_nl_per_h(vol, dur)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % ((vol, dur),))
    try:
        Bolus("surprise", 1000, 1000)
    except ValueError:
        pass
    else:
        raise AssertionError("unknown kind accepted")


def test_advancing_past_the_end_caps_the_volume():
    b = Bolus(PERIODIC, 1000, 60_000)
    assert b.advance(10 * 60_000)
    assert b.delivered_nl == 1000


def _bolus_steady(b):
    n = 0
    for _ in range(500):
        if b.advance(7):
            n += 1
        n += b.ms_to_end() & 1
    return n


def test_bolus_advance_is_allocation_free():
    b = Bolus(PATIENT, 500_000, 3_600_000)
    run_no_alloc(_bolus_steady, b)
    assert b.delivered_nl == 500_000 * 3500 // 3_600_000


def test_patient_or_clinician_request_while_active_is_refused():
    a = BolusArbiter()
    code, b = a.request(PATIENT, 10_000, 120_000)
    assert code == reasons.OK and a.active is b
    assert a.rate_nl_per_h() == 300_000
    assert a.request(PATIENT, 10_000, 120_000) == (reasons.BOLUS_ACTIVE, None)
    assert a.request(CLINICIAN, 5_000, 60_000) == (reasons.BOLUS_ACTIVE, None)
    assert a.request("bridge", 5_000, 60_000) == (reasons.BOLUS_ACTIVE, None)
    assert a.request("nonsense", 5_000, 60_000) == (reasons.BAD_VALUE, None)
    assert a.active is b


def test_periodic_due_during_patient_bolus_is_queued_then_started():
    a = BolusArbiter()
    a.request(PATIENT, 10_000, 120_000)
    assert a.due_periodic(25_000, 600_000) == (reasons.BOLUS_QUEUED, None)
    assert a.pending_count() == 1
    assert a.advance(60_000) is None
    ended = a.advance(60_000)
    assert ended is not None and ended.kind == PATIENT and ended.delivered_nl == 10_000
    assert a.active is not None and a.active.kind == PERIODIC
    assert a.rate_nl_per_h() == 150_000
    assert a.pending_count() == 0
    assert a.ms_to_end() == 600_000
    assert a.advance(600_000).kind == PERIODIC
    assert a.active is None and a.rate_nl_per_h() == 0 and a.ms_to_end() is None
    code, b = a.due_periodic(25_000, 600_000)
    assert code == reasons.OK and b.kind == PERIODIC


def test_periodic_queue_full_skips_and_clear_pending():
    a = BolusArbiter()
    a.request(CLINICIAN, 100_000, 3_600_000)
    for _ in range(MAX_PENDING):
        assert a.due_periodic(1_000, 60_000)[0] == reasons.BOLUS_QUEUED
    assert a.due_periodic(1_000, 60_000) == (reasons.BOLUS_SKIPPED, None)
    assert a.due_periodic(0, 60_000) == (reasons.BAD_VALUE, None)
    assert a.clear_pending() == MAX_PENDING
    assert a.pending_count() == 0


def test_cancel_keeps_delivered_and_frees_the_slot():
    a = BolusArbiter()
    a.request(PATIENT, 10_000, 120_000)
    a.advance(30_000)
    b = a.cancel()
    assert b.done and b.delivered_nl == 2_500
    assert a.active is None and a.finished is b and a.cancel() is None
    assert a.request(PATIENT, 10_000, 120_000)[0] == reasons.OK


def test_bolus_adds_to_basal_without_changing_it():
    # The facade's pattern: engine rate = basal + arbiter rate, wake at the bolus end.
    basal = 20_000
    e = DeliveryEngine(250)
    a = BolusArbiter()
    e.set_rate(basal)
    strokes = e.advance(600_000)
    a.request(PATIENT, 10_000, 120_000)
    e.set_rate(basal + a.rate_nl_per_h())
    t = 0
    while a.active is not None:
        step = min(a.ms_to_end(), 7_000)
        strokes += e.advance(step)
        a.advance(step)
        t += step
    assert t == 120_000
    e.set_rate(basal + a.rate_nl_per_h())
    assert e.rate_nl_per_h == basal
    strokes += e.advance(H - 720_000)
    # one hour of basal (20_000 nL) + the bolus (10_000 nL), exact to the stroke
    assert strokes * 250 + e.pending_nl == 30_000 and e.frac == 0
