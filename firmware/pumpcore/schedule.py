# Flex-schedule math: basal step profiles (per weekday) and periodic bolus start times.
#
# Contract (all callers: the delivery facade on the hot path, prescription.validate off it):
# - Works on a VALIDATED, normalized rx (pumpcore.prescription.validate / normalize): steps are a
#   list of [start_minute_of_day, rate_nl_per_h] pairs, first start 0, strictly ascending starts
#   < 1440, 1..13 steps; rates 0..1_000_000 nL/h.  Periodic times are minutes of day 0..1439.
#   Given malformed data these functions may raise: validate first.
# - Time of day is in whole minutes 0..1439 (1440 = "end of day", the next midnight).
#   The facade converts its wall ms_of_day with `ms_of_day // 60000`; because boundaries are whole
#   minutes, "a boundary t was crossed between ms p and ms n" (p < t*60000 <= n) is exactly
#   "p // 60000 < t <= n // 60000", so minute arithmetic loses nothing.
# - Weekday 0 = Monday .. 6 = Sunday (architecture.md: weekday = (day + 5) % 7).
# - Allocation-free: no list/tuple/dict/str creation, no exceptions, every intermediate value
#   below 2**30 (rates <= 2**20, minutes <= 1440), so these are safe in the steady-state step.
#   Functions that may return "nothing" return -1, never None-with-tuple.

# Keys of the optional per-weekday profiles in basal["days"], index = weekday (0 = Monday).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MIN_PER_DAY = 1440


def profile_for(basal, weekday):
    """The steps list in force on weekday (0=Mon..6=Sun): basal["days"][name] when present and not
    None, else basal["steps"].  Returns the stored list itself (no copy: do not mutate it)."""
    days = basal.get("days")
    if days is not None:
        steps = days.get(WEEKDAYS[weekday])
        if steps is not None:
            return steps
    return basal["steps"]


def step_index_at(steps, minute_of_day):
    """Index of the step in force at minute_of_day (the last step whose start <= minute)."""
    i = len(steps) - 1
    while i > 0 and steps[i][0] > minute_of_day:
        i -= 1
    return i


def rate_at(steps, minute_of_day):
    """Basal rate (nL/h) in force at minute_of_day (0..1439)."""
    return steps[step_index_at(steps, minute_of_day)][1]


def next_boundary_min(steps, minute_of_day):
    """The first step start strictly after minute_of_day, or 1440 (the next midnight, where the
    next day's profile begins).  The rate is constant on [minute_of_day, result)."""
    n = len(steps)
    i = 0
    while i < n:
        start = steps[i][0]
        if start > minute_of_day:
            return start
        i += 1
    return MIN_PER_DAY


def daily_volume_nl(steps):
    """Basal volume of one whole day in nL, rounded DOWN.  The exact value is
    daily_volume_numerator(steps) / 60; the floor loses < 1 nL per day and is only for display
    and projections that state their rounding.  Computed as sum((rate // 60) * minutes) +
    (sum((rate % 60) * minutes)) // 60 so no intermediate reaches 2**30."""
    whole = 0
    frac = 0  # sum of (rate % 60) * minutes, <= 59 * 1440
    n = len(steps)
    i = 0
    while i < n:
        start = steps[i][0]
        if i + 1 < n:
            end = steps[i + 1][0]
        else:
            end = MIN_PER_DAY
        minutes = end - start
        rate = steps[i][1]
        whole += (rate // 60) * minutes
        frac += (rate % 60) * minutes
        i += 1
    return whole + frac // 60


def daily_volume_numerator(steps):
    """Exact basal volume of one day times 60 (unit: nL/h * min = nL / 60).  May exceed 2**30
    (up to 1.44e9): NOT for the hot path on the Pico; used by prescription projections."""
    return volume_between_nl(steps, 0, MIN_PER_DAY)


def volume_between_nl(steps, minute_from, minute_to):
    """Exact basal volume between two minutes of the same day (0 <= from <= to <= 1440) as a
    numerator over 60 (nL/h * min).  Used by projections (off the hot path)."""
    total = 0
    n = len(steps)
    i = 0
    while i < n:
        start = steps[i][0]
        if i + 1 < n:
            end = steps[i + 1][0]
        else:
            end = MIN_PER_DAY
        lo = start if start > minute_from else minute_from
        hi = end if end < minute_to else minute_to
        if hi > lo:
            total += steps[i][1] * (hi - lo)
        i += 1
    return total


def max_rate(basal):
    """The highest basal rate of any step of any weekday profile (nL/h). Event time."""
    best = 0
    for w in range(7):
        steps = profile_for(basal, w)
        for step in steps:
            if step[1] > best:
                best = step[1]
    return best


# --- periodic boluses --------------------------------------------------------------------------
# periodic = list of {"times_min": [t, ...], "volume_nl": v, "duration_ms": d} (may be empty).
# Validated programs never have two bolus starts at the same minute (periodic boluses do not
# overlap, prescription.validate checks it), so a start minute identifies one entry.


def periodic_at(periodic, minute_of_day):
    """Index of the periodic entry with a start at exactly minute_of_day, or -1."""
    n = len(periodic)
    k = 0
    while k < n:
        times = periodic[k]["times_min"]
        m = len(times)
        j = 0
        while j < m:
            if times[j] == minute_of_day:
                return k
            j += 1
        k += 1
    return -1


def _crossed(t, minute_prev, minute_now):
    # t in the half-open window (minute_prev, minute_now], wrapping over midnight when
    # minute_now < minute_prev.  Equal prev and now: empty window.
    if minute_now >= minute_prev:
        return minute_prev < t <= minute_now
    return t > minute_prev or t <= minute_now


def periodic_due(periodic, minute_prev, minute_now):
    """Index of the periodic entry whose start was crossed in the window (minute_prev, minute_now]
    (wrapping past midnight when minute_now < minute_prev), or -1 when none.

    The facade calls this after every advance that moved the wall clock (prev = minute before,
    now = minute after; set_clock is NOT a crossing: do not call it across a clock change).
    If several starts were crossed (the clock moved more than the gap between two starts, which
    a facade that wakes at periodic_next_min never does), the LATEST start in the window wins
    and the earlier ones are skipped: missed boluses are never stacked."""
    best_k = -1
    best_age = MIN_PER_DAY  # minutes from the start to minute_now; smallest wins
    n = len(periodic)
    k = 0
    while k < n:
        times = periodic[k]["times_min"]
        m = len(times)
        j = 0
        while j < m:
            t = times[j]
            if _crossed(t, minute_prev, minute_now):
                age = (minute_now - t) % MIN_PER_DAY
                if age < best_age:
                    best_age = age
                    best_k = k
            j += 1
        k += 1
    return best_k


def periodic_next_min(periodic, minute_of_day):
    """The next periodic start strictly after minute_of_day: a minute in (minute_of_day, 1440)
    for later today, 1440 + t for tomorrow's first start t, or -1 when there are no periodic
    boluses at all.  ms until it = result * 60000 - ms_of_day."""
    best = -1
    n = len(periodic)
    k = 0
    while k < n:
        times = periodic[k]["times_min"]
        m = len(times)
        j = 0
        while j < m:
            t = times[j]
            if t <= minute_of_day:
                t += MIN_PER_DAY
            if best < 0 or t < best:
                best = t
            j += 1
        k += 1
    return best
