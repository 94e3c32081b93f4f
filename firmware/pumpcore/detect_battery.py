# Battery supervision by a consumption model (issue 5): ERI (elective replacement indicator,
# medium priority) and EOS (end of service, high priority: flow stops). Primary cell, so both
# latch until reset() (a new cell means a new pump in practice). No allocation in the step
# functions (the daily-usage history is a preallocated ring).
#
# Charge bookkeeping: consumed charge in uAh, with the remainder kept in nAs (= uA*ms;
# 1 uAh = 3 600 000 nAs), so nothing is ever dropped.
# Model figures (research defaults = the emulator plant's BatteryParams, so the model and the
# plant agree; documented in docs/detectors.md; all overridable):
#   capacity          2 400 000 uAh (2.4 Ah Li-SOCl2 AA-size primary cell)
#   sleep current     10 uA, always
#   stroke            60 mA for 50 ms  = 3 000 000 nAs (0.83 uAh)
#   wake-up           20 mA for 5 ms   =   100 000 nAs
#   sensor sample     5 uC             =     5 000 nAs (sensing windows and stroke captures)
#   -> ~2.2 mAh/day at 0.5 mL/day (2000 strokes): ~3 years of service.
# Inputs: note_strokes(n), note_wakeups(n), note_samples(n) as they happen; advance(elapsed_ms)
# adds the sleep current and closes days (86 400 000 ms of monotonic time).
# Usage "at the current usage" = mean consumption of the last completed days (up to 7); unknown
# (None: no model ERI) until the first whole day of history has completed: a day's consumption is
# never extrapolated from part of it (an hour of unusual activity must not raise ERI). The cell
# voltage backstop (pumpfw.supervisor) covers the first day.
# EOS  when remaining <= eos_reserve_uah (default 2 % of capacity: the cell must still be able to
#      alarm and hold state after flow has stopped).
# ERI  when remaining - eos_reserve_uah <= 90 days of usage (so ERI comes >= 90 days before EOS at
#      the current usage).
# Outputs: None, EV_ERI ("battery_eri", True) or EV_EOS ("battery_eos", True); one per call (if
# both become due together, EOS is returned first and ERI at the next call).

import array

from pumpcore import reasons

ERI = reasons.BATTERY_ERI
EOS = reasons.BATTERY_EOS
EV_ERI = (ERI, True)
EV_EOS = (EOS, True)

DAY_MS = 86400000
HOUR_MS = 3600000
NAS_PER_UAH = 3600000
ERI_DAYS = 90
HISTORY_DAYS = 7


class BatteryDetector:
    def __init__(self, capacity_uah: int = 2400000, eos_reserve_uah=None, sleep_ua: int = 10,
                 stroke_nas: int = 3000000, wake_nas: int = 100000, sample_nas: int = 5000):
        # capacity_uah < 2**30; each per-event charge <= 10 000 000 nAs (10 mC).
        self.capacity_uah = capacity_uah
        if eos_reserve_uah is None:
            eos_reserve_uah = capacity_uah // 50
        self.eos_reserve_uah = eos_reserve_uah
        self.sleep_ua = sleep_ua
        self.stroke_nas = stroke_nas
        self.wake_nas = wake_nas
        self.sample_nas = sample_nas
        self.days_uah = array.array("i", [0] * HISTORY_DAYS)
        self.reset()

    def reset(self) -> None:
        """A fresh cell."""
        self.consumed_uah = 0
        self.rem_nas = 0
        self.today_uah = 0
        self.ms_in_day = 0
        self.days_recorded = 0      # completed days in the ring (<= HISTORY_DAYS)
        self.day_idx = 0
        self.eri = False
        self.eos = False
        i = 0
        while i < HISTORY_DAYS:
            self.days_uah[i] = 0
            i += 1

    # --- charge -----------------------------------------------------------------------------------
    def _add_nas(self, nas: int) -> None:
        r = self.rem_nas + nas
        if r >= NAS_PER_UAH:
            q = r // NAS_PER_UAH
            r -= q * NAS_PER_UAH
            self.consumed_uah += q
            self.today_uah += q
        self.rem_nas = r

    def _add_events(self, n: int, nas_each: int) -> None:
        # chunks of 100 events keep n * nas_each < 2**30 for charges up to 10 mC each
        while n > 100:
            self._add_nas(100 * nas_each)
            n -= 100
        if n > 0:
            self._add_nas(n * nas_each)

    def note_strokes(self, n: int) -> None:
        self._add_events(n, self.stroke_nas)

    def note_wakeups(self, n: int) -> None:
        self._add_events(n, self.wake_nas)

    def note_samples(self, n: int) -> None:
        self._add_events(n, self.sample_nas)

    def _sleep(self, ms: int) -> None:
        h = ms // HOUR_MS
        if h:
            self.consumed_uah += h * self.sleep_ua
            self.today_uah += h * self.sleep_ua
        self._add_nas((ms - h * HOUR_MS) * self.sleep_ua)

    def _close_day(self) -> None:
        self.days_uah[self.day_idx] = self.today_uah
        self.day_idx += 1
        if self.day_idx >= HISTORY_DAYS:
            self.day_idx = 0
        if self.days_recorded < HISTORY_DAYS:
            self.days_recorded += 1
        self.today_uah = 0
        self.ms_in_day = 0

    # --- outputs ----------------------------------------------------------------------------------
    def remaining_uah(self) -> int:
        r = self.capacity_uah - self.consumed_uah
        return max(0, r)

    def usage_uah_per_day(self):
        """Current usage in uAh/day (mean of the completed days, up to 7), or None before the
        first whole day has completed."""
        if self.days_recorded == 0:
            return None
        s = 0
        i = 0
        while i < self.days_recorded:
            s += self.days_uah[i]
            i += 1
        return s // self.days_recorded

    def days_to_eos(self):
        """Days of service left before EOS at the current usage (None when usage unknown or 0)."""
        u = self.usage_uah_per_day()
        if not u:
            return None
        left = self.remaining_uah() - self.eos_reserve_uah
        return left // u if left > 0 else 0

    def advance(self, elapsed_ms: int):
        """Time passes (0 <= elapsed_ms < 2**29). Returns None, EV_EOS or EV_ERI."""
        while elapsed_ms > 0:
            chunk = DAY_MS - self.ms_in_day
            chunk = min(chunk, elapsed_ms)
            self._sleep(chunk)
            self.ms_in_day += chunk
            elapsed_ms -= chunk
            if self.ms_in_day >= DAY_MS:
                self._close_day()
        return self.check()

    def check(self):
        remaining = self.remaining_uah()
        if not self.eos and remaining <= self.eos_reserve_uah:
            self.eos = True
            return EV_EOS
        if not self.eri:
            u = self.usage_uah_per_day()
            if self.eos or (u is not None and remaining - self.eos_reserve_uah <= ERI_DAYS * u):
                self.eri = True
                return EV_ERI
        return None

    # --- persistence ------------------------------------------------------------------------------
    def state(self) -> dict:
        days = []
        i = 0
        while i < HISTORY_DAYS:
            days.append(self.days_uah[i])
            i += 1
        return {"consumed_uah": self.consumed_uah, "rem_nas": self.rem_nas,
                "today_uah": self.today_uah, "ms_in_day": self.ms_in_day,
                "days_uah": days, "days_recorded": self.days_recorded, "day_idx": self.day_idx,
                "eri": self.eri, "eos": self.eos}

    def load(self, st: dict) -> None:
        """Restore a state() dict (raises KeyError/TypeError/ValueError when malformed)."""
        self.reset()
        days = st["days_uah"]
        if len(days) != HISTORY_DAYS:
            raise ValueError("days_uah")
        for k in ("consumed_uah", "rem_nas", "today_uah", "ms_in_day", "days_recorded", "day_idx"):
            v = st[k]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(k)
        if st["rem_nas"] >= NAS_PER_UAH or st["ms_in_day"] >= DAY_MS:
            raise ValueError("range")
        if st["days_recorded"] > HISTORY_DAYS or st["day_idx"] >= HISTORY_DAYS:
            raise ValueError("range")
        self.consumed_uah = st["consumed_uah"]
        self.rem_nas = st["rem_nas"]
        self.today_uah = st["today_uah"]
        self.ms_in_day = st["ms_in_day"]
        self.days_recorded = st["days_recorded"]
        self.day_idx = st["day_idx"]
        i = 0
        while i < HISTORY_DAYS:
            self.days_uah[i] = int(days[i])
            i += 1
        self.eri = st["eri"] is True
        self.eos = st["eos"] is True
