# Boluses as a rate component: a bolus is volume_nl over duration_ms, delivered as an integer rate
# (nL/h) ADDED to the basal by the facade (the basal is never changed by a bolus; GIP "a bolus
# does not change the programmed basal"). It ends exactly when its own delivered volume reaches
# volume_nl.
#
# Units: volume nL, time ms, rate nL/h. Event time (start, end) may allocate; Bolus.advance and
# BolusArbiter.advance (while nothing ends) are allocation-free.
#
# Rate and end (exactness):
#   rate_nl_per_h = floor(volume_nl * 3_600_000 / duration_ms), computed once at start without big
#   ints (delivery.mul_div). The bolus tracks its own delivered volume with an exact remainder (a
#   DeliveryEngine with a 1 nL "stroke": every whole nL is counted, the fraction kept in nL*ms/h).
#   It ends at the first ms at which delivered >= volume_nl, so:
#     - its integral at the end is volume_nl + e, 0 <= e < rate/3.6e6 nL (< 1 nL below 3.6 mL/h);
#     - it runs ceil(volume*3.6e6/rate) ms: duration_ms plus less than duration_ms/rate ms.
#   The facade learns the end from ms_to_end() (part of next_wake) and must not advance past it.
#
# Precedence and overlap (docs/delivery.md): patient > clinician/periodic > basal (GPCA arbiter).
#   AT MOST ONE bolus is active at a time, on top of the basal.
#   - patient or clinician request while any bolus is active: refused BOLUS_ACTIVE (the patient gate
#     order is in reasons.PATIENT_BOLUS_DENIALS; the clinician may cancel() and retry).
#   - "bridge" and "prime" requests while a bolus is active: refused BOLUS_ACTIVE.
#   - a periodic bolus falling due while another bolus is active (e.g. a patient bolus) is QUEUED
#     (FIFO, at most MAX_PENDING) and starts the moment the active one ends: the programmed daily
#     periodic volume is still delivered, never two boluses at once (bounded peak rate). A periodic
#     due when the queue is full is SKIPPED (BOLUS_SKIPPED; the facade logs it). Skipping can only
#     under-deliver.
#   - cancel() (errors, alarms, stop: GIP "an active bolus is cancelled on error") ends the active
#     bolus where it is; clear_pending() drops queued periodic boluses (the facade decides when).

from pumpcore import reasons
from pumpcore.delivery import MAX_RATE_NL_PER_H, MS_PER_HOUR, DeliveryEngine, mul_div, mul_mod

PATIENT = "patient"
CLINICIAN = "clinician"
PERIODIC = "periodic"
BRIDGE = "bridge"
PRIME = "prime"
KINDS = (PATIENT, CLINICIAN, PERIODIC, BRIDGE, PRIME)

MAX_PENDING = 4
MAX_BOLUS_DURATION_MS = 536_870_911  # < 2**29 (~6.2 days; a slow bridge bolus). Prescriptions are
# limited further by pumpcore.prescription (periodic/patient/clinician <= 24 h).


def bolus_rate_nl_per_h(volume_nl, duration_ms):
    """floor(volume_nl * 3.6e6 / duration_ms) (no big ints). Raises ValueError on a bad bolus."""
    if not isinstance(volume_nl, int) or isinstance(volume_nl, bool) or volume_nl <= 0:
        raise ValueError("volume_nl must be a positive int")
    if not isinstance(duration_ms, int) or isinstance(duration_ms, bool):
        raise ValueError("duration_ms must be an int")  # noqa: TRY004 (one error type for the facade)
    if duration_ms <= 0 or duration_ms > MAX_BOLUS_DURATION_MS:
        raise ValueError("duration_ms out of range")
    if volume_nl > mul_div(MAX_RATE_NL_PER_H, duration_ms, MS_PER_HOUR) + 1:
        raise ValueError("bolus rate too high")
    rate = mul_div(volume_nl, MS_PER_HOUR, duration_ms)
    if rate < 1 or rate > MAX_RATE_NL_PER_H:
        raise ValueError("bolus rate out of range")
    return rate


class Bolus:
    """One bolus. Fields: kind, volume_nl, duration_ms, rate_nl_per_h, delivered_nl (whole nL
    delivered so far, <= volume_nl), elapsed_ms (capped at 2**29), done (bool)."""

    def __init__(self, kind, volume_nl, duration_ms):
        if kind not in KINDS:
            raise ValueError("unknown bolus kind")
        self.kind = kind
        self.volume_nl = volume_nl
        self.duration_ms = duration_ms
        self.rate_nl_per_h = bolus_rate_nl_per_h(volume_nl, duration_ms)
        self._eng = DeliveryEngine(1)  # 1 nL "strokes": whole nL delivered, exact remainder
        self._eng.set_rate(self.rate_nl_per_h)
        self.delivered_nl = 0
        self.elapsed_ms = 0
        self.done = False

    def advance(self, elapsed_ms):
        """Account elapsed_ms of delivery at this bolus's rate. Returns True when it has ended.

        Allocation-free. Advancing past ms_to_end() is tolerated: delivered_nl is capped at
        volume_nl (the facade should not do it: the total rate it ran was too high for the excess).
        """
        if self.done:
            return True
        d = self.delivered_nl + self._eng.advance(elapsed_ms)
        if self.elapsed_ms < 536_870_912:
            self.elapsed_ms += elapsed_ms
        if d >= self.volume_nl:
            d = self.volume_nl
            self.done = True
        self.delivered_nl = d
        return self.done

    def remaining_nl(self):
        return self.volume_nl - self.delivered_nl

    def ms_to_end(self):
        """ms until delivered reaches volume_nl at this rate (ceil); 0 when done."""
        if self.done:
            return 0
        rem = self.volume_nl - self.delivered_nl
        r = self.rate_nl_per_h
        q = mul_div(rem, MS_PER_HOUR, r)
        m = mul_mod(rem, MS_PER_HOUR, r)
        # ceil((rem*3.6e6 - frac) / r) = q + ceil((m - frac) / r)
        t = q - ((self._eng.frac - m) // r)
        return max(0, t)

    def as_dict(self):
        return {"kind": self.kind, "volume_nl": self.volume_nl, "duration_ms": self.duration_ms,
                "rate_nl_per_h": self.rate_nl_per_h, "delivered_nl": self.delivered_nl,
                "elapsed_ms": self.elapsed_ms, "done": self.done}


class BolusArbiter:
    """At most one active bolus plus a FIFO of deferred periodic boluses (see module comment).

    The facade: request()/due_periodic() at events, rate_nl_per_h() added to the basal when it
    sets the DeliveryEngine rate, ms_to_end() in next_wake, advance() every step, cancel() on
    errors.
    """

    def __init__(self, max_pending=MAX_PENDING):
        self.active = None
        self.max_pending = max_pending
        self._pending = []  # [(volume_nl, duration_ms)] of deferred periodic boluses
        self.finished = None  # the last Bolus that ended (delivered or cancelled)

    def request(self, kind, volume_nl, duration_ms):
        """Start a bolus now. Returns (code, bolus): OK, BOLUS_ACTIVE or BAD_VALUE.

        Periodic boluses should use due_periodic() (they queue instead of being refused).
        """
        if kind not in KINDS:
            return reasons.BAD_VALUE, None
        if self.active is not None:
            return reasons.BOLUS_ACTIVE, None
        try:
            b = Bolus(kind, volume_nl, duration_ms)
        except ValueError:
            return reasons.BAD_VALUE, None
        self.active = b
        return reasons.OK, b

    def due_periodic(self, volume_nl, duration_ms):
        """A periodic bolus falls due. Returns (code, bolus_or_None):
        (OK, bolus) started now; (BOLUS_QUEUED, None) deferred behind the active bolus;
        (BOLUS_SKIPPED, None) the queue was full; (BAD_VALUE, None)."""
        try:
            bolus_rate_nl_per_h(volume_nl, duration_ms)
        except ValueError:
            return reasons.BAD_VALUE, None
        if self.active is None:
            return self.request(PERIODIC, volume_nl, duration_ms)
        if len(self._pending) >= self.max_pending:
            return reasons.BOLUS_SKIPPED, None
        self._pending.append((volume_nl, duration_ms))
        return reasons.BOLUS_QUEUED, None

    def pending_count(self):
        return len(self._pending)

    def clear_pending(self):
        """Drop deferred periodic boluses; returns how many were dropped."""
        n = len(self._pending)
        self._pending = []
        return n

    def rate_nl_per_h(self):
        """Rate of the active bolus (0 when none): the facade adds it to the basal."""
        b = self.active
        return 0 if b is None else b.rate_nl_per_h

    def ms_to_end(self):
        """ms until the active bolus ends, or None when no bolus is active."""
        b = self.active
        return None if b is None else b.ms_to_end()

    def advance(self, elapsed_ms):
        """Advance the active bolus. Returns the Bolus that ended in this step (and starts the next
        queued periodic one, event time), else None. The rate changes when this returns non-None."""
        b = self.active
        if b is None:
            return None
        if not b.advance(elapsed_ms):
            return None
        self.finished = b
        self.active = None
        if self._pending:
            volume_nl, duration_ms = self._pending.pop(0)
            self.request(PERIODIC, volume_nl, duration_ms)
        return b

    def cancel(self):
        """Cancel the active bolus (keeps what it delivered). Returns it, or None if none."""
        b = self.active
        if b is None:
            return None
        b.done = True
        self.active = None
        self.finished = b
        return b
