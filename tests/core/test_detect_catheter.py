# pumpcore.detect_catheter (helper E): dislodgement and leak within 3 windows on the contract
# plant, distinguished from each other and from occlusion, threshold edges on synthetic windows,
# clearing, skipped windows. Plain asserts; runs under pytest and MicroPython.
from pumpcore import detect_catheter as cat
from pumpcore import detect_occlusion as occ
from signals import make_rig, sine_window

SEEDS = (1, 2, 3, 5, 8, 13, 21, 34)
WINDOW_MS = 300000


def _onset_then(rig, fault, seed):
    rig.run(3600000)                           # 1 h normal: 12 windows, 8 strokes
    assert rig.events == [], rig.events
    w0 = rig.windows
    rig.p.idle(seed * 9000 % WINDOW_MS)        # onset anywhere between windows
    fault()
    rig.run(4 * WINDOW_MS)
    return w0


def test_dislodgement_within_3_windows_and_not_leak():
    for seed in SEEDS:
        rig = make_rig(seed)
        w0 = _onset_then(rig, rig.p.dislodge, seed)
        ev = rig.raised()
        assert ev and ev[0][1] == "dislodgement", (seed, ev)
        assert ev[0][4] - w0 <= 3, (seed, ev)
        assert [e[1] for e in ev] == ["dislodgement"], ev    # no occlusion, no leak


def test_leak_within_3_windows_and_not_dislodgement():
    for seed in SEEDS:
        rig = make_rig(seed)
        w0 = _onset_then(rig, rig.p.leak, seed)
        ev = rig.raised()
        assert ev and ev[0][1] == "leak", (seed, ev)
        assert ev[0][4] - w0 <= 3, (seed, ev)
        assert [e[1] for e in ev] == ["leak"], ev


def test_occlusion_never_raises_dislodgement_or_leak():
    for seed in SEEDS[:4]:
        for kind in ("partial", "complete"):
            rig = make_rig(seed)
            plant = rig.p
            if kind == "complete":
                f = plant.complete_occlusion
            else:
                def f(plant=plant):
                    plant.partial_occlusion(10)
            _onset_then(rig, f, seed)
            rig.run(6 * WINDOW_MS)
            codes = [e[1] for e in rig.raised()]
            assert "dislodgement" not in codes and "leak" not in codes, (seed, kind, codes)
            assert "occlusion" in codes, (seed, kind, codes)


def test_window_with_a_stroke_inside_is_ignored():
    d = cat.CatheterDetector()
    low = sine_window(300)
    assert d.window(low) is None
    for _ in range(5):
        assert d.window(low, stroke_in_window=True) is None
        assert d.last_class == cat.W_SKIPPED
    assert d.window(low) == cat.EV_DISLODGEMENT        # the run continued across skipped windows


def test_metrics_for_contract_sensor_figures():
    d = cat.CatheterDetector()
    d.window(sine_window(1300, 61, 1250, 90, 250))      # nominal at the sensor
    assert d.pulsatile and d.last_class == cat.W_NORMAL
    assert 1295 <= d.baseline_pa <= 1305
    assert 61 <= d.cardiac_pa <= 80 and 85 <= d.resp_pa <= 110
    d.window(sine_window(1300, 6, 1250, 9, 250))        # 10 % pulsation
    assert not d.pulsatile


def test_pulsatility_threshold_edges():
    d = cat.CatheterDetector()
    # cardiac sine at bin 5 (1.25 Hz): band amplitude ~ A * sqrt(1.5) (Hann neighbours)
    lo = None
    hi = None
    for a in range(15, 35):
        d.window(sine_window(1300, a, 1250))
        if d.cardiac_pa < cat.CARDIAC_MIN_PA:
            assert not d.pulsatile and d.last_class == cat.W_OCCLUSION_LIKE
            lo = a
        else:
            assert d.pulsatile and d.last_class == cat.W_NORMAL
            if hi is None:
                hi = a
    assert lo is not None and hi is not None and hi == lo + 1
    lo = None
    hi = None
    for a in range(25, 50):
        d.window(sine_window(1300, 0, 1250, a, 250))
        if d.resp_pa < cat.RESP_MIN_PA:
            assert not d.pulsatile
            lo = a
        else:
            assert d.pulsatile
            if hi is None:
                hi = a
    assert lo is not None and hi is not None and hi == lo + 1


def test_baseline_edges_low_and_leak():
    # 649 Pa without pulsation: abnormal (dislodgement); 650: occlusion-like, no catheter alarm
    d = cat.CatheterDetector()
    w = sine_window(cat.BASELINE_LOW_PA - 1)
    assert d.window(w) is None and d.last_class == cat.W_DISLODGEMENT
    assert d.window(w) == cat.EV_DISLODGEMENT
    d.reset()
    w = sine_window(cat.BASELINE_LOW_PA)
    for _ in range(4):
        assert d.window(w) is None
    assert d.last_class == cat.W_OCCLUSION_LIKE and d.occlusion_like_run == 4
    # 149 Pa: leak; 150 Pa: dislodgement
    d.reset()
    w = sine_window(cat.LEAK_BASELINE_PA - 1)
    d.window(w)
    assert d.window(w) == cat.EV_LEAK
    d.reset()
    w = sine_window(cat.LEAK_BASELINE_PA)
    d.window(w)
    assert d.window(w) == cat.EV_DISLODGEMENT


def test_low_baseline_is_abnormal_even_with_pulsation():
    d = cat.CatheterDetector()
    w = sine_window(400, 60, 1250, 90, 250)
    d.window(w)
    assert d.pulsatile and d.last_class == cat.W_DISLODGEMENT
    assert d.window(w) == cat.EV_DISLODGEMENT


def test_stroke_evidence_decides_between_leak_dislodgement_and_occlusion():
    w = sine_window(300)                       # dislodgement by baseline alone
    d = cat.CatheterDetector()
    d.note_stroke(occ.INVISIBLE)               # one vanished stroke is not yet evidence
    d.window(w)
    assert d.last_class == cat.W_DISLODGEMENT
    d.reset()
    d.note_stroke(occ.INVISIBLE)               # two in a row: the line is open
    d.note_stroke(occ.INVISIBLE)
    d.window(w)
    assert d.window(w) == cat.EV_LEAK
    d.reset()
    d.note_stroke(occ.INVISIBLE)               # a stroke too short to judge breaks the run
    d.note_stroke(occ.UNKNOWN)
    d.note_stroke(occ.INVISIBLE)
    d.window(w)
    assert d.last_class == cat.W_DISLODGEMENT
    d.reset()
    d.note_stroke(occ.FLAT)                    # the line does not empty: occlusion precedence
    for _ in range(4):
        assert d.window(w) is None
    assert d.last_class == cat.W_SUPPRESSED
    d.reset()
    d.note_stroke(occ.NORMAL)
    d.note_stroke(occ.UNKNOWN)                 # ignored: NORMAL evidence stays
    d.window(w)
    assert d.window(w) == cat.EV_DISLODGEMENT


def test_one_abnormal_window_is_not_an_alarm_and_clearing_needs_two_normal():
    d = cat.CatheterDetector()
    bad = sine_window(300)
    good = sine_window(1300, 61, 1250, 90, 250)
    assert d.window(bad) is None
    assert d.window(good) is None
    assert d.window(bad) is None               # run restarted
    assert d.window(bad) == cat.EV_DISLODGEMENT
    assert d.window(bad) is None               # latched: no repeat
    assert d.window(good) is None
    assert d.window(bad) is None
    assert d.window(good) is None
    assert d.window(good) == cat.EV_DISLODGEMENT_CLEAR
    assert d.active is None


def test_leak_clears_with_its_own_code():
    d = cat.CatheterDetector()
    leak = sine_window(0)
    good = sine_window(1300, 61, 1250, 90, 250)
    d.window(leak)
    assert d.window(leak) == cat.EV_LEAK
    d.window(good)
    assert d.window(good) == cat.EV_LEAK_CLEAR


def test_recovery_on_the_plant_clears():
    rig = make_rig(4)
    _onset_then(rig, rig.p.dislodge, 4)
    assert rig.cat.active == "dislodgement"
    rig.p.normal()
    rig.run(3 * WINDOW_MS)
    assert rig.cat.active is None
    assert [e[1:3] for e in rig.events] == [("dislodgement", True), ("dislodgement", False)]
