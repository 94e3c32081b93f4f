# Drug reservoir: remaining volume, capacity, low-alert and empty thresholds.
#
# Units: volume nL, rate nL/h, time ms (or minutes for long horizons).
# Levels (GIP, DOMAIN.md): "low" = alert, flow continues; "empty" = alarm and stop.
#   remaining <= empty_nl        -> LEVEL_EMPTY
#   remaining <= low_alert_nl    -> LEVEL_LOW
#   otherwise                    -> LEVEL_OK
#   The thresholds are the prescription's ("reservoir" in the rx dict); the empty threshold is above
#   0 because a reservoir cannot be drawn completely dry (SynchroMed/Prometra keep a residual).
# Times to a threshold (ms_to / minutes_to) are recomputed by the facade at every rate change and
# at the start of every bolus (GIP; Prometra "next refill" date). They are computed exactly without
# big ints (delivery.mul_div).
# draw() is allocation-free (called for every stroke).

from pumpcore.delivery import MS_PER_HOUR, ceil_mul_div

LEVEL_OK = "ok"
LEVEL_LOW = "low"
LEVEL_EMPTY = "empty"

MAX_CAPACITY_NL = 40_000_000
MS_CAP = 536_870_911  # ms_to() never returns more than this (< 2**29: a ticks_diff-sized value)


class Reservoir:
    """Fields: capacity_nl, low_alert_nl, empty_nl, remaining_nl, drawn_nl (nL drawn since the last
    refill; < capacity so a small int)."""

    def __init__(self, capacity_nl, low_alert_nl, empty_nl, fill_nl=0):
        if not (0 < capacity_nl <= MAX_CAPACITY_NL):
            raise ValueError("capacity_nl out of range")
        self.capacity_nl = capacity_nl
        self.low_alert_nl = 0
        self.empty_nl = 0
        self.set_thresholds(low_alert_nl, empty_nl)
        self.remaining_nl = 0
        self.drawn_nl = 0
        self.refill(fill_nl)

    def set_thresholds(self, low_alert_nl, empty_nl):
        if not (0 <= empty_nl < low_alert_nl < self.capacity_nl):
            raise ValueError("need 0 <= empty < low_alert < capacity")
        self.low_alert_nl = low_alert_nl
        self.empty_nl = empty_nl

    def refill(self, fill_nl):
        """The reservoir now holds fill_nl (old content aspirated, new fill injected)."""
        if not (0 <= fill_nl <= self.capacity_nl):
            raise ValueError("fill_nl out of range")
        self.remaining_nl = fill_nl
        self.drawn_nl = 0

    def draw(self, volume_nl):
        """Take volume_nl out (a stroke). Returns nL actually drawn (less only when running dry)."""
        r = self.remaining_nl
        v = min(r, volume_nl)
        self.remaining_nl = r - v
        self.drawn_nl += v
        return v

    def level(self):
        r = self.remaining_nl
        if r <= self.empty_nl:
            return LEVEL_EMPTY
        if r <= self.low_alert_nl:
            return LEVEL_LOW
        return LEVEL_OK

    def is_empty(self):
        return self.remaining_nl <= self.empty_nl

    def is_low(self):
        return self.remaining_nl <= self.low_alert_nl

    def ms_to(self, threshold_nl, rate_nl_per_h):
        """ms until remaining reaches threshold_nl at rate (ceil of the exact integral): 0 if
        already at/below; None if rate is 0; capped at MS_CAP (use minutes_to for long horizons)."""
        gap = self.remaining_nl - threshold_nl
        if gap <= 0:
            return 0
        if rate_nl_per_h <= 0:
            return None
        # gap * 3.6e6 / rate > MS_CAP  <=>  gap > MS_CAP * rate / 3.6e6 (checked without big ints)
        if gap > ceil_mul_div(MS_CAP, rate_nl_per_h, MS_PER_HOUR):
            return MS_CAP
        t = ceil_mul_div(gap, MS_PER_HOUR, rate_nl_per_h)
        return min(MS_CAP, t)

    def minutes_to(self, threshold_nl, rate_nl_per_h):
        """Whole minutes until remaining reaches threshold_nl at rate (floor: reported early, never
        late); 0 if already at/below; None if rate 0."""
        gap = self.remaining_nl - threshold_nl
        if gap <= 0:
            return 0
        if rate_nl_per_h <= 0:
            return None
        # gap * 60 / rate: gap < 4e7 so gap * 60 < 2.4e9 -> split to stay small.
        return (gap // rate_nl_per_h) * 60 + ((gap % rate_nl_per_h) * 60) // rate_nl_per_h

    def ms_to_low(self, rate_nl_per_h):
        return self.ms_to(self.low_alert_nl, rate_nl_per_h)

    def ms_to_empty(self, rate_nl_per_h):
        return self.ms_to(self.empty_nl, rate_nl_per_h)

    def snapshot(self):
        return {"remaining_nl": self.remaining_nl, "drawn_nl": self.drawn_nl}

    def restore(self, snap):
        r = snap["remaining_nl"]
        if not (0 <= r <= self.capacity_nl):
            raise ValueError("bad reservoir snapshot")
        self.remaining_nl = r
        self.drawn_nl = snap["drawn_nl"]
