# pumpcore.catheter: FIFO of concentration segments, priming, bridge proposal.
from delivery_helpers import Lcg, run_no_alloc
from pumpcore.catheter import Catheter, bridge_proposal

H = 3_600_000
MORPHINE = [10_000]  # µg/mL


def test_empty_catheter_fills_first_nothing_reaches_the_patient():
    c = Catheter(150_000, 1)
    assert not c.is_primed() and c.fill_nl == 0 and c.nl_to_primed() == 150_000
    for _ in range(599):
        assert c.push(250, MORPHINE) == 0
        assert c.out_ng[0] == 0
    assert c.nl_to_primed() == 250 and not c.is_primed()
    assert c.push(250, MORPHINE) == 0
    assert c.is_primed() and c.fill_nl == 150_000
    assert c.push(250, MORPHINE) == 250
    assert c.out_ng[0] == 2_500 and c.out_nl == 250
    assert c.segment_count() == 1


def test_priming_overfill_counts_what_leaves_the_tip():
    c = Catheter(1_000, 1)
    assert c.push(1_200, MORPHINE) == 200
    assert c.out_ng[0] == 2_000


def test_remainders_are_carried_exactly():
    c = Catheter(100, 1, filled=True, concs=[3])
    total = 0
    for _ in range(2_000):
        c.push(1, [3])
        total += c.out_ng[0]
    assert total == 2_000 * 3 // 1000  # 6 ng, never rounded away
    c2 = Catheter(0, 1)  # no dead volume: straight to the tip
    t2 = 0
    for _ in range(999):
        assert c2.push(1, [7]) == 1
        t2 += c2.out_ng[0]
    assert t2 == 999 * 7 // 1000


def test_fifo_after_concentration_change():
    old = [10_000]
    new = [25_000]
    c = Catheter(1_000, 1, filled=True, concs=old)
    assert c.volume_holding_old(new) == 1_000
    # 600 nL of the new admixture: 600 nL of the OLD one leaves the tip
    assert c.push(600, new) == 600
    assert c.out_ng[0] == 600 * 10_000 // 1000
    assert c.volume_holding_old(new) == 400
    assert c.segments() == [(400, [10_000]), (600, [25_000])]
    # a push straddling the boundary: 400 old + 100 new
    assert c.push(500, new) == 500
    assert c.out_ng[0] == (400 * 10_000 + 100 * 25_000) // 1000
    assert c.volume_holding_old(new) == 0 and c.segment_count() == 1
    assert c.push(250, new) == 250 and c.out_ng[0] == 6_250


def test_multi_drug_amounts_per_drug():
    c = Catheter(500, 3, filled=True, concs=[100, 2_000, 0])
    c.push(250, [100, 2_000, 0])
    assert list(c.out_ng[:3]) == [25, 500, 0]
    assert c.out_ng[3] == 0


def test_full_ring_merges_two_oldest_conservatively():
    c = Catheter(1_000, 2, max_segments=3)
    concs = [[10, 50], [30, 20], [20, 40], [5, 5]]
    for k in range(4):
        c.push(200, concs[k])
    assert c.segment_count() == 3
    segs = c.segments()
    assert segs[0] == (400, [30, 50])  # per-drug max of the two oldest
    assert segs[1] == (200, [20, 40]) and segs[2] == (200, [5, 5])
    assert c.fill_nl == 800 and sum(v for v, _ in segs) == 800
    # what leaves is over-counted, never under-counted, relative to the true content
    c.push(600, [5, 5])
    assert c.out_nl == 400
    true0 = (200 * 10 + 200 * 30) // 1000
    assert c.out_ng[0] >= true0 and c.out_ng[0] == 400 * 30 // 1000
    assert c.volume_holding_old([5, 5]) == 200


def test_big_push_is_exact_without_big_ints():
    c = Catheter(150_000, 1, filled=True, concs=[99_999])
    out = c.push(5_000_123, [99_999])
    assert out == 5_000_123
    assert c.out_ng[0] == 5_000_123 * 99_999 // 1000


def test_bad_concentrations_are_refused():
    c = Catheter(1_000, 2)
    for bad in ([1], [-1, 0], [200_000, 0], [1, True]):
        try:
            c.push(10, bad)
        except (ValueError, IndexError):
            continue
        raise AssertionError("accepted %r" % (bad,))
    assert c.fill_nl == 0
    try:
        Catheter(-1, 1)
    except ValueError:
        pass
    else:
        raise AssertionError("negative volume accepted")


def test_bridge_proposal_keeps_the_old_dose_rate():
    c = Catheter(150_000, 1, filled=True, concs=[10_000])
    # old program 20_000 nL/h: 150 µL takes 7.5 h
    assert bridge_proposal(c, [10_000], 20_000) is None  # same admixture: nothing to bridge
    vol, dur = bridge_proposal(c, [25_000], 20_000)
    assert vol == 150_000 and dur == 27_000_000
    # awkward rate: duration rounds up so the bolus rate never exceeds the old rate
    vol, dur = bridge_proposal(c, [25_000], 7_001)
    assert dur == (150_000 * H + 7_000) // 7_001
    assert 150_000 * H // dur <= 7_001
    assert bridge_proposal(c, [25_000], 0) is None
    c.push(50_000, [25_000])
    assert bridge_proposal(c, [25_000], 20_000) == (100_000, 18_000_000)


def _push_many(c):
    n = 0
    for _ in range(1000):
        n += c.push(250, c._probe)
        n += c.out_ng[0] & 1
    return n


def test_push_is_allocation_free_in_steady_state():
    c = Catheter(150_000, 2, filled=True, concs=[10_000, 30])
    c._probe = [10_000, 30]  # the facade's preallocated admixture list
    c.push(1, c._probe)
    run_no_alloc(_push_many, c)
    assert c.segment_count() == 1 and c.fill_nl == 150_000


def test_snapshot_restore_round_trip_and_random_fifo_conservation():
    g = Lcg(5)
    c = Catheter(20_000, 2, max_segments=8)
    pushed = 0
    out = 0
    for _ in range(300):
        v = 1 + g.below(3_000)
        k = g.below(3)
        out += c.push(v, [k * 1000, 7])
        pushed += v
        assert c.fill_nl == min(pushed, 20_000)
        assert sum(vv for vv, _ in c.segments()) == c.fill_nl
    assert out == pushed - 20_000
    d = Catheter(20_000, 2, max_segments=8)
    d.restore(c.snapshot())
    assert d.segments() == c.segments() and d.fill_nl == c.fill_nl
    for _ in range(20):
        v = 1 + g.below(3_000)
        c.push(v, [5, 7])
        d.push(v, [5, 7])
        assert list(c.out_ng) == list(d.out_ng)
    bad = c.snapshot()
    bad["fill_nl"] += 1
    try:
        d.restore(bad)
    except ValueError:
        pass
    else:
        raise AssertionError("inconsistent snapshot accepted")


def test_zero_volume_catheter_checks_concentrations_too():
    c = Catheter(0, 1)
    assert c.is_primed()
    try:
        c.push(10, [200_000])
    except ValueError:
        pass
    else:
        raise AssertionError("out-of-range concentration accepted")
    assert c.push(10, [100_000]) == 10 and c.out_ng[0] == 1_000
