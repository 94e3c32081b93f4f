# Catheter dislodgement and leak detector (issue 5). Pure integer logic over duty-cycled sensing
# windows of the outlet pressure; no allocation per window (all buffers preallocated here; the
# window buffer itself belongs to the shell and is only read).
#
# Input:  window(buf, stroke_in_window=False) every 5 min: buf[0..99] = 100 samples, integer Pa,
#         25 Hz (4 s). A window that contains a stroke is inconclusive (ignored, counts unchanged).
#         note_stroke(cls) after every stroke capture: cls = OcclusionDetector.last_class (the
#         stroke-response evidence: NORMAL/SLOW/FLAT/INVISIBLE/UNKNOWN from detect_occlusion).
# Output: None or one event tuple (module constants): EV_DISLODGEMENT / EV_LEAK when raised,
#         EV_DISLODGEMENT_CLEAR / EV_LEAK_CLEAR when the condition has gone.
# After every window the metrics are exposed: baseline_pa, cardiac_pa, resp_pa, pulsatile (feed
# baseline_pa and pulsatile to OcclusionDetector.window()).
#
# Metrics per window (dsp.Spectrum: Hann-windowed DFT, bins 0.25 Hz apart):
#   baseline_pa = window mean
#   resp_pa     = RSS amplitude of bins 1..2 (0.25-0.5 Hz; 0.15 Hz breathing leaks into bin 1)
#   cardiac_pa  = RSS amplitude of bins 3..9 (0.75-2.25 Hz: heart rate 0.8-2.0 Hz)
# At the sensor (first-order catheter filter, tau 0.3 s): cardiac 150 Pa at 1.2 Hz -> 61 Pa
# (2.0 Hz -> 38 Pa, 0.8 Hz -> 83 Pa); respiration 100 Pa at 0.25 Hz -> 90 Pa (0.5 Hz -> 73 Pa).
# Noise floor (sigma 15 Pa): ~9 Pa in the cardiac band, ~5 Pa in the respiratory band.
#   pulsatile := cardiac_pa >= 30 or resp_pa >= 45   (normal minima seen in simulation: 42 / 46;
#   partial occlusion k=10 maxima: 23 / 34; dislodged maxima: 22 / 21)
# Window classification:
#   pulsatile and baseline >= 650            -> normal
#   not pulsatile and baseline >= 650        -> occlusion-like: never dislodgement/leak
#                                               (occlusion has precedence; see docs/detectors.md)
#   baseline < 650 (tip out of the intrathecal space, or line open near the pump) -> abnormal:
#       leak if baseline < 150 or the latest stroke since the run began was INVISIBLE,
#       otherwise dislodgement; but if the latest stroke was SLOW/FLAT (line does not empty):
#       occlusion precedence, no catheter alarm.
#   (A low baseline with full pulsation is still abnormal: the intrathecal CSF baseline is
#   1000-1500 Pa lying and higher upright; only tissue or an open line reads below 650 Pa.)
# Alarm after ABNORMAL_RUN = 2 consecutive abnormal windows (onset mid-window: the 1st window may
# look normal, so the alarm comes at the 3rd window at the latest = issue 5's bound).
# Cleared after CLEAR_RUN = 2 consecutive normal windows.

from pumpcore import detect_occlusion as occ
from pumpcore import dsp, reasons

DISLODGEMENT = reasons.DISLODGEMENT
LEAK = reasons.LEAK
EV_DISLODGEMENT = (DISLODGEMENT, True)
EV_LEAK = (LEAK, True)
EV_DISLODGEMENT_CLEAR = (DISLODGEMENT, False)
EV_LEAK_CLEAR = (LEAK, False)

CARDIAC_MIN_PA = 30
RESP_MIN_PA = 45
BASELINE_LOW_PA = 650       # half of the nominal 1300 Pa intrathecal baseline
LEAK_BASELINE_PA = 150      # leak reads ~0 Pa, tissue ~300 Pa; drift <= 100 Pa either way
ABNORMAL_RUN = 2
CLEAR_RUN = 2

# window classes (exposed as last_class)
W_NONE = 0
W_NORMAL = 1
W_OCCLUSION_LIKE = 2
W_DISLODGEMENT = 3
W_LEAK = 4
W_SUPPRESSED = 5            # abnormal but the stroke evidence says occlusion
W_SKIPPED = 6               # stroke inside the window


class CatheterDetector:
    def __init__(self):
        self.spec = dsp.Spectrum()
        self.reset()

    def reset(self) -> None:
        self.active = None  # type: str | None  # None, DISLODGEMENT or LEAK
        self.abnormal_run = 0
        self.normal_run = 0
        self.stroke_cls = occ.UNKNOWN  # latest stroke evidence since the last normal window
        self.last_class = W_NONE
        self.baseline_pa = 0
        self.cardiac_pa = 0
        self.resp_pa = 0
        self.pulsatile = True
        self.occlusion_like_run = 0   # consecutive non-pulsatile windows with a normal baseline
        self.invisible_run = 0        # consecutive judged strokes whose rise was invisible

    def note_stroke(self, cls: int) -> None:
        """Stroke-response evidence from OcclusionDetector.last_class (the latest judged stroke).
        INVISIBLE counts only when two strokes in a row are invisible: a single one happens when
        the baseline itself moves during the stroke (the tip just left the intrathecal space) or
        pulsation hides one rise at the fastest rates; a leak hides every stroke."""
        if cls == occ.UNKNOWN:
            # a stroke that could not be judged (short capture at a fast rate): the evidence of
            # older strokes expires, so one odd short capture cannot decide a later window
            self.invisible_run = 0
            self.stroke_cls = occ.UNKNOWN
            return
        if cls == occ.INVISIBLE:
            self.invisible_run += 1
            if self.invisible_run < 2:
                return
        else:
            self.invisible_run = 0
        self.stroke_cls = cls

    def window(self, buf, stroke_in_window: bool = False):
        if stroke_in_window:
            self.last_class = W_SKIPPED
            return None
        spec = self.spec
        spec.run(buf)
        base = spec.mean_pa
        cardiac = spec.band_pa(3, 9)
        resp = spec.band_pa(1, 2)
        self.baseline_pa = base
        self.cardiac_pa = cardiac
        self.resp_pa = resp
        pulsatile = cardiac >= CARDIAC_MIN_PA or resp >= RESP_MIN_PA
        self.pulsatile = pulsatile

        if base >= BASELINE_LOW_PA:
            if pulsatile:
                cls = W_NORMAL
            else:
                cls = W_OCCLUSION_LIKE
        else:
            sc = self.stroke_cls
            if sc == occ.SLOW or sc == occ.FLAT:
                cls = W_SUPPRESSED
            elif base < LEAK_BASELINE_PA or sc == occ.INVISIBLE:
                cls = W_LEAK
            else:
                cls = W_DISLODGEMENT
        self.last_class = cls

        if cls == W_OCCLUSION_LIKE:
            self.occlusion_like_run += 1
        else:
            self.occlusion_like_run = 0

        if cls == W_NORMAL:
            self.abnormal_run = 0
            self.normal_run += 1
            self.stroke_cls = occ.UNKNOWN
            if self.active is not None and self.normal_run >= CLEAR_RUN:
                code = self.active
                self.active = None
                return EV_LEAK_CLEAR if code == LEAK else EV_DISLODGEMENT_CLEAR
            return None
        self.normal_run = 0
        if cls == W_DISLODGEMENT or cls == W_LEAK:
            self.abnormal_run += 1
            if self.active is None and self.abnormal_run >= ABNORMAL_RUN:
                if cls == W_LEAK:
                    self.active = LEAK
                    return EV_LEAK
                self.active = DISLODGEMENT
                return EV_DISLODGEMENT
        else:
            # occlusion-like or suppressed: the run of catheter evidence is broken
            self.abnormal_run = 0
        return None
