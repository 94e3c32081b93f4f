# Time without big ints: every point in time is a (day, ms_of_day) pair.
#
# Contract
# - `day` counts days since 2000-01-01 (day 0, a Saturday); `ms_of_day` is in [0, MS_PER_DAY).
# - No value computed here on the steady-state path reaches 2**30 (the Pico's small-int range):
#   ms_of_day < 86_400_000 and callers pass delta_ms < 2**29 (what ticks_diff can return).
# - Used for both core clocks (docs/architecture.md "Time"): the monotonic uptime clock (lockout,
#   max-per-24h, ledger) and the wall clock (schedule weekday and minute of day).
# - from_ymd_hms / to_ymd_hms are for the host, the emulator and tests (event-time; they allocate).
#
# Only pumpcore-safe Python: integers, //, %, no imports.

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
MS_PER_MIN = 60_000

# days_from_civil(2000, 1, 1) in the proleptic Gregorian calendar counted from 1970-01-01.
_EPOCH_2000_FROM_1970 = 10957


def add_ms(day, ms, delta_ms):
    """(day, ms_of_day) = (day, ms) + delta_ms; delta_ms may be negative or large (event use)."""
    ms = ms + delta_ms
    if ms >= MS_PER_DAY or ms < 0:
        day = day + ms // MS_PER_DAY
        ms = ms % MS_PER_DAY
    return day, ms


class Clock:
    """A mutable (day, ms) point in time, advanced in place without allocating.

    Fields `day` and `ms` (ms of day) are public; `advance(delta_ms)` with 0 <= delta_ms is
    allocation-free for delta_ms < 2**29 (the shell's contract).
    """

    def __init__(self, day=0, ms=0):
        self.day = 0
        self.ms = 0
        self.set(day, ms)

    def set(self, day, ms):
        # Event-time: normalises any (day, ms) pair.
        if ms >= MS_PER_DAY or ms < 0:
            day = day + ms // MS_PER_DAY
            ms = ms % MS_PER_DAY
        self.day = day
        self.ms = ms

    def advance(self, delta_ms):
        # delta_ms >= 0. ms < 86.4e6 and delta_ms < 2**29 keep the sum below 2**30.
        ms = self.ms + delta_ms
        if ms >= MS_PER_DAY:
            self.day += ms // MS_PER_DAY
            ms = ms % MS_PER_DAY
        self.ms = ms

    def diff_ms_to(self, day, ms, cap_ms):
        """(day, ms) - self, clamped to [-cap_ms, cap_ms] (see diff_ms)."""
        return diff_ms(self.day, self.ms, day, ms, cap_ms)


def diff_ms(d0, m0, d1, m1, cap_ms):
    """(d1, m1) - (d0, m0) in ms, clamped to [-cap_ms, cap_ms]; 0 <= cap_ms < 2**30.

    Returns cap_ms when the difference is >= cap_ms (and -cap_ms when <= -cap_ms). Never builds a
    value above 2**30: the whole-day part is only multiplied out when it is known to fit.
    """
    dd = d1 - d0
    if dd < 0 or (dd == 0 and m1 < m0):
        return -diff_ms(d1, m1, d0, m0, cap_ms)
    t = m1 - m0  # in (-MS_PER_DAY, MS_PER_DAY)
    if dd == 0:
        return min(cap_ms, t)
    cap_days = cap_ms // MS_PER_DAY
    if dd > cap_days + 1:
        return cap_ms
    # dd - 1 <= cap_days, so partial <= cap_ms < 2**30.
    partial = (dd - 1) * MS_PER_DAY
    last = MS_PER_DAY + t  # in (0, 2 * MS_PER_DAY)
    if last >= cap_ms - partial:
        return cap_ms
    return partial + last


def weekday(day):
    """0 = Monday .. 6 = Sunday. Day 0 (2000-01-01) was a Saturday (5)."""
    return (day + 5) % 7


def minute_of_day(ms):
    """Minute of the day 0..1439 for ms_of_day."""
    return ms // MS_PER_MIN


def _days_from_civil(y, m, d):
    # Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms" (days_from_civil), integer only.
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (m + 9) % 12  # March = 0
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z):
    # Howard Hinnant's civil_from_days (inverse of _days_from_civil).
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return y, m, d


def from_ymd_hms(year, month, day, hour=0, minute=0, second=0, ms=0):
    """Civil date/time -> (day since 2000-01-01, ms_of_day). Raises ValueError on a bad field."""
    if not (1 <= month <= 12) or not (1 <= day <= 31):
        raise ValueError("bad date")
    if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60 and 0 <= ms < 1000):
        raise ValueError("bad time")
    n = _days_from_civil(year, month, day) - _EPOCH_2000_FROM_1970
    if _civil_from_days(n + _EPOCH_2000_FROM_1970) != (year, month, day):
        raise ValueError("bad date")  # e.g. 31 April, 29 Feb of a common year
    return n, ((hour * 60 + minute) * 60 + second) * 1000 + ms


def to_ymd_hms(day, ms):
    """(day, ms_of_day) -> (year, month, day, hour, minute, second, ms)."""
    day, ms = add_ms(day, ms, 0)
    y, m, d = _civil_from_days(day + _EPOCH_2000_FROM_1970)
    s_total = ms // 1000
    return (y, m, d, s_total // 3600, (s_total // 60) % 60, s_total % 60, ms % 1000)
