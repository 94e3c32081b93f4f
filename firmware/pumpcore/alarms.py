# The alarm manager: catalogue, priorities (IEC 60601-1-8 high/medium/low), latching,
# acknowledge, silence, escalation, and the tone/LED intent the shell plays.
#
# Contract
# - Detectors (and the Pump facade) call `raise_(code, now_s)` when a condition is present and
#   `condition_gone(code, now_s)` when it has gone. An alarm LATCHES: it stays active until it has
#   been acknowledged AND its condition has gone (then it clears).
# - `ack(code, now_s)` acknowledges one alarm (code None: every active one).
# - `silence(now_s)` mutes the tone of every active alarm for SILENCE_S (120 s, GIP: re-activates
#   within <= 2 min); there is no way to disable an alarm permanently.
# - Escalation: a medium alarm left unacknowledged for ESCALATE_MEDIUM_S sounds with the high
#   pattern; a low one for ESCALATE_LOW_S sounds with the medium pattern. Priority for the gates
#   does not change (only the tone), so escalation can never relax a safety check.
# - Time is the monotonic clock in whole seconds (`now_s`), supplied by the facade.
# - Every raise/ack/silence/clear/escalation is appended to `events` as a tuple
#   (kind, code, priority_name) for the facade to log and report; the facade drains it.
# - Storage is preallocated per catalogue entry: no allocation when nothing changes.

from pumpcore import reasons as R

LOW = 1
MEDIUM = 2
HIGH = 3
PRIORITY_NAMES = (None, "low", "medium", "high")

# What the pump does when the alarm is raised (decisions and reasons: docs/safety.md).
CONTINUE = 0     # flow continues (alerts; conditions where stopping is the greater harm)
STOP = 1         # flow stops at once (mid-stroke), state alarm_stop
SAFE = 2         # flow stops, state safe_state (needs a clinician's verified program)

# alarm codes: the detectors' codes are defined once in reasons.py; the rest are the core's own
OCCLUSION = R.OCCLUSION
DISLODGEMENT = R.DISLODGEMENT
LEAK = R.LEAK
MOTOR_STALL = R.MOTOR_STALL
OVER_INFUSION = R.OVER_INFUSION
UNDER_INFUSION = R.UNDER_INFUSION
BATTERY_ERI = R.BATTERY_ERI
BATTERY_EOS = R.BATTERY_EOS
RESERVOIR_EMPTY = R.RESERVOIR_EMPTY
RESERVOIR_LOW = "reservoir_low"
SELF_TEST = "self_test"
STATE_LOST = "state_lost"
FAULT = "fault"
DOSE_LIMIT_HOLD = R.DOSE_LIMIT_HOLD
UNEXPECTED_RESET = R.UNEXPECTED_RESET
WATCHDOG_RESET = R.WATCHDOG_RESET
RESET_LOOP = R.RESET_LOOP

# code, priority, action
CATALOGUE = (
    (OCCLUSION, HIGH, STOP),
    (MOTOR_STALL, HIGH, STOP),
    (OVER_INFUSION, HIGH, STOP),
    (RESERVOIR_EMPTY, HIGH, STOP),
    (BATTERY_EOS, HIGH, STOP),
    (DISLODGEMENT, HIGH, CONTINUE),
    (LEAK, HIGH, CONTINUE),
    (SELF_TEST, HIGH, SAFE),
    (STATE_LOST, HIGH, SAFE),
    (FAULT, HIGH, SAFE),
    (RESET_LOOP, HIGH, SAFE),
    (UNDER_INFUSION, MEDIUM, CONTINUE),
    (BATTERY_ERI, MEDIUM, CONTINUE),
    (DOSE_LIMIT_HOLD, MEDIUM, CONTINUE),
    (WATCHDOG_RESET, MEDIUM, CONTINUE),
    (RESERVOIR_LOW, LOW, CONTINUE),
    (UNEXPECTED_RESET, LOW, CONTINUE),
)
CODES = tuple(row[0] for row in CATALOGUE)

# Alarms whose condition is an event, not a measurement the pump can repeat while stopped: a motor
# stall is "a commanded stroke and its retry gave no feedback". Acknowledging it (a clinician who
# has serviced the pump) ends the condition; if the motor is still stalled the next stroke after a
# restart raises it again.
ACK_CLEARS = (MOTOR_STALL,)

SILENCE_S = 120
ESCALATE_MEDIUM_S = 15 * 60
ESCALATE_LOW_S = 60 * 60

# Tone patterns (IEC 60601-1-8 practice, DOMAIN.md): (bursts, tones per burst, repeat every s).
TONES = {
    "high": (2, 5, 10),      # two bursts of five tones, repeated every 10 s
    "medium": (1, 3, 30),    # three tones every 30 s
    "low": (1, 2, 120),      # two tones every 2 min
}
# LED patterns: (colour, on_ms, off_ms)
LEDS = {
    "high": ("red", 250, 250),
    "medium": ("yellow", 500, 1500),
    "low": ("yellow", 1000, 0),
}

_NEVER = -1


def priority_of(code):
    """Priority (LOW/MEDIUM/HIGH) of an alarm code, or 0 for an unknown code."""
    for row in CATALOGUE:
        if row[0] == code:
            return row[1]
    return 0


def action_of(code):
    for row in CATALOGUE:
        if row[0] == code:
            return row[2]
    return CONTINUE


class AlarmManager:
    def __init__(self):
        n = len(CATALOGUE)
        self.condition = [False] * n     # the detector says the condition is present now
        self.latched = [False] * n       # raised and not yet cleared
        self.acked = [False] * n
        self.raised_s = [_NEVER] * n     # monotonic second of the (latest) raise
        self.silenced_until_s = _NEVER
        self.escalated = [False] * n
        self.n_latched = 0               # how many latched[] are True (the common case is 0: the
        #                                  queries return at once; kept by _latch/_unlatch only)
        self.events = []

    # -- inputs ----------------------------------------------------------------------------------
    def raise_(self, code, now_s):
        """The condition `code` is present. Returns True when this newly raises the alarm."""
        i = self._index(code)
        if i < 0:
            return False
        self.condition[i] = True
        if self.latched[i] and not self.acked[i]:
            return False
        if self.latched[i] and self.acked[i]:
            # acknowledged but still present: stays latched and acknowledged (no nagging).
            return False
        self._latch(i)
        self.acked[i] = False
        self.escalated[i] = False
        self.raised_s[i] = now_s
        self.events.append(("alarm_raised", code, PRIORITY_NAMES[CATALOGUE[i][1]]))
        return True

    def condition_gone(self, code, now_s):
        i = self._index(code)
        if i < 0 or not self.condition[i]:
            return
        self.condition[i] = False
        self._clear_if_done(i)

    def ack(self, code, now_s):
        """Acknowledge `code` (None: every active alarm). Returns reasons.OK or UNKNOWN_ALARM."""
        done = False
        for i in range(len(CATALOGUE)):
            if not self.latched[i] or (code is not None and CATALOGUE[i][0] != code):
                continue
            done = True
            if not self.acked[i]:
                self.acked[i] = True
                self.events.append(("alarm_acknowledged", CATALOGUE[i][0],
                                    PRIORITY_NAMES[CATALOGUE[i][1]]))
            if CATALOGUE[i][0] in ACK_CLEARS:
                self.condition[i] = False
            self._clear_if_done(i)
        if done:
            return R.OK
        return R.UNKNOWN_ALARM

    def silence(self, now_s):
        """Mute tones for SILENCE_S seconds. Returns reasons.OK, or UNKNOWN_ALARM if none sound."""
        if not self.any_latched():
            return R.UNKNOWN_ALARM
        self.silenced_until_s = now_s + SILENCE_S
        self.events.append(("alarm_silenced", "all", None))
        return R.OK

    def tick(self, now_s):
        """Advance escalation timers. Call when time passes (cheap; allocates only on change)."""
        if not self.n_latched:
            return
        for i in range(len(CATALOGUE)):
            at = self._escalates_at(i)
            if at is not None and now_s >= at:
                self.escalated[i] = True
                self.events.append(("alarm_escalated", CATALOGUE[i][0],
                                    PRIORITY_NAMES[CATALOGUE[i][1] + 1]))

    def _escalates_at(self, i):
        """Monotonic second at which alarm i escalates, or None (not latched, acknowledged,
        already escalated, or high priority)."""
        if not self.latched[i] or self.acked[i] or self.escalated[i]:
            return None
        prio = CATALOGUE[i][1]
        if prio == MEDIUM:
            return self.raised_s[i] + ESCALATE_MEDIUM_S
        if prio == LOW:
            return self.raised_s[i] + ESCALATE_LOW_S
        return None

    def s_to_next_change(self, now_s):
        """Whole seconds from now_s until the tone can next change by itself (a silence ends or
        an unacknowledged medium/low alarm escalates), 0 if due now, None if nothing is pending.
        The shell wakes at that second (escalation and silence need no polling in between)."""
        if not self.n_latched:
            return None
        best = None
        if self.silenced_until_s > now_s:
            best = self.silenced_until_s - now_s
        for i in range(len(CATALOGUE)):
            at = self._escalates_at(i)
            if at is None:
                continue
            left = at - now_s
            if left < 0:
                left = 0
            if best is None or left < best:
                best = left
        return best

    # -- queries ---------------------------------------------------------------------------------
    def is_latched(self, code):
        if not self.n_latched:
            return False
        i = self._index(code)
        return i >= 0 and self.latched[i]

    def any_latched(self):
        return self.n_latched > 0

    def blocks_bolus(self):
        """True when a bolus must be refused: an unacknowledged medium/high alarm, or a high alarm
        whose condition is still present (acknowledging does not make a present hazard go away)."""
        if not self.n_latched:
            return False
        for i in range(len(CATALOGUE)):
            if not self.latched[i]:
                continue
            prio = CATALOGUE[i][1]
            if prio >= MEDIUM and not self.acked[i]:
                return True
            if prio == HIGH and self.condition[i]:
                return True
        return False

    def stopping_latched(self):
        """True while an alarm whose action stops flow is latched (keeps alarm_stop)."""
        if not self.n_latched:
            return False
        for i in range(len(CATALOGUE)):
            if self.latched[i] and CATALOGUE[i][2] != CONTINUE:
                return True
        return False

    def safe_latched(self):
        """True while an alarm whose action is the safe state is latched."""
        if not self.n_latched:
            return False
        for i in range(len(CATALOGUE)):
            if self.latched[i] and CATALOGUE[i][2] == SAFE:
                return True
        return False

    def active(self):
        """List of [code, priority_name, acknowledged, condition_present, raised_s] (allocates)."""
        out = []
        for i in range(len(CATALOGUE)):
            if self.latched[i]:
                out.append([CATALOGUE[i][0], PRIORITY_NAMES[CATALOGUE[i][1]], self.acked[i],
                            self.condition[i], self.raised_s[i]])
        return out

    def sounding(self, now_s):
        """Name of the tone/LED pattern to play now ("high"/"medium"/"low") or None.
        Acknowledged alarms are quiet; silence mutes for SILENCE_S; escalation raises the tone."""
        if not self.n_latched or now_s < self.silenced_until_s:
            return None
        best = 0
        for i in range(len(CATALOGUE)):
            if self.latched[i] and not self.acked[i]:
                p = CATALOGUE[i][1]
                if self.escalated[i]:
                    p += 1
                if p > best:
                    best = p
        if best == 0:
            return None
        return PRIORITY_NAMES[best]

    # -- persistence -----------------------------------------------------------------------------
    def snapshot(self):
        return [[CATALOGUE[i][0], self.condition[i], self.acked[i], self.raised_s[i]]
                for i in range(len(CATALOGUE)) if self.latched[i]]

    def restore(self, rows, now_s):
        """Re-latch alarms from a snapshot (raised again as events so they are reported)."""
        for row in rows:
            i = self._index(row[0])
            if i < 0:
                continue
            self._latch(i)
            self.condition[i] = bool(row[1])
            self.acked[i] = bool(row[2])
            self.raised_s[i] = row[3]

    # -- internals -------------------------------------------------------------------------------
    def _index(self, code):
        for i in range(len(CATALOGUE)):
            if CATALOGUE[i][0] == code:
                return i
        return -1

    def _latch(self, i):
        if not self.latched[i]:
            self.latched[i] = True
            self.n_latched += 1

    def _unlatch(self, i):
        if self.latched[i]:
            self.latched[i] = False
            self.n_latched -= 1

    def _clear_if_done(self, i):
        if self.latched[i] and self.acked[i] and not self.condition[i]:
            self._unlatch(i)
            self.acked[i] = False
            self.escalated[i] = False
            self.events.append(("alarm_cleared", CATALOGUE[i][0], PRIORITY_NAMES[CATALOGUE[i][1]]))
