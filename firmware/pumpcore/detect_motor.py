# Motor supervision (issue 5): stall and over/under-infusion. Pure integer logic, no allocation in
# the step functions (the 15-minute history is a preallocated ring of 1-minute buckets).
#
# Stall.  The shell commands a stroke and waits for the motor's feedback pulse (encoder / end
# switch) within its own timeout, then calls stroke_result(feedback_seen):
#     feedback seen               -> None (fine; also resets the retry state)
#     1st missing feedback        -> RETRY: the shell makes ONE retry of the same stroke now
#     2nd consecutive missing     -> EV_STALL ("motor_stall", True): high priority, flow stops
# The stall clears (EV_STALL_CLEAR) at the next stroke whose feedback is seen (e.g. the
# clinician's test stroke after the pump was serviced).
#
# Over/under-infusion (GIP: > 110 % or < 90 % of the programmed rate for 15 min).
#     note_command(volume_nl)   volume the core commanded (each commanded stroke or retry counts
#                               once per distinct stroke: a retry is NOT a new command)
#     note_feedback(volume_nl)  volume the feedback says was moved (pulses x stroke volume, or a
#                               measured volume from a displacement sensor)
#     advance(elapsed_ms)       time passes; evaluated once per completed minute over the last
#                               15 minutes: over if delivered*100 > commanded*110, under if
#                               delivered*100 < commanded*90 (only when commanded > 0; with
#                               nothing commanded any delivery at all is over-infusion).
# The window must be full (15 min since reset) before a judgement; the alarm clears when a later
# 15-minute window is within bounds. One event per call; `over` / `under` expose the conditions.
# Bounds: a 15-min sum at the fastest bolus (a 250 nL stroke a second) is 225000 nL; x 110 fits.

import array

from pumpcore import reasons

STALL = reasons.MOTOR_STALL
OVER = reasons.OVER_INFUSION
UNDER = reasons.UNDER_INFUSION
EV_STALL = (STALL, True)
EV_STALL_CLEAR = (STALL, False)
EV_OVER = (OVER, True)
EV_OVER_CLEAR = (OVER, False)
EV_UNDER = (UNDER, True)
EV_UNDER_CLEAR = (UNDER, False)
RETRY = "retry"                 # returned by stroke_result: make one retry now

WINDOW_MIN = 15
MINUTE_MS = 60000
OVER_PCT = 110
UNDER_PCT = 90


class MotorDetector:
    def __init__(self):
        self.cmd_nl = array.array("i", [0] * WINDOW_MIN)
        self.fb_nl = array.array("i", [0] * WINDOW_MIN)
        self.reset()

    def reset(self) -> None:
        self.stalled = False
        self.misses = 0                 # consecutive missing feedbacks of the current stroke
        self.over = False
        self.under = False
        self.ms_in_minute = 0           # ms elapsed in the current bucket
        self.idx = 0                    # current bucket
        self.minutes = 0                # completed minutes since reset, capped at WINDOW_MIN
        self.cmd_sum = 0                # sums over the ring (kept with every change: O(1) minutes)
        self.fb_sum = 0
        i = 0
        while i < WINDOW_MIN:
            self.cmd_nl[i] = 0
            self.fb_nl[i] = 0
            i += 1

    # --- stall ----------------------------------------------------------------------------------
    def stroke_result(self, feedback_seen: bool):
        if feedback_seen:
            self.misses = 0
            if self.stalled:
                self.stalled = False
                return EV_STALL_CLEAR
            return None
        self.misses += 1
        if self.misses == 1:
            return RETRY
        self.misses = 0
        if not self.stalled:
            self.stalled = True
            return EV_STALL
        return None

    # --- over / under infusion ------------------------------------------------------------------
    def note_command(self, volume_nl: int) -> None:
        self.cmd_nl[self.idx] += volume_nl
        self.cmd_sum += volume_nl

    def note_feedback(self, volume_nl: int) -> None:
        self.fb_nl[self.idx] += volume_nl
        self.fb_sum += volume_nl

    def advance(self, elapsed_ms: int):
        """Time passes (0 <= elapsed_ms < 2**29). Returns None or one over/under event.
        A long gap closes at most WINDOW_MIN+1 buckets (older ones are zero anyway)."""
        ev = None
        self.ms_in_minute += elapsed_ms
        closes = 0
        while self.ms_in_minute >= MINUTE_MS:
            self.ms_in_minute -= MINUTE_MS
            ev2 = self._close_minute(ev is None)
            if ev2 is not None:
                ev = ev2
            closes += 1
            if closes > WINDOW_MIN:
                # nothing more can change: every bucket is empty; drop the rest of the gap
                self.ms_in_minute %= MINUTE_MS
        return ev

    def _close_minute(self, may_change: bool):
        # At most one condition changes per call (so no event is ever lost): a second change is
        # re-evaluated and reported at the next minute boundary.
        if self.minutes < WINDOW_MIN:
            self.minutes += 1
        ev = None
        if may_change and self.minutes >= WINDOW_MIN:
            cmd = self.cmd_sum
            fb = self.fb_sum
            over = fb * 100 > cmd * OVER_PCT
            under = cmd > 0 and fb * 100 < cmd * UNDER_PCT
            if over != self.over:
                self.over = over
                ev = EV_OVER if over else EV_OVER_CLEAR
            elif under != self.under:
                self.under = under
                ev = EV_UNDER if under else EV_UNDER_CLEAR
        self.idx += 1
        if self.idx >= WINDOW_MIN:
            self.idx = 0
        self.cmd_sum -= self.cmd_nl[self.idx]
        self.fb_sum -= self.fb_nl[self.idx]
        self.cmd_nl[self.idx] = 0
        self.fb_nl[self.idx] = 0
        return ev
