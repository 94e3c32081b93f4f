# Supervision: feeds the pumpcore detectors from the hardware and turns their verdicts into alarm
# inputs of the Pump facade (raise_alarm / clear_condition). Who calls it: pumpfw.app only.
#
# Sampling (docs/detectors.md): before every stroke PRE_STROKE_N samples at 25 Hz (their mean is
# the pre-stroke pressure); after it up to STROKE_CAPTURE_N samples (fewer when the next stroke is
# due sooner); every WINDOW_EVERY_MS a sensing window of WINDOW_N samples. All buffers are
# preallocated here; the HAL fills them in place (hal.read_pressure(buf, n, period_ms) blocks for
# n * period_ms, which the main loop then accounts as elapsed time).

from pumpcore.detect_battery import BatteryDetector
from pumpcore.detect_catheter import CatheterDetector
from pumpcore.detect_motor import RETRY, MotorDetector
from pumpcore.detect_occlusion import EARLY_N, OcclusionDetector

from pumpfw import board


class Supervisor:
    def __init__(self, pump, hal):
        self.pump = pump
        self.hal = hal
        self.occlusion = OcclusionDetector()
        self.catheter = CatheterDetector()
        self.motor = MotorDetector()
        self.battery = BatteryDetector()
        self.pre = [0] * board.PRE_STROKE_N
        self.capture = [0] * board.STROKE_CAPTURE_N
        self.window_buf = [0] * board.WINDOW_N
        self.to_window_ms = board.WINDOW_EVERY_MS
        self.pending_ms = 0          # elapsed time not yet given to the motor/battery supervision
        # charge events not yet given to the battery model (handed over with the elapsed time)
        self.pending_strokes = 0
        self.pending_wakeups = 0
        self.pending_samples = 0
        self.samples = 0
        self.chain_n = 0             # samples in the previous stroke's capture (0: no chain)
        self.chain_end = 0           # ticks_ms when that capture ended
        self.blind_at = None         # ticks_ms of the last blind stroke (None: line settled)
        self.strokes_made = 0
        self.retries = 0

    # -- time --------------------------------------------------------------------------------------
    def advance(self, elapsed_ms):
        # Motor supervision judges per completed minute and the battery model per day, so the
        # elapsed time and the charge events are handed over once a minute (cheap wake-ups and
        # strokes in between). Decision: a stroke is booked in the motor detector's bucket of the
        # minute being filled; its command and its feedback land in the same bucket, so the 15-min
        # over/under ratio is the same, and the battery model's daily figures move by <= 1 minute.
        self.to_window_ms -= elapsed_ms
        self.pending_ms += elapsed_ms
        if self.pending_ms >= board.SUPERVISION_TICK_MS:
            self._flush()

    def _flush(self):
        ms = self.pending_ms
        self.pending_ms = 0
        self._book_charge()
        self._apply(self.motor.advance(ms))
        ev = self.battery.advance(ms)        # advance() ends with check()
        if ev is not None:
            self._apply(ev)
            self._apply(self.battery.check())   # EOS first, then the ERI it implies
        self._battery_voltage()

    def _book_charge(self):
        bat = self.battery
        if self.pending_strokes:
            bat.note_strokes(self.pending_strokes)
            self.pending_strokes = 0
        if self.pending_wakeups:
            bat.note_wakeups(self.pending_wakeups)
            self.pending_wakeups = 0
        if self.pending_samples:
            bat.note_samples(self.pending_samples)
            self.pending_samples = 0

    def _battery_voltage(self):
        mv = self.hal.battery_mv()
        pump = self.pump
        if mv > board.BATTERY_ERI_MV + board.BATTERY_HYSTERESIS_MV and not pump.alarms.n_latched:
            return                   # the common case: nothing to raise, nothing to clear
        for code, limit in (("battery_eos", board.BATTERY_EOS_MV), ("battery_eri", board.BATTERY_ERI_MV)):
            if mv <= limit:
                pump.raise_alarm(code)
            elif mv > limit + board.BATTERY_HYSTERESIS_MV and pump.alarms.is_latched(code) \
                    and not (self.battery.eos if code == "battery_eos" else self.battery.eri):
                pump.clear_condition(code)

    def next_wake_ms(self):
        return self.to_window_ms if self.to_window_ms > 0 else 0

    def note_wakeup(self):
        self.pending_wakeups += 1

    # -- strokes -----------------------------------------------------------------------------------
    def stroke(self, next_stroke_ms):
        """Make one commanded stroke with supervision. Returns False when the motor stalled.

        next_stroke_ms: ms from now until the following stroke is due (bounds the post-stroke
        capture); 0 = more strokes are due right now (catching up after a blocking capture or a
        sensing window): the stroke is made "blind", without pre-stroke samples or a capture,
        and the chain of captures breaks, because back-to-back strokes leave the line pressurised
        and their pre-stroke level would read as an occlusion.
        Pre-stroke level: when the previous stroke's capture ended just now (strokes faster than
        a capture), the mean of its last PRE_STROKE_N samples is the pre-stroke level (the
        detector's back-to-back rule checks nothing decayed in between); otherwise PRE_STROKE_N
        fresh samples are taken."""
        hal = self.hal
        pump = self.pump
        if self.motor.stalled and not pump.alarms.is_latched("motor_stall"):
            self.motor.stalled = False   # acknowledged after service: a new stall alarms again
        blind = next_stroke_ms is not None and next_stroke_ms <= 0
        t_start = hal.ticks_ms()
        pre_pa = 0
        # after blind strokes the line is still pressurised for a few time constants: a fresh
        # pre-stroke level taken then is not a baseline, so that stroke only starts a new chain
        unsettled = self.blind_at is not None and \
            hal.ticks_diff(t_start, self.blind_at) < board.LINE_SETTLE_MS
        if not blind:
            pre_pa = self._chained_pre(t_start)
            if pre_pa is not None:
                unsettled = False
            else:
                pre = self.pre
                hal.read_pressure(pre, board.PRE_STROKE_N, board.SAMPLE_PERIOD_MS, 0)
                self._count_samples(board.PRE_STROKE_N)
                s = 0
                for i in range(board.PRE_STROKE_N):
                    s += pre[i]
                pre_pa = s // board.PRE_STROKE_N
        self.chain_n = 0
        self.motor.note_command(pump.stroke_nl)
        ok = hal.motor_stroke()
        verdict = self.motor.stroke_result(ok)
        if verdict == RETRY:
            self.retries += 1
            ok = hal.motor_stroke()
            verdict = self.motor.stroke_result(ok)
        self.pending_strokes += 1
        if ok:
            self.strokes_made += 1
            self.motor.note_feedback(pump.stroke_nl)
        self._apply(verdict)
        if blind:
            self.blind_at = hal.ticks_ms()
            return ok
        if not ok or not pump.motor_enabled():
            return ok
        # capture until the next stroke is due (all of the 2 s when it is further away)
        n = board.STROKE_CAPTURE_N
        if next_stroke_ms is not None:
            left = next_stroke_ms - hal.ticks_diff(hal.ticks_ms(), t_start)
            fit = left // board.SAMPLE_PERIOD_MS
            if fit < n:
                n = fit if fit >= board.PRE_STROKE_N else 0
        if n > 0:
            cap = self.capture
            occ = self.occlusion
            if n == board.STROKE_CAPTURE_N and not unsettled:
                # adaptive capture: 0.8 s decide a healthy stroke; the full 2 s only when the
                # decay looks suspicious (same verdict, 60 % fewer samples: battery)
                hal.read_pressure(cap, EARLY_N, board.SAMPLE_PERIOD_MS, 0)
                if occ.early_normal(pre_pa, cap):
                    taken = EARLY_N
                else:
                    hal.read_pressure(cap, n - EARLY_N, board.SAMPLE_PERIOD_MS, EARLY_N)
                    taken = n
            else:
                hal.read_pressure(cap, n, board.SAMPLE_PERIOD_MS, 0)
                taken = n
            self._count_samples(taken)
            if not unsettled:
                self._apply(occ.stroke(pre_pa, cap, n))
                self.catheter.note_stroke(self.occlusion.last_class)
                self.blind_at = None
            self.chain_n = taken
            self.chain_end = hal.ticks_ms()
        return ok

    def _chained_pre(self, now):
        """Mean of the last PRE_STROKE_N samples of the previous capture when it ended at most
        one sample period ago, else None."""
        n = self.chain_n
        if n < board.PRE_STROKE_N or self.hal.ticks_diff(now, self.chain_end) > board.SAMPLE_PERIOD_MS:
            return None
        s = 0
        buf = self.capture
        for i in range(n - board.PRE_STROKE_N, n):
            s += buf[i]
        return s // board.PRE_STROKE_N

    # -- sensing windows ---------------------------------------------------------------------------
    def window_due(self):
        return self.to_window_ms <= 0

    def sense(self):
        self.to_window_ms = board.WINDOW_EVERY_MS
        self.chain_n = 0
        self.hal.read_pressure(self.window_buf, board.WINDOW_N, board.SAMPLE_PERIOD_MS, 0)
        self._count_samples(board.WINDOW_N)
        cat = self.catheter
        self._apply(cat.window(self.window_buf, False))
        self._apply(self.occlusion.window(cat.baseline_pa, cat.pulsatile))

    # -- internals ---------------------------------------------------------------------------------
    def _count_samples(self, n):
        self.samples += n
        self.pending_samples += n

    def _apply(self, ev):
        if ev is None or ev == RETRY:
            return
        code, present = ev
        if present:
            self.pump.raise_alarm(code)
        else:
            self.pump.clear_condition(code)

    def state(self):
        self._book_charge()          # the persisted model includes every event so far
        return {"occlusion": self.occlusion.state(), "battery": self.battery.state()}

    def load(self, st):
        self.occlusion.load(st["occlusion"])
        self.battery.load(st["battery"])
