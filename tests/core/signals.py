# Integer synthetic signals for the detector tests (helper E). Runs on CPython and MicroPython
# with identical results: own PRNG (xorshift32), own sine table, integer-only arithmetic.
#
# It implements the shared physics contract (docs/detectors.md, "Plant contract"):
#   p = baseline + LP_tau(pulsation) + p_line + drift + noise      (Pa, gauge)
#   - pulsation: cardiac sine (150 Pa, 1.2 Hz) + respiratory sine (100 Pa, 0.25 Hz), both scaled
#     by pulse_pct; reaches the sensor through a first-order low-pass with the catheter's tau.
#   - each stroke adds dp_pa (250 Pa) to p_line, which decays toward 0 with tau (tau None = complete
#     occlusion: never decays, no pulsation reaches the sensor).
#   - noise: sum of four uniforms in [-13, 13] (sigma ~15.6 Pa, bounded +-52); drift: bounded random
#     walk |drift| <= 100 Pa.
# The plant is simulated in 10 ms sub-steps with the exact first-order discretisation
# (factor exp(-10/tau) in Q16, computed with an integer series); samples every 40 ms (25 Hz).
# This module allocates freely: it is test-side only. Generate buffers BEFORE heap_lock.

_SIN256_Q14 = (
    0, 402, 804, 1205, 1606, 2006, 2404, 2801, 3196, 3590, 3981, 4370, 4756, 5139, 5520, 5897,
    6270, 6639, 7005, 7366, 7723, 8076, 8423, 8765, 9102, 9434, 9760, 10080, 10394, 10702, 11003,
    11297, 11585, 11866, 12140, 12406, 12665, 12916, 13160, 13395, 13623, 13842, 14053, 14256,
    14449, 14635, 14811, 14978, 15137, 15286, 15426, 15557, 15679, 15791, 15893, 15986, 16069,
    16143, 16207, 16261, 16305, 16340, 16364, 16379, 16384)   # first quarter, 65 entries

SUB_MS = 10
SAMPLE_MS = 40


def sin_q14(phase_ucyc):
    """sin(2*pi*phase) in Q14 for phase in micro-cycles (0..999999), linear interpolation."""
    phase_ucyc %= 1000000
    pos = phase_ucyc * 256            # position in 1/1e6 of a 256-entry table
    idx = pos // 1000000
    frac = pos % 1000000
    a = _table(idx)
    b = _table(idx + 1)
    return a + (b - a) * frac // 1000000


def _table(i):
    i %= 256
    if i <= 64:
        return _SIN256_Q14[i]
    if i <= 128:
        return _SIN256_Q14[128 - i]
    if i <= 192:
        return -_SIN256_Q14[i - 128]
    return -_SIN256_Q14[256 - i]


def exp_neg_q16(num, den):
    """exp(-num/den) in Q16 with an integer Taylor series (range reduction by halving)."""
    if den is None:
        return 65536
    # exp(-x) = exp(-x/2^k)^(2^k); choose k so x/2^k <= 1/8
    k = 0
    while num * 8 > den * (1 << k):
        k += 1
    one = 1 << 40
    # term = (x/2^k)^i / i!  with x/2^k = num / (den * 2^k)
    d = den * (1 << k)
    total = 0
    term = one
    i = 0
    while term != 0 and i < 30:
        total += term if i % 2 == 0 else -term
        i += 1
        term = term * num // (d * i)
    r = total
    while k > 0:
        r = r * r // one
        k -= 1
    return r >> 24


class Rng:
    """xorshift32; identical sequences on CPython and MicroPython."""

    def __init__(self, seed=12345):
        self.s = (seed & 0xFFFFFFFF) or 1

    def next(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, n):
        return self.next() % n

    def between(self, lo, hi):
        """Uniform integer in [lo, hi]."""
        return lo + self.next() % (hi - lo + 1)

    def noise(self, sigma_q=13):
        """Approximately Gaussian: sum of four uniforms in [-sigma_q, sigma_q] (sigma ~1.2*q)."""
        s = 0
        for _ in range(4):
            s += self.between(-sigma_q, sigma_q)
        return s


class Plant:
    """Catheter + CSF pressure at the pump-outlet sensor, integer Pa. See module comment."""

    NORMAL = "normal"

    def __init__(self, seed=1, tau_ms=300, baseline_pa=1300, cardiac_pa=150, cardiac_mhz=1200,
                 resp_pa=100, resp_mhz=250, dp_pa=250, noise_q=13, drift_limit_pa=100):
        self.rng = Rng(seed)
        self.tau_ms = tau_ms            # None = complete occlusion
        self.baseline_pa = baseline_pa
        self.cardiac_pa = cardiac_pa
        self.cardiac_mhz = cardiac_mhz
        self.resp_pa = resp_pa
        self.resp_mhz = resp_mhz
        self.pulse_pct = 100            # pulsation reaching the catheter tip, % of intrathecal
        self.dp_pa = dp_pa
        self.noise_q = noise_q
        self.drift_limit_pa = drift_limit_pa
        self.t_ms = 0
        self.ph_c = self.rng.below(1000000)   # phases in micro-cycles
        self.ph_r = self.rng.below(1000000)
        self.line_q8 = 0                # p_line, Pa * 256
        self.drift_pa = 0
        self.frozen_q8 = None           # sensor-side CSF value frozen by a complete occlusion
        self._set_factor()
        self.filt_q8 = self._tip_q8()

    # --- faults (as in the contract) ---------------------------------------------------------
    def normal(self):
        self.tau_ms = 300
        self.baseline_pa = 1300
        self.pulse_pct = 100
        self.frozen_q8 = None
        self._set_factor()

    def partial_occlusion(self, k):
        self.tau_ms = 300 * k
        self._set_factor()

    def complete_occlusion(self):
        self.frozen_q8 = self.filt_q8
        self.tau_ms = None
        self._set_factor()

    def dislodge(self):
        self.baseline_pa = 300
        self.pulse_pct = 10

    def leak(self):
        self.tau_ms = 15
        self.baseline_pa = 0
        self.pulse_pct = 0
        self._set_factor()

    def _set_factor(self):
        self.d_q16 = exp_neg_q16(SUB_MS, self.tau_ms)

    # --- physics --------------------------------------------------------------------------------
    def _tip_q8(self):
        c = self.cardiac_pa * sin_q14(self.ph_c) * self.pulse_pct // 100
        r = self.resp_pa * sin_q14(self.ph_r) * self.pulse_pct // 100
        return self.baseline_pa * 256 + (c + r) // 64

    def _sub(self):
        self.ph_c += self.cardiac_mhz * SUB_MS
        self.ph_r += self.resp_mhz * SUB_MS
        if self.ph_c >= 1000000:
            self.ph_c -= 1000000
        if self.ph_r >= 1000000:
            self.ph_r -= 1000000
        d = self.d_q16
        if self.tau_ms is not None:
            x = self._tip_q8()
            self.filt_q8 = (self.filt_q8 * d + x * (65536 - d)) >> 16
            self.line_q8 = (self.line_q8 * d) >> 16
        self.t_ms += SUB_MS

    def read(self):
        """Advance 40 ms and return one integer-Pa sample."""
        for _ in range(SAMPLE_MS // SUB_MS):
            self._sub()
        step = self.rng.between(-1, 1)
        self.drift_pa = max(-self.drift_limit_pa, min(self.drift_limit_pa, self.drift_pa + step))
        if self.tau_ms is None:
            p_q8 = self.frozen_q8 + self.line_q8
        else:
            p_q8 = self.filt_q8 + self.line_q8
        return (p_q8 >> 8) + self.drift_pa + self.rng.noise(self.noise_q)

    def stroke(self):
        self.line_q8 += self.dp_pa * 256

    def idle(self, ms):
        """Let `ms` pass without sampling: phases advance (with a little heart/breath variability),
        p_line decays, the filter is re-settled with a short warm-up so it is at steady state."""
        jitter = self.rng.between(0, 999999)
        self.ph_c = (self.ph_c + self.cardiac_mhz * ms + jitter) % 1000000
        self.ph_r = (self.ph_r + self.resp_mhz * ms + jitter // 3) % 1000000
        self.t_ms += ms
        self.drift_pa = max(-self.drift_limit_pa,
                            min(self.drift_limit_pa, self.drift_pa + self.rng.between(-10, 10)))
        if self.tau_ms is None:
            return
        if ms > 10 * self.tau_ms:
            self.line_q8 = 0
        else:
            self.line_q8 = self.line_q8 * exp_neg_q16(ms, self.tau_ms) >> 16
        warm = min(5 * self.tau_ms, 3000, ms)
        if ms > 3 * self.tau_ms:
            self.filt_q8 = self.baseline_pa * 256
        # rewind the phases by the warm-up, then run it
        self.ph_c = (self.ph_c - self.cardiac_mhz * warm) % 1000000
        self.ph_r = (self.ph_r - self.resp_mhz * warm) % 1000000
        line = self.line_q8
        for _ in range(warm // SUB_MS):
            self._sub()
        self.line_q8 = line
        self.t_ms -= warm // SUB_MS * SUB_MS

    # --- captures as the firmware shell makes them -----------------------------------------------
    def window(self, buf, n=100):
        for i in range(n):
            buf[i] = self.read()
        return buf

    def stroke_capture(self, buf, n=50):
        """Mean of 5 samples before the stroke, the stroke, then n samples after it (40 ms apart;
        sample 0 is 40 ms after the stroke). Returns the pre-stroke mean."""
        s = 0
        for _ in range(5):
            s += self.read()
        self.stroke()
        for i in range(n):
            buf[i] = self.read()
        return s // 5


def window_buf():
    return [0] * 100


def capture_buf():
    return [0] * 50


# --- scenario runner (firmware-side sampling as in the contract) ----------------------------------
class Rig:
    """Drives a Plant the way the shell will: a stroke capture (5 pre samples + n after) per
    stroke, a 100-sample window every window_ms, and feeds the detectors the way the Pump will
    (see docs/detectors.md, "Wiring"). Records every event as (t_ms, code, on, stroke_no, window_no).
    Counters `strokes` / `windows` count captures made since creation."""

    def __init__(self, plant, occ, cat):
        self.p = plant
        self.occ = occ
        self.cat = cat
        self.events = []
        self.strokes = 0
        self.windows = 0
        self.cap = capture_buf()
        self.win = window_buf()

    def _ev(self, ev):
        if ev is not None:
            self.events.append((self.p.t_ms, ev[0], ev[1], self.strokes, self.windows))

    def do_stroke(self, n=50):
        pre = self.p.stroke_capture(self.cap, n)
        self.strokes += 1
        self._ev(self.occ.stroke(pre, self.cap, n))
        self.cat.note_stroke(self.occ.last_class)

    def do_window(self):
        self.p.window(self.win)
        self.windows += 1
        self._ev(self.cat.window(self.win))
        self._ev(self.occ.window(self.cat.baseline_pa, self.cat.pulsatile))

    def run(self, duration_ms, stroke_ms=450000, window_ms=300000, n=50, phase_ms=0):
        """Strokes every stroke_ms and windows every window_ms (None: none) for duration_ms."""
        t_end = self.p.t_ms + duration_ms
        next_s = self.p.t_ms + phase_ms + (stroke_ms if stroke_ms else 0)
        next_w = self.p.t_ms + (window_ms if window_ms else 0)
        if stroke_ms is None:
            next_s = t_end + 1
        if window_ms is None:
            next_w = t_end + 1
        while True:
            t = min(next_s, next_w)
            if t > t_end:
                break
            gap = t - self.p.t_ms
            if gap > 0:
                self.p.idle(gap)
            if t == next_s:
                self.do_stroke(n)
                next_s += stroke_ms
            else:
                self.do_window()
                next_w += window_ms
        if self.p.t_ms < t_end:
            self.p.idle(t_end - self.p.t_ms)

    def bolus(self, count, n=20):
        """count strokes back to back: 5 pre samples + n samples each (n=20: one stroke a second)."""
        for _ in range(count):
            self.do_stroke(n)

    def raised(self, code=None):
        return [e for e in self.events if e[2] and (code is None or e[1] == code)]


def make_rig(seed, hr_mhz=None, resp_mhz=None):
    """A Rig with random (seeded) physiology: heart 0.8-2.0 Hz, breathing 0.15-0.5 Hz."""
    from pumpcore.detect_catheter import CatheterDetector
    from pumpcore.detect_occlusion import OcclusionDetector
    r = Rng(seed * 7919 + 17)
    if hr_mhz is None:
        hr_mhz = r.between(800, 2000)
    if resp_mhz is None:
        resp_mhz = r.between(150, 500)
    return Rig(Plant(seed=seed, cardiac_mhz=hr_mhz, resp_mhz=resp_mhz),
               OcclusionDetector(), CatheterDetector())


def sine_window(baseline_pa, amp_pa=0, freq_mhz=1250, amp2_pa=0, freq2_mhz=250, n=100):
    """Noise-free window: baseline + amp*sin(2*pi*f*t) + amp2*sin(2*pi*f2*t), 25 Hz."""
    buf = [0] * n
    for i in range(n):
        t = i * SAMPLE_MS
        v = baseline_pa * 16384 + amp_pa * sin_q14(freq_mhz * t % 1000000)
        v += amp2_pa * sin_q14(freq2_mhz * t % 1000000)
        buf[i] = v // 16384
    return buf


def linear_capture(start_pa, slope_pa, n=50, alt_pa=0):
    """Capture buf[i] = start + slope*i (+ alt*(-1)^i): a smooth (or rough) synthetic response."""
    buf = [0] * 50
    for i in range(n):
        buf[i] = start_pa + slope_pa * i + (alt_pa if i % 2 == 0 else -alt_pa)
    return buf


def exp_capture(pre_pa, dp_pa=250, tau_ms=300, n=50):
    """Noise-free stroke response: buf[i] = pre + dp * exp(-(i+1)*40/tau) (tau None: no decay)."""
    d = exp_neg_q16(SAMPLE_MS, tau_ms)
    buf = [0] * 50
    v = dp_pa * 65536
    for i in range(n):
        v = v * d >> 16
        buf[i] = pre_pa + (v >> 16)
    return buf


def normal_day(seed, hours=24, bolus_every_h=6, rig=None):
    """Normal physiology with noise for `hours`: lowest basal rate (a stroke every 7.5 min), a
    window every 5 min, heart and breathing rates re-drawn every hour (0.8-2.0 / 0.15-0.5 Hz), a
    40-stroke bolus (1 stroke/s) every `bolus_every_h` hours. Returns the Rig (events in .events)."""
    if rig is None:
        rig = make_rig(seed)
    r = Rng(seed + 4242)
    for h in range(hours):
        rig.p.cardiac_mhz = r.between(800, 2000)
        rig.p.resp_mhz = r.between(150, 500)
        if bolus_every_h and h % bolus_every_h == bolus_every_h - 1:
            rig.bolus(40)
        rig.run(3600000, phase_ms=r.between(0, 60000))
    return rig


def bench_inputs(seed=5):
    """Eight sensing windows and eight (pre_pa, 50-sample capture) pairs of normal physiology from
    make_rig(seed): the fixed inputs of bench/bench_detectors.py (CPython and MicroPython)."""
    rig = make_rig(seed)
    wins = [rig.p.window([0] * 100) for _ in range(8)]
    caps = []
    for _ in range(8):
        c = [0] * 50
        caps.append((rig.p.stroke_capture(c, 50), c))
    return wins, caps
