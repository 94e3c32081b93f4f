# The detectors' step functions allocate nothing (helper E). Under MicroPython each scenario runs
# twice on fresh detectors: first with the GC disabled while gc.mem_alloc() is compared before and
# after (a regression fails here with a clear number: in the WebAssembly MicroPython an allocation
# under heap_lock hangs instead of raising MemoryError), then with micropython.heap_lock() held (the
# formal proof). Under CPython the scenario runs unlocked, so behaviour is still checked.
# Inputs are generated before measuring.
import sys

from pumpcore import detect_battery, detect_catheter, detect_motor, detect_occlusion
from signals import exp_capture, linear_capture, make_rig, sine_window

MP = sys.implementation.name == "micropython"
if MP:
    import gc

    import micropython


def _prove(make, run):
    """make() -> fresh state; run(state) does the steady-state calls and stores its results in
    state (preallocated). Returns the state of the final (locked) run."""
    st = make()
    if not MP:
        run(st)
        return st
    gc.collect()
    gc.disable()
    try:
        a = gc.mem_alloc()
        run(st)
        b = gc.mem_alloc()
    finally:
        gc.enable()
    assert b == a, "allocated %d bytes" % (b - a)  # noqa: UP031 (MicroPython-portable)
    st = make()
    gc.collect()
    micropython.heap_lock()
    try:
        run(st)
    finally:
        micropython.heap_unlock()
    return st


def test_catheter_window_allocates_nothing():
    rig = make_rig(11)
    bufs = [rig.p.window([0] * 100) for _ in range(3)]
    low = sine_window(300)

    def make():
        return [detect_catheter.CatheterDetector(), None, None, None]

    def run(st):
        d = st[0]
        for b in bufs:
            d.window(b)
        st[1] = d.window(low)
        st[2] = d.window(low)
        st[3] = d.window(low, True)

    st = _prove(make, run)
    assert st[1:] == [None, detect_catheter.EV_DISLODGEMENT, None]


def test_occlusion_stroke_and_window_allocate_nothing():
    rig = make_rig(12)
    caps = []
    for _ in range(3):
        c = [0] * 50
        pre = rig.p.stroke_capture(c, 50)
        caps.append((pre, c))
    flat1 = linear_capture(1550, 0)
    flat2 = linear_capture(1800, 0)
    normal = exp_capture(1300)

    def make():
        return [detect_occlusion.OcclusionDetector(), 0, 0, 0, 0]

    def run(st):
        d = st[0]
        d.window(1300, True)
        for pre, c in caps:
            d.stroke(pre, c, 50)
        d.stroke(1300, caps[0][1], 20)
        st[1] = d.stroke(1300, flat1, 50)
        st[2] = d.stroke(1550, flat2, 50)
        st[3] = d.stroke(1300, normal, 50)
        st[4] = d.window(1300, True)

    st = _prove(make, run)
    assert st[1:] == [None, detect_occlusion.EV_RAISE, detect_occlusion.EV_CLEAR, None]


def test_motor_and_battery_steps_allocate_nothing():
    def make():
        return [detect_motor.MotorDetector(), detect_battery.BatteryDetector(capacity_uah=1000000),
                0, 0, 0, 0, 0]

    def run(st):
        m = st[0]
        b = st[1]
        st[2] = m.stroke_result(False)
        st[3] = m.stroke_result(False)
        i = 0
        while i < 16:
            m.note_command(250)
            m.note_feedback(500)
            r = m.advance(60000)
            if r is not None:
                st[4] = r
            b.note_strokes(1)
            b.note_samples(55)
            b.note_wakeups(1)
            b.advance(3600000)
            i += 1
        st[5] = b.consumed_uah
        st[6] = b.check()

    st = _prove(make, run)
    assert st[2] == detect_motor.RETRY and st[3] == detect_motor.EV_STALL
    assert st[4] == detect_motor.EV_OVER
    assert st[5] == 16 * 10 + 16 * (3000000 + 55 * 5000 + 100000) // 3600000
    assert st[6] is None


def test_the_allocation_check_can_fail():
    # the measuring half of _prove really sees an allocation (so a pass above means something)
    if not MP:
        return
    def run(st):
        st[0] = [1, 2, 3]

    try:
        _prove(lambda: [None], run)
    except AssertionError as e:
        assert "allocated" in str(e)
        return
    raise AssertionError("allocation not detected")


def test_extreme_inputs_stay_small_ints():
    # ADC extremes (-5 kPa .. +35 kPa, the emulator's 12-bit range): a bigint anywhere in the
    # arithmetic would allocate and fail the proof.
    sq = [35000 if (i // 7) % 2 else -5000 for i in range(100)]
    ramp = [-5000 + i * 400 for i in range(100)]
    cap_hi = [35000] * 50
    cap_alt = [35000 if i % 2 else -5000 for i in range(50)]

    def make():
        return [detect_catheter.CatheterDetector(), detect_occlusion.OcclusionDetector(), 0]

    def run(st):
        c = st[0]
        o = st[1]
        c.window(sq)
        c.window(ramp)
        o.window(-5000, True)
        o.stroke(-5000, cap_hi, 50)
        o.stroke(35000, cap_alt, 50)
        o.stroke(-5000, cap_alt, 20)
        o.stroke(35000, cap_hi, 20)
        st[2] = c.cardiac_pa + c.resp_pa + o.last_resid_pa

    st = _prove(make, run)
    assert 0 < st[2] < 20000
