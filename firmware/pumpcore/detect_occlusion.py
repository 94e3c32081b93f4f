# Occlusion detector (issue 5). Pure integer logic; the shell feeds it stroke-response captures and
# the catheter detector's window results; it answers "raise occlusion" / "occlusion cleared".
#
# Inputs (all integer Pa, 25 Hz samples; see docs/detectors.md):
#   stroke(pre_pa, buf, n)  after every stroke: pre_pa = mean of the 5 samples just before the
#                           stroke; buf[0..n-1] = samples after it (buf[0] is 40 ms after the stroke).
#                           n = CAPTURE_N (50, 2 s) normally; smaller when the next stroke comes
#                           sooner (bolus: strokes ~1 s apart -> n ~ 25). The detector only reads buf.
#   window(baseline_pa, pulsatile)  after every sensing window, from CatheterDetector (mean of the
#                           window and whether CSF pulsation was seen).
# Outputs: None, EV_RAISE = ("occlusion", True) or EV_CLEAR = ("occlusion", False); module-level
# constants, so the step functions allocate nothing.
#
# Physics relied on (plant contract): a stroke raises the line pressure by ~250 Pa which decays with
# tau = R*C (0.3 s nominal). Partial occlusion (R x k, k >= 10): tau >= 3 s, CSF pulsation through
# the catheter attenuated ~10x. Complete occlusion: no decay at all, no pulsation, and each stroke
# adds ~250 Pa to the line pressure (the baseline climbs).
#
# Per-stroke features (documented with their reasoning in docs/detectors.md):
#   rise   = mean(buf[0], buf[1]) - pre                  (~220 Pa nominal)
#   late   = mean(buf[12..19]) - pre                     (0.52-0.8 s after the stroke)
#   ratio  = 100 * late // rise   (percent of the rise still present at ~0.66 s:
#            nominal ~12, k=10 ~80, complete ~100; pulsation makes it swing -130..+130 when normal)
#   resid  = RMS residual (Pa) of a least-squares quadratic through buf[0..49] (full captures only).
#            A normal response (fast exponential + pulsation) is never quadratic-smooth
#            (>= 25 Pa at contract noise); an occluded one is smooth to the sensor noise (~15 Pa).
#   elev   = pre - reference baseline (learned from normal strokes and pulsatile windows).
# Classes: INVISIBLE (rise < 60 Pa: leak-like, for the catheter detector), SLOW (ratio >= 50 and
# resid < 24), FLAT (SLOW and ratio >= 80, or on a short capture ratio >= 85 and the short linear
# residual < 24), NORMAL, UNKNOWN (too short to judge, or short and not flat).
# Rules:  2 consecutive FLAT strokes -> occlusion (complete: alarm at the 2nd stroke). When both
#         are short captures back to back (bolus), the 2nd one's pre-stroke level must also be
#         within 60 Pa of the 1st one's post-stroke level (pre + rise): nothing decayed between.
#         leaky counter of full-capture SLOW/FLAT strokes >= 3 -> occlusion (partial k >= 10:
#         ~3rd stroke, bound is 10).
#         elev >= 400 Pa on a stroke that is not NORMAL or on a non-pulsatile window -> occlusion
#         (a NORMAL stroke or a pulsatile window at a higher level re-learns the reference: the
#         baseline moved, e.g. a catheter reseated after a dislodgement) (accumulating line
#         pressure: fast strokes with a long tau, or the slow baseline climb of a complete one).
# Cleared (while raised): one NORMAL stroke, or 2 consecutive pulsatile windows whose baseline is
# back within 150 Pa of the reference (pressure decays normally again).
# Statistics (plain ints, set where they are computed; read by the emulator's campaign probe for
# offline threshold sweeps, never by the firmware): after stroke(): last_class, last_n, last_rise_pa,
# last_ratio_pct, last_resid_pa (-1 when the ratio did not call for the fit), last_elev_pa (0 before
# a reference exists); after window(): last_window_elev_pa. Thresholds: the constants below.

import array

from pumpcore import dsp, reasons

CODE = reasons.OCCLUSION
EV_RAISE = (CODE, True)
EV_CLEAR = (CODE, False)

# stroke classes (ints so callers can store them anywhere without allocation)
UNKNOWN = 0
NORMAL = 1
SLOW = 2
FLAT = 3
INVISIBLE = 4

CAPTURE_N = 50              # samples after a stroke in a full capture (2 s at 25 Hz)
SHORT_N = 20                # minimum samples for any shape judgement (0.8 s)
EARLY_N = 20                # a full capture may stop here when early_normal() says so
MIN_RISE_PA = 60            # below: the stroke is invisible at the sensor (leak / disconnection)
SLOW_RATIO_PCT = 50         # late/rise at or above this: the line does not empty
FLAT_RATIO_PCT = 80         # ... at or above this: it hardly decays at all
SHORT_FLAT_RATIO_PCT = 85   # flat on a short (bolus) capture
SMOOTH_RESID_PA = 24        # quadratic residual below this on a full capture: no pulsation, no fast decay
SHORT_SMOOTH_RESID_PA = 24  # linear residual below this on a short capture
STEP_TOL_PA = 60            # back-to-back short captures: the new pre-stroke level must be within
                            # this of the previous capture's post-stroke level (no decay between)
ELEV_ALARM_PA = 400         # line pressure accumulated above the reference baseline
CLEAR_MARGIN_PA = 150       # window baseline within this of the reference: pressure has decayed
SLOW_COUNT_ALARM = 3        # leaky counter of SLOW/FLAT strokes
CLEAR_WINDOWS = 2           # consecutive pulsatile windows near the reference to clear

# Orthogonal polynomials on 50 points: p1 = 2i - 49, p2 = (3*p1^2 - 2499) / 8 (integers).
_P1 = array.array("h", [2 * i - 49 for i in range(CAPTURE_N)])
_P2 = array.array("h", [(3 * (2 * i - 49) * (2 * i - 49) - 2499) // 8 for i in range(CAPTURE_N)])
_S1 = 41650                 # sum p1^2
_S2_64 = 60913              # sum p2^2 (3898440) / 64
# Short captures: linear fit on SHORT_N points, q1 = 2i - 19, sum q1^2 = 2660.
_Q1 = array.array("h", [2 * i - 19 for i in range(SHORT_N)])
_SQ1 = 2660
_CLAMP = 2000

class OcclusionDetector:
    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forget everything (after a catheter change / new prescription / refill)."""
        self.active = False
        self.ref_q4 = 0          # reference baseline, Pa * 16 (EWMA, 1/8 per update)
        self.has_ref = False
        self.flat_run = 0        # consecutive FLAT strokes
        self.slow_count = 0      # leaky counter: +1 SLOW/FLAT, -1 NORMAL (floor 0)
        self.last_class = UNKNOWN
        self.last_rise_pa = 0
        self.last_ratio_pct = 0
        self.last_resid_pa = 0
        self.last_elev_pa = 0
        self.last_n = 0          # samples in the latest capture (CAPTURE_N full, fewer: short)
        self.last_window_elev_pa = 0   # latest window's baseline - reference (0 before one)
        self.clear_run = 0       # consecutive clearing windows while raised
        self.prev_short = False  # the previous capture was cut short by this stroke (bolus)
        self.prev_level_pa = 0   # previous capture's post-stroke level: pre + rise

    # --- reference baseline -------------------------------------------------------------------
    def ref_pa(self):
        """Reference baseline in Pa, or None before the first normal observation."""
        if not self.has_ref:
            return None
        return self.ref_q4 >> 4

    def _learn(self, pa: int) -> None:
        if not self.has_ref:
            self.ref_q4 = pa << 4
            self.has_ref = True
        else:
            self.ref_q4 += ((pa << 4) - self.ref_q4) >> 3

    # --- features -----------------------------------------------------------------------------
    def _resid_full(self, pre: int, buf) -> int:
        """RMS residual (Pa) of the least-squares quadratic through buf[0..49] - pre.
        Bounds: x clamped +-2000; c1 <= 2.5e6, c1*p1 <= 1.2e8; c2/64 <= 3.8e5, *p2 <= 2.2e8;
        residuals clamped +-2000, sum of squares <= 2e8."""
        # (clamps written inline: this runs for every suspicious stroke, and a call per sample
        # doubled its time)
        n = CAPTURE_N
        p1 = _P1
        p2 = _P2
        c0 = 0
        c1 = 0
        c2 = 0
        for i in range(n):
            x = buf[i] - pre
            if x > _CLAMP:
                x = _CLAMP
            elif x < -_CLAMP:
                x = -_CLAMP
            c0 += x
            c1 += x * p1[i]
            c2 += x * p2[i]
        c2s = c2 >> 6
        f0 = (c0 + 25) // 50
        ss = 0
        for i in range(n):
            x = buf[i] - pre
            if x > _CLAMP:
                x = _CLAMP
            elif x < -_CLAMP:
                x = -_CLAMP
            r = x - (f0 + (c1 * p1[i] + 20825) // _S1 + (c2s * p2[i] + 30456) // _S2_64)
            if r > _CLAMP:
                r = _CLAMP
            elif r < -_CLAMP:
                r = -_CLAMP
            ss += r * r
        return dsp.isqrt(ss // n)

    def _resid_short(self, pre: int, buf) -> int:
        """RMS residual (Pa) of the least-squares line through buf[0..19] - pre."""
        n = SHORT_N
        q1 = _Q1
        c0 = 0
        c1 = 0
        for i in range(n):
            x = buf[i] - pre
            if x > _CLAMP:
                x = _CLAMP
            elif x < -_CLAMP:
                x = -_CLAMP
            c0 += x
            c1 += x * q1[i]
        f0 = (c0 + 10) // 20
        ss = 0
        for i in range(n):
            x = buf[i] - pre
            if x > _CLAMP:
                x = _CLAMP
            elif x < -_CLAMP:
                x = -_CLAMP
            r = x - (f0 + (c1 * q1[i] + 1330) // _SQ1)
            if r > _CLAMP:
                r = _CLAMP
            elif r < -_CLAMP:
                r = -_CLAMP
            ss += r * r
        return dsp.isqrt(ss // n)

    # --- inputs ---------------------------------------------------------------------------------
    def early_normal(self, pre_pa: int, buf) -> bool:
        """After the first EARLY_N samples of a capture that could run to CAPTURE_N: True when
        they already decide it — the rise is visible and less than SLOW_RATIO_PCT of it remains at
        ~0.66 s, so the full capture would be NORMAL whatever its later samples (the residual fit
        is only consulted for suspicious ratios). The shell may then stop sampling and call
        stroke(pre_pa, buf, CAPTURE_N), which reads no sample past EARLY_N in that case.
        Suspicious or invisible strokes return False: the shell captures all CAPTURE_N samples."""
        rise = (buf[0] + buf[1]) // 2 - pre_pa
        if rise < MIN_RISE_PA:
            return False
        late = dsp.mean(buf, 12, 20) - pre_pa
        return dsp.clamp(late, -_CLAMP, _CLAMP) * 100 // rise < SLOW_RATIO_PCT

    def stroke(self, pre_pa: int, buf, n: int):
        """One stroke-response capture (see module comment). Returns None, EV_RAISE or EV_CLEAR."""
        elev = 0
        if self.has_ref:
            elev = pre_pa - (self.ref_q4 >> 4)
        self.last_elev_pa = elev
        self.last_n = n
        if n < SHORT_N:
            cls = UNKNOWN
            self.last_rise_pa = 0
            self.last_ratio_pct = 0
            self.last_resid_pa = 0
        else:
            rise = (buf[0] + buf[1]) // 2 - pre_pa
            late = dsp.mean(buf, 12, 20) - pre_pa
            self.last_rise_pa = rise
            if rise < MIN_RISE_PA:
                cls = INVISIBLE
                self.last_ratio_pct = 0
                self.last_resid_pa = 0
            else:
                ratio = dsp.clamp(late, -_CLAMP, _CLAMP) * 100 // rise
                self.last_ratio_pct = ratio
                if n >= CAPTURE_N:
                    # the quadratic fit only decides between SLOW/FLAT and NORMAL when the decay
                    # ratio is suspicious; below it the stroke is NORMAL whatever the residual
                    # (same classification, a fraction of the work: last_resid_pa is then -1)
                    if ratio >= SLOW_RATIO_PCT:
                        resid = self._resid_full(pre_pa, buf)
                    else:
                        resid = -1
                    self.last_resid_pa = resid
                    if ratio >= SLOW_RATIO_PCT and resid < SMOOTH_RESID_PA:
                        cls = FLAT if ratio >= FLAT_RATIO_PCT else SLOW
                    else:
                        cls = NORMAL
                else:
                    resid = self._resid_short(pre_pa, buf)
                    self.last_resid_pa = resid
                    if ratio >= SHORT_FLAT_RATIO_PCT and resid < SHORT_SMOOTH_RESID_PA:
                        cls = FLAT
                    else:
                        cls = UNKNOWN   # a short capture cannot prove a normal decay
        self.last_class = cls
        # a FLAT pair confirms only if nothing decayed between two back-to-back short captures
        step_ok = n >= CAPTURE_N or not self.prev_short or pre_pa - self.prev_level_pa >= -STEP_TOL_PA
        self.prev_short = SHORT_N <= n < CAPTURE_N
        self.prev_level_pa = pre_pa + self.last_rise_pa
        if cls == FLAT:
            self.flat_run += 1
            if n >= CAPTURE_N:   # short-capture FLATs only count in pairs (flat_run)
                self.slow_count += 1
        elif cls == SLOW:
            self.flat_run = 0
            self.slow_count += 1
        elif cls == NORMAL:
            self.flat_run = 0
            if self.slow_count > 0:
                self.slow_count -= 1
        else:
            self.flat_run = 0    # INVISIBLE / UNKNOWN break a run of FLAT strokes
        self.slow_count = min(self.slow_count, 2 * SLOW_COUNT_ALARM)

        if self.active:
            if cls == NORMAL:
                self.active = False
                self.flat_run = 0
                self.slow_count = 0
                return EV_CLEAR
            return None
        if ((self.flat_run >= 2 and step_ok) or self.slow_count >= SLOW_COUNT_ALARM
                or (self.has_ref and elev >= ELEV_ALARM_PA and cls != NORMAL)):
            self.active = True
            return EV_RAISE
        if cls == NORMAL:
            if elev < CLEAR_MARGIN_PA:
                self._learn(pre_pa)
            else:
                # the line empties normally at a higher level: the baseline itself moved (catheter
                # reseated after a dislodgement, posture): take it as the new reference
                self.ref_q4 = pre_pa << 4
        return None

    def window(self, baseline_pa: int, pulsatile: bool):
        """Result of one sensing window (from CatheterDetector). Returns None, EV_RAISE or EV_CLEAR.
        last_window_elev_pa: the window's elevation over the reference, the statistic the
        elevation and clearing rules compare with ELEV_ALARM_PA and CLEAR_MARGIN_PA."""
        elev = baseline_pa - (self.ref_q4 >> 4) if self.has_ref else 0
        self.last_window_elev_pa = elev
        if self.active:
            if pulsatile and (not self.has_ref or elev <= CLEAR_MARGIN_PA):
                self.clear_run += 1
                if self.clear_run >= CLEAR_WINDOWS:
                    self.active = False
                    self.flat_run = 0
                    self.slow_count = 0
                    self.clear_run = 0
                    return EV_CLEAR
            else:
                self.clear_run = 0
            return None
        if pulsatile:
            if not self.has_ref or elev < CLEAR_MARGIN_PA:
                self._learn(baseline_pa)
            else:
                # CSF pulsation reaches the sensor, so the line is open: a higher baseline is a
                # new reference (reseated catheter), not accumulated line pressure
                self.ref_q4 = baseline_pa << 4
            return None
        if self.has_ref and elev >= ELEV_ALARM_PA:
            self.active = True
            return EV_RAISE
        return None

    # --- persistence ----------------------------------------------------------------------------
    def state(self) -> dict:
        """What is worth persisting: the learned reference and whether the alarm is raised."""
        return {"ref_q4": self.ref_q4 if self.has_ref else None, "active": self.active}

    def load(self, st: dict) -> None:
        self.reset()
        ref = st.get("ref_q4")
        if isinstance(ref, int) and not isinstance(ref, bool):
            self.ref_q4 = ref
            self.has_ref = True
        self.active = st.get("active") is True
