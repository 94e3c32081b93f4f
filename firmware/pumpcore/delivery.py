# Delivery engine: whole pump strokes from a programmed rate, exact and allocation-free.
#
# Units: rate in nL/h, time in ms, stroke volume in nL (a board constant, default board 250 nL).
# Volume owed by time t at rate r is r * t / 3_600_000 nL. The engine keeps that integral EXACTLY
# as a mixed-radix accumulator:
#     owed = pending_nl + frac / 3_600_000      (0 <= frac < 3_600_000, 0 <= pending_nl < stroke_nl)
# i.e. the accumulator acc = pending_nl * 3_600_000 + frac is in units of nL*ms/h, and a stroke is
# due whenever acc reaches stroke_nl * 3_600_000 (9e8 for 250 nL). Nothing is ever rounded away.
#
# Why every product stays below 2**30 (Pico small ints; docs/delivery.md):
#   rate*elapsed can reach 4e6 * 5e8. advance() splits elapsed_ms into digits of a mixed radix
#   (hours, minutes, seconds, 10 ms, ms); for each digit set_rate() precomputed how many whole nL
#   and how many nL*ms/h one unit of that digit contributes at the current rate:
#       hour : rate nL,                 frac 0
#       min  : rate // 60 nL,           frac (rate % 60) * 60_000        (< 3.6e6)
#       s    : rate // 3600 nL,         frac (rate % 3600) * 1000        (< 3.6e6)
#       10 ms: rate // 360_000 nL,      frac (rate % 360_000) * 10       (< 3.6e6)
#       ms   : rate // 3_600_000 nL,    frac rate % 3_600_000            (< 3.6e6)
#   digit counts are < 200 (hours, processed in chunks of <= 200), < 60, < 60, < 100, < 10, so every
#   count * unit product is < 200 * 4e6 = 8e8 or < 100 * 3.6e6 = 3.6e8; sums are normalised after
#   each digit. Strokes per call are counted in a plain int (< 2**30 for any elapsed < 2**29).
# Allocation: advance() only does small-int arithmetic on attributes (no tuples, no divmod).
#
# Decisions
# - set_rate() keeps the accumulator: a rate change continues the same integral (piecewise exact).
# - The remainder (less than one stroke) is KEPT across suspend/stop (set_rate(0) or not calling
#   advance): it is volume already owed by past programmed time, so delivering it after resume
#   never exceeds the integral. reset_remainder() drops it (new admixture, fault, priming done —
#   the facade decides). Dropping only ever under-delivers (by < 1 stroke).
# - Stop-at-once vs finish-the-stroke is the facade's concern: the engine only says how many
#   strokes are due.

MS_PER_HOUR = 3_600_000
MAX_RATE_NL_PER_H = 4_000_000  # total programmed rate (basal + active bolus); docs/delivery.md
MAX_STROKE_NL = (2**30 - 1) // MS_PER_HOUR - 1  # 297: stroke_nl * 3.6e6 must stay < 2**30
_SMALL = 2**30 - 1  # the largest small int on the Pico
_HOURS_CHUNK = 200  # 200 h * 4e6 nL/h = 8e8 < 2**30


def _digit_bits(c):
    """k >= 1 such that c * 2**k <= _SMALL (c < 2**29): how many bits of a multiplier the long
    multiplications below take per step, so that every intermediate stays a small int."""
    k = 1
    while c <= (_SMALL >> (k + 1)):
        k += 1
    return k


def mul_div(a, b, c):
    """floor(a * b / c) for ints a, b >= 0 and 0 < c < 2**29, without intermediates >= 2**30.

    The result itself must be < 2**30 to stay a small int. Used where a * b alone would overflow
    the Pico's small ints (bolus ends, reservoir times, bridge durations; every step of a bolus).
    Method: a = qa*c + ra; a*b/c = qa*b + ra*b/c, the latter by long multiplication over b's
    digits in base 2**k (k from _digit_bits: r * 2**k and ra * digit stay below c * 2**k), the
    running remainder r kept below c.
    """
    if c <= 0:
        raise ValueError("mul_div: c must be > 0")
    qa = a // c
    ra = a % c
    q = qa * b
    if ra == 0 or b == 0:
        return q
    k = _digit_bits(c)
    mask = (1 << k) - 1
    shift = 0
    while (b >> shift) > mask:
        shift += k
    q2 = 0
    r = 0
    while shift >= 0:
        r = r << k
        q2 = (q2 << k) + r // c
        r = r % c
        t = ra * ((b >> shift) & mask)
        q2 += t // c
        r += t % c
        if r >= c:
            r -= c
            q2 += 1
        shift -= k
    return q + q2


def mul_mod(a, b, c):
    """(a * b) % c with the same bounds and method as mul_div."""
    ra = a % c
    if ra == 0 or b == 0:
        return 0
    k = _digit_bits(c)
    mask = (1 << k) - 1
    shift = 0
    while (b >> shift) > mask:
        shift += k
    r = 0
    while shift >= 0:
        r = (r << k) % c
        r += (ra * ((b >> shift) & mask)) % c
        if r >= c:
            r -= c
        shift -= k
    return r


def ceil_mul_div(a, b, c):
    """ceil(a * b / c), same bounds as mul_div."""
    q = mul_div(a, b, c)
    if mul_mod(a, b, c):
        q += 1
    return q


class DeliveryEngine:
    """Strokes due from a programmed total rate. Who calls it: the Pump facade only.

    Public read-only fields: stroke_nl, rate_nl_per_h, pending_nl (whole nL owed, < stroke_nl),
    frac (extra nL*ms/h owed, < 3_600_000), strokes_total (strokes counted since creation; the
    facade may reset it; it only grows by advance(); a small int for 7.6 years at the maximum
    rate, 16_000 strokes/h).
    """

    def __init__(self, stroke_nl=250):
        if not isinstance(stroke_nl, int) or isinstance(stroke_nl, bool):
            raise ValueError("stroke_nl must be an int")  # noqa: TRY004
        if stroke_nl < 1 or stroke_nl > MAX_STROKE_NL:
            raise ValueError("stroke_nl out of range 1..%d" % MAX_STROKE_NL)  # noqa: UP031
        self.stroke_nl = stroke_nl
        self.threshold = stroke_nl * MS_PER_HOUR  # nL*ms/h per stroke (< 2**30)
        self.rate_nl_per_h = 0
        self.pending_nl = 0
        self.frac = 0
        self.strokes_total = 0
        # per-digit contributions, precomputed by set_rate (see module comment)
        self._m_nl = 0
        self._m_fr = 0
        self._s_nl = 0
        self._s_fr = 0
        self._c_nl = 0
        self._c_fr = 0
        self._u_nl = 0
        self._u_fr = 0
        self._strokes = 0
        self._direct_ms = 0   # elapsed_ms up to which rate * elapsed_ms stays a small int

    # --- programming (event time) ----------------------------------------------------------
    def set_rate(self, rate_nl_per_h):
        """Total programmed rate from now on (basal + active bolus; the facade sums). 0 = none.

        Raises ValueError outside 0..MAX_RATE_NL_PER_H (event time; the facade validates first).
        The accumulated remainder is kept (see module comment).
        """
        r = rate_nl_per_h
        if not isinstance(r, int) or isinstance(r, bool) or r < 0 or r > MAX_RATE_NL_PER_H:
            raise ValueError("rate_nl_per_h out of range")
        self.rate_nl_per_h = r
        self._m_nl = r // 60
        self._m_fr = (r % 60) * 60_000
        self._s_nl = r // 3600
        self._s_fr = (r % 3600) * 1000
        self._c_nl = r // 360_000
        self._c_fr = (r % 360_000) * 10
        # Fast path bound (decision): while frac + r * elapsed_ms < 2**30 the product is a small
        # int on the Pico too, so advance() adds it in one step (same integers as the digits).
        self._direct_ms = (_SMALL - MS_PER_HOUR) // r if r else 0
        self._u_nl = r // MS_PER_HOUR
        self._u_fr = r % MS_PER_HOUR

    def reset_remainder(self):
        """Forget the owed fraction of a stroke (under-delivers by < 1 stroke, never over)."""
        self.pending_nl = 0
        self.frac = 0

    # --- steady state (allocation-free) ------------------------------------------------------
    def _add(self, count, unit_nl, unit_fr):
        # count * unit < 2**30 by the digit bounds; normalise frac then whole nL into strokes.
        fr = self.frac + count * unit_fr
        nl = self.pending_nl + count * unit_nl
        if fr >= MS_PER_HOUR:
            nl += fr // MS_PER_HOUR
            fr = fr % MS_PER_HOUR
        if nl >= self.stroke_nl:
            self._strokes += nl // self.stroke_nl
            nl = nl % self.stroke_nl
        self.frac = fr
        self.pending_nl = nl

    def advance(self, elapsed_ms):
        """Move time on by elapsed_ms (>= 0) at the current rate; return whole strokes now due.

        Exact: strokes_due * stroke_nl + pending = integral of the rate, to the nL*ms/h.
        """
        self._strokes = 0
        r = self.rate_nl_per_h
        if r == 0 or elapsed_ms <= 0:
            return 0
        if elapsed_ms <= self._direct_ms:
            # one step: elapsed_ms * r nL*ms/h is a small int by the bound in set_rate
            self._add(elapsed_ms, 0, r)
        else:
            h = elapsed_ms // MS_PER_HOUR
            rest = elapsed_ms % MS_PER_HOUR
            while h > 0:
                n = min(_HOURS_CHUNK, h)
                self._add(n, r, 0)
                h -= n
            if rest:
                self._add(rest // 60_000, self._m_nl, self._m_fr)
                rest = rest % 60_000
                self._add(rest // 1000, self._s_nl, self._s_fr)
                rest = rest % 1000
                self._add(rest // 10, self._c_nl, self._c_fr)
                self._add(rest % 10, self._u_nl, self._u_fr)
        s = self._strokes
        self.strokes_total += s
        return s

    def acc(self):
        """Owed volume in nL*ms/h (0 <= acc < stroke_nl * 3_600_000 < 2**30)."""
        return self.pending_nl * MS_PER_HOUR + self.frac

    def pending_nl_owed(self):
        """Whole nL owed but not yet delivered (< stroke_nl); the fraction is `frac` / 3.6e6 nL."""
        return self.pending_nl

    def ms_to_next_stroke(self):
        """ms until the next stroke falls due at the current rate (ceil, >= 1); None if rate 0."""
        r = self.rate_nl_per_h
        if r == 0:
            return None
        need = self.threshold - self.acc()  # in (0, threshold]
        return (need + r - 1) // r

    # --- persistence seam ------------------------------------------------------------------
    def snapshot(self):
        return [self.rate_nl_per_h, self.pending_nl, self.frac]

    def restore(self, snap):
        rate, pending_nl, frac = snap
        if not (0 <= pending_nl < self.stroke_nl and 0 <= frac < MS_PER_HOUR):
            raise ValueError("bad delivery snapshot")
        self.set_rate(rate)
        self.pending_nl = pending_nl
        self.frac = frac
