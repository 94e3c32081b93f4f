# pumpcore.ledger: rolling 24-h totals (window edges), patient-bolus history, lockout.
from delivery_helpers import Lcg, run_no_alloc
from pumpcore.clock import MS_PER_DAY, Clock
from pumpcore.ledger import Ledger, PatientHistory

B = 300_000  # default bucket: 5 min


def test_window_edges_exactly():
    lg = Ledger(1)
    assert lg.n_buckets == 289
    lg.add(0, 1_000)  # at t = 0 (bucket 0)
    lg.advance(MS_PER_DAY)  # exactly 24 h later: still counted (never under-count)
    assert lg.total(0) == 1_000
    lg.advance(B - 1)  # 24 h + 5 min - 1 ms: the oldest bucket is still inside
    assert lg.total(0) == 1_000
    lg.advance(1)  # 24 h + 5 min: dropped
    assert lg.total(0) == 0


def test_amount_added_late_in_a_bucket_is_kept_at_least_24h():
    lg = Ledger(1)
    lg.advance(B - 1)
    lg.add(0, 7)  # t = B - 1
    lg.advance(MS_PER_DAY)  # now - t = 24 h
    assert lg.total(0) == 7
    lg.advance(1)  # now = 24 h + B: bucket 0 leaves (over-count horizon = 24 h + 1 ms here)
    assert lg.total(0) == 0


def test_never_under_counts_and_over_count_is_bounded_random():
    g = Lcg(21)
    lg = Ledger(2)
    events = []  # (t, drug, ng)
    now = 0
    for _ in range(600):
        dt = g.choice([0, 1, 999, 60_000, B, 3 * B + 17, g.below(4 * 3_600_000)])
        lg.advance(dt)
        now += dt
        d = g.below(2)
        ng = g.below(5_000)
        lg.add(d, ng)
        events.append((now, d, ng))
        for drug in (0, 1):
            lo = 0
            hi = 0
            for t, dd, a in events:
                if dd != drug:
                    continue
                if now - t <= MS_PER_DAY:
                    lo += a
                if now - t < MS_PER_DAY + B:
                    hi += a
            assert lo <= lg.total(drug) <= hi
            exact = 0
            for t, dd, a in events:
                if dd == drug and now // B - t // B <= 288:
                    exact += a
            assert lg.total(drug) == exact


def test_long_idle_clears_everything_and_totals_are_per_drug():
    lg = Ledger(4)
    for d in range(4):
        lg.add(d, 100 * (d + 1))
    assert [lg.total(d) for d in range(4)] == [100, 200, 300, 400]
    assert not lg.would_exceed(3, 600, 1_000) and lg.would_exceed(3, 601, 1_000)
    assert not lg.would_exceed(3, 10**6, None)
    lg.advance(3 * MS_PER_DAY)
    assert [lg.total(d) for d in range(4)] == [0, 0, 0, 0]
    lg.add(1, 5)
    assert lg.total(1) == 5


def test_bad_bucket_sizes_are_refused():
    for bad in (0, -1, 7 * 60_000, 86_400_001):
        try:
            Ledger(1, bad)
        except ValueError:
            continue
        raise AssertionError("accepted bucket %r" % bad)
    assert Ledger(1, 60_000).n_buckets == 1441


def _ledger_steady(lg):
    for i in range(3000):
        lg.add(i & 3, 250)
        lg.advance(45_000)
    return lg.total(0)


def test_add_and_advance_are_allocation_free():
    lg = Ledger(4)
    run_no_alloc(_ledger_steady, lg)
    # one add every 45 s: the window (current bucket at phase 0 + 288 full ones) holds
    # the 1928 adds from t = 3000*45000 - 289*B .. now, each drug a quarter of them
    now = 3000 * 45_000
    expected = 0
    for i in range(3000):
        t = i * 45_000
        if (i & 3) == 0 and now // B - t // B <= 288:
            expected += 250
    assert lg.total(0) == expected


def test_snapshot_restore_rebuilds_totals():
    lg = Ledger(2)
    lg.add(0, 5)
    lg.advance(12 * B + 3)
    lg.add(1, 9)
    m = Ledger(2)
    m.restore(lg.snapshot())
    assert m.total(0) == 5 and m.total(1) == 9 and m.ms_in_bucket == 3
    lg.advance(MS_PER_DAY)
    m.advance(MS_PER_DAY)
    assert (m.total(0), m.total(1)) == (lg.total(0), lg.total(1)) == (0, 9)


def test_patient_history_count_in_24h_with_day_rollover():
    h = PatientHistory(8)
    c = Clock(3, MS_PER_DAY - 1_000)
    h.record_start(c.day, c.ms)
    c.advance(2_000)  # next day
    h.record_start(c.day, c.ms)
    assert h.count_in_24h(c.day, c.ms) == 2
    c.set(3 + 1, MS_PER_DAY - 1_000 - 1)  # 24 h - 1 ms after the first start
    assert h.count_in_24h(c.day, c.ms) == 2
    c.advance(1)  # exactly 24 h after the first: it no longer counts
    assert h.count_in_24h(c.day, c.ms) == 1
    c.advance(2_000)
    assert h.count_in_24h(c.day, c.ms) == 0


def test_patient_history_ring_overflow_stays_conservative():
    h = PatientHistory(4)
    for k in range(10):
        h.record_start(0, k * 1000)
    assert h.count_in_24h(0, 10_000) == 4  # capacity: still >= any max_per_24h <= 4


def test_patient_history_snapshot_leaves_out_starts_that_can_no_longer_count():
    h = PatientHistory(8)
    for k in range(6):                       # starts 6 h apart from day 2, 00:00
        h.record_start(2 + k // 4, (k % 4) * 21_600_000)
    now = (3, 43_200_000)                    # day 3, 12:00: starts from day 2, 12:00 on count
    snap = h.snapshot(now[0], now[1])
    assert snap["starts"] == [[2, 64_800_000], [3, 0], [3, 21_600_000]]
    full = PatientHistory(8)
    full.restore(h.snapshot())               # without "now": everything kept
    assert len(full.snapshot()["starts"]) == 6
    pruned = PatientHistory(8)
    pruned.restore(snap)
    for later in range(0, MS_PER_DAY + 7_200_000, 600_000):   # the restored answers are the same
        c = Clock(now[0], now[1])
        c.advance(later)
        assert pruned.count_in_24h(c.day, c.ms) == h.count_in_24h(c.day, c.ms), later


def test_lockout_reference_and_remaining():
    h = PatientHistory()
    assert h.lockout_remaining_ms(0, 0, 3_600_000) == 0  # nothing yet: no lockout
    h.mark_lockout(10, MS_PER_DAY - 600_000)  # a commit 10 min before midnight
    assert h.lockout_remaining_ms(10, MS_PER_DAY - 600_000, 3_600_000) == 3_600_000
    assert h.lockout_remaining_ms(11, 0, 3_600_000) == 3_000_000
    assert h.lockout_remaining_ms(11, 2_999_999, 3_600_000) == 1
    assert h.lockout_remaining_ms(11, 3_000_000, 3_600_000) == 0
    assert h.lockout_remaining_ms(400, 0, 3_600_000) == 0
    assert h.lockout_remaining_ms(11, 0, 0) == 0
    h.record_start(11, 5_000_000)  # a patient bolus restarts the lockout
    assert h.lockout_remaining_ms(11, 5_000_000, 3_600_000) == 3_600_000
    snap = h.snapshot()
    h2 = PatientHistory()
    h2.restore(snap)
    assert h2.count_in_24h(11, 6_000_000) == 1
    assert h2.lockout_remaining_ms(11, 6_000_000, 3_600_000) == 2_600_000


def test_snapshot_is_compact_and_the_older_forms_still_restore():
    import binascii
    import struct
    lg = Ledger(2)
    lg.add(0, 25000)
    lg.advance(7 * B + 11)
    lg.add(1, 123456)
    snap = lg.snapshot()
    slots = snap["slots_b64"]
    assert isinstance(slots[0], str) and isinstance(slots[1], str) and slots[2:] == [None, None]
    assert "buckets" not in snap and "buckets_b64" not in snap
    # the two older, bucket-major forms (snapshots written by earlier firmware)
    old = {"bucket_ms": B, "cur": snap["cur"], "ms_in_bucket": snap["ms_in_bucket"],
           "buckets": [0] * (289 * 4)}
    old["buckets"][0] = 25000
    old["buckets"][7 * 4 + 1] = 123456
    old_b64 = dict(old)
    del old_b64["buckets"]
    old_b64["buckets_b64"] = binascii.b2a_base64(
        struct.pack("<%di" % (289 * 4), *old["buckets"])).decode().strip()
    for form in (old, old_b64, snap):
        m = Ledger(2)
        m.restore(form)
        assert (m.total(0), m.total(1), m._cur) == (25000, 123456, 7)
        assert list(m._b) == list(lg._b)
        m.advance(289 * B - 7 * B)                   # bucket 0 leaves the window first
        assert (m.total(0), m.total(1)) == (0, 123456)


def test_restore_refuses_a_ledger_that_does_not_fit():
    lg = Ledger(2)
    lg.add(1, 5)
    good = lg.snapshot()
    bad = []
    short = dict(good)
    short["slots_b64"] = ["AAAA" * 10, None, None, None]
    bad.append(short)
    few = dict(good)
    few["slots_b64"] = [None, None]
    bad.append(few)
    old_short = {"bucket_ms": B, "cur": 0, "ms_in_bucket": 0, "buckets_b64": "AAAA" * 100}
    bad.append(old_short)
    neg = {"bucket_ms": B, "cur": 0, "ms_in_bucket": 0, "buckets": [0] * (289 * 4)}
    neg["buckets"][5] = -1
    bad.append(neg)
    pos = dict(good)
    pos["cur"] = 289
    bad.append(pos)
    other = dict(good)
    other["bucket_ms"] = 600_000
    bad.append(other)
    for snap in bad:
        try:
            Ledger(2).restore(snap)
        except ValueError:
            continue
        raise AssertionError(snap)
