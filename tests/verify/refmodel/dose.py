"""Dose quantities of the reference model, in exact fractions (docs/delivery.md, docs/therapy.md).

Written from the docs, not from pumpcore: the catheter as a plug-flow FIFO of concentration
segments (with the documented 8-segment bound and its max-merge), the rolling 24-h ledger in 5-min
buckets of monotonic time with the documented inclusion rule, and the reservoir. Volumes are int nL
(strokes are whole nL), amounts are ``Fraction`` ng (``nL * ug/mL / 1000``: no rounding anywhere,
so the model is the exact value the firmware's integers approximate).
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction

Concs = dict[str, int]        # drug name -> ug/mL (= ng/uL); a drug missing from a dict is 0
Amounts = dict[str, Fraction]

BUCKET_MS = 300_000           # delivery.md: 5-min buckets ...
WINDOW_BUCKETS = 288          # ... counted while now//5min - t//5min <= 288 (24 h / 5 min)
MAX_SEGMENTS = 8              # delivery.md: at most 8 segments, the tail's included; the two
                              # oldest merge (max)
TOL_PCT = 5                   # safety.md: each stroke within +-5 % of nominal (the margin)


def ng(volume_nl: int | Fraction, conc_ug_per_ml: int) -> Fraction:
    """Exact amount in ng of a volume at a concentration (architecture.md: nL * ug/mL / 1000)."""
    return Fraction(volume_nl) * conc_ug_per_ml / 1000


def add_amounts(into: Amounts, more: Amounts) -> None:
    for d, a in more.items():
        into[d] = into.get(d, Fraction(0)) + a


class Catheter:
    """The catheter's dead volume as a FIFO of [volume_nl, concs], oldest first.

    ``bounded``: the pump's belief (delivery.md: at most 8 segments; a 9th concentration merges
    the two oldest, each drug taking the higher concentration), with therapy.md's uncertainty
    band: the oldest ``tail_nl`` of the FIFO already left the tip (kept up to ``band_out``), and
    what the dose limits count for a push is ``counted()``. Unbounded: the physical truth (no
    band, nothing kept of what left)."""

    def __init__(self, volume_nl: int, bounded: bool = True) -> None:
        self.volume_nl = volume_nl
        self.bounded = bounded
        self.segs: deque[list] = deque()   # [volume_nl, concs]
        self.fill_nl = 0
        self.tail_nl = 0
        tol = TOL_PCT if bounded else 0
        # therapy.md: volume x tol / (100 + tol) inside the tip, volume x tol / (100 - tol)
        # beyond it, rounded up
        self.band_in = -(-volume_nl * tol // (100 + tol))
        self.band_out = -(-volume_nl * tol // (100 - tol))

    def copy(self) -> Catheter:
        c = Catheter(self.volume_nl, self.bounded)
        c.segs = deque([v, dict(k)] for v, k in self.segs)
        c.fill_nl = self.fill_nl
        c.tail_nl = self.tail_nl
        return c

    def is_primed(self) -> bool:
        return self.fill_nl >= self.volume_nl

    def push(self, volume_nl: int, concs: Concs) -> tuple[int, Amounts]:
        """Push volume in at the pump end: first fills an empty catheter (nothing leaves), then
        drains the same volume at the tip (delivery.md: a push first drains, then appends).
        Returns (nL out of the tip, ng out per drug): the nominal figures, what the pump reports
        as delivered."""
        to_fill = min(volume_nl, self.volume_nl - self.fill_nl)
        if to_fill > 0:
            self.fill_nl += to_fill
        drain = volume_nl - to_fill
        raw, left = self._drain(drain, concs, take_out=True)
        # what left joins the tail, whose oldest part beyond band_out is forgotten before the
        # push takes its place at the pump end (the 8 segments count the tail's)
        self.tail_nl += drain - left
        self._forget(max(0, self.tail_nl - self.band_out))
        self._append(volume_nl, concs)
        self.tail_nl += left            # a push longer than the catheter: part passed through
        self._forget(max(0, self.tail_nl - self.band_out))
        return drain, {d: Fraction(v, 1000) for d, v in raw.items() if v}

    def _forget(self, volume_nl: int) -> None:
        """The oldest volume_nl of the tail is no longer kept."""
        self.tail_nl -= volume_nl
        while volume_nl > 0:
            seg = self.segs[0]
            take = min(volume_nl, seg[0])
            seg[0] -= take
            volume_nl -= take
            if seg[0] == 0:
                self.segs.popleft()

    def _drain(self, drain: int, concs: Concs, take_out: bool) -> tuple[dict[str, int], int]:
        """Per drug, nL x ug/mL (= 1000 x ng, exact) of `drain` nL leaving the tip (the fluid
        after the tail); take_out moves it into the tail (an unbounded truth keeps no tail).
        Returns (amounts, nL the FIFO could not supply)."""
        raw: dict[str, int] = {}
        left = drain
        skip = self.tail_nl
        for seg in self.segs:
            if left <= 0:
                break
            if skip >= seg[0]:
                skip -= seg[0]
                continue
            take = min(left, seg[0] - skip)
            skip = 0
            for d, c in seg[1].items():
                raw[d] = raw.get(d, 0) + take * c
            left -= take
        # left > 0 only if the FIFO held less than its fill (cannot happen): the volume passes
        # straight through at the pushed concentrations
        if left > 0:
            for d, c in concs.items():
                raw[d] = raw.get(d, 0) + left * c
        return raw, (left if take_out else 0)

    def counted(self, volume_nl: int, concs: Concs) -> Amounts:
        """therapy.md "The catheter's uncertainty band": what the dose limits count for a push
        of volume_nl, without changing the catheter. Each nL the push moves past the tip (s0 nL
        into the push, 0 <= s0 < volume_nl, position measured from the tip towards the pump
        before the push) counts at the highest concentration anywhere within band_out beyond it
        and band_in inside it: integrated exactly over s0, piece by piece between the points
        where a boundary enters or leaves that band."""
        if volume_nl <= 0:
            return {}
        # the line before the push: (from, to, concs) in nL from the tip; the tail is beyond the
        # tip (negative), an unfilled catheter's blank holds nothing, the pushed fluid stands
        # beyond the pump end
        spans = []
        p = -self.tail_nl + (self.volume_nl - self.fill_nl)
        for v, k in self.segs:
            spans.append((Fraction(p), Fraction(p + v), k))
            p += v
        spans.append((Fraction(self.volume_nl), Fraction(10 ** 12),
                      {d: c for d, c in concs.items() if c}))
        cuts = {Fraction(0), Fraction(volume_nl)}
        for a, b, _ in spans:
            for x in (a - self.band_in, b + self.band_out):
                if 0 < x < volume_nl:
                    cuts.add(x)
        edges = sorted(cuts)
        out: Amounts = {}
        for lo, hi in zip(edges, edges[1:], strict=False):
            mid = (lo + hi) / 2
            top: Concs = {}
            for a, b, k in spans:
                if a < mid + self.band_in and b > mid - self.band_out:
                    for d, c in k.items():
                        top[d] = max(top.get(d, 0), c)
            for d, c in top.items():
                out[d] = out.get(d, Fraction(0)) + ng(hi - lo, c)
        return {d: a for d, a in out.items() if a}

    def _append(self, volume_nl: int, concs: Concs) -> None:
        if volume_nl <= 0:
            return
        key = {d: c for d, c in concs.items() if c}
        if self.segs and self.segs[-1][1] == key:
            self.segs[-1][0] += volume_nl
            return
        if self.bounded and len(self.segs) >= MAX_SEGMENTS:
            a = self.segs.popleft()
            b = self.segs.popleft()
            merged = {d: max(a[1].get(d, 0), b[1].get(d, 0)) for d in set(a[1]) | set(b[1])}
            self.segs.appendleft([a[0] + b[0], merged])
        self.segs.append([volume_nl, key])

    def would_emit(self, volume_nl: int, concs: Concs) -> Amounts:
        """What therapy.md's guard counts for a push of volume_nl (the band included), without
        changing the catheter."""
        return self.counted(volume_nl, concs)

    def max_conc(self) -> Concs:
        """Per drug, the highest concentration anywhere in the catheter or its tail."""
        out: Concs = {}
        for _, k in self.segs:
            for d, c in k.items():
                out[d] = max(out.get(d, 0), c)
        return out

    def widen_towards_tip(self, volume_nl: int, concs: Concs) -> None:
        """therapy.md 'Fail towards less drug': the concentration boundaries are widened towards
        the tip by volume_nl, the higher concentration winning, so later output is never below
        the truth whatever part of volume_nl was really pushed. Read as: a catheter that was
        filling takes the whole volume (fill + volume_nl, at most full), and every position p
        (from the tip) takes, per drug, the highest concentration found from p to p + volume_nl
        towards the pump, the pushed admixture standing beyond the pump end."""
        if volume_nl <= 0:
            return
        total = self.tail_nl + self.fill_nl     # positions from the oldest end of the tail
        grow = min(volume_nl, self.volume_nl - total)
        if grow > 0:
            self._append(grow, concs)
            self.fill_nl += grow
            total += grow
        spans = []
        p = 0
        for v, k in self.segs:
            spans.append((max(0, p - volume_nl), p + v, k))
            p += v
        spans.append((max(0, total - volume_nl), total, {d: c for d, c in concs.items() if c}))
        cuts = sorted({0, total} | {x for a, b, _ in spans for x in (a, b) if 0 <= x <= total})
        segs: deque[list] = deque()
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            k: dict[str, int] = {}
            for a, b, kk in spans:
                if a <= lo < b:
                    for d, c in kk.items():
                        if c > k.get(d, 0):
                            k[d] = c
            if segs and segs[-1][1] == k:
                segs[-1][0] += hi - lo
            else:
                segs.append([hi - lo, k])
        self.segs = segs
        if self.bounded:
            while len(self.segs) > MAX_SEGMENTS:
                a = self.segs.popleft()
                b = self.segs.popleft()
                merged = {d: max(a[1].get(d, 0), b[1].get(d, 0)) for d in set(a[1]) | set(b[1])}
                self.segs.appendleft([a[0] + b[0], merged])

    def amount_in(self) -> Amounts:
        out: Amounts = {}
        skip = self.tail_nl
        for v, k in self.segs:
            if skip >= v:
                skip -= v
                continue
            v -= skip
            skip = 0
            for d, c in k.items():
                out[d] = out.get(d, Fraction(0)) + ng(v, c)
        return out


class Ledger:
    """Rolling 24-h amount per drug on monotonic time (delivery.md "Window, exactly"): an amount
    added at t counts at now iff now // 5 min - t // 5 min <= 288. Monotonic time only moves
    forward within one ledger (a restored record brings its own ledger)."""

    def __init__(self) -> None:
        self.buckets: dict[int, Amounts] = {}
        self.first = 0               # oldest bucket index still counted
        self.sums: Amounts = {}      # totals over buckets >= first

    def _roll(self, now_mono_ms: int) -> None:
        first = now_mono_ms // BUCKET_MS - WINDOW_BUCKETS
        if first <= self.first:
            return
        for k in [k for k in self.buckets if k < first]:
            for d, a in self.buckets.pop(k).items():
                self.sums[d] -= a
        self.first = first

    def add(self, mono_ms: int, amounts: Amounts) -> None:
        self._roll(mono_ms)
        k = mono_ms // BUCKET_MS
        b = self.buckets.setdefault(k, {})
        add_amounts(b, amounts)
        add_amounts(self.sums, amounts)

    def total(self, drug: str, now_mono_ms: int) -> Fraction:
        self._roll(now_mono_ms)
        return self.sums.get(drug, Fraction(0))

    def totals(self, now_mono_ms: int) -> Amounts:
        self._roll(now_mono_ms)
        return dict(self.sums)


class Reservoir:
    """docs/delivery.md Reservoir: low at remaining <= low_alert_nl, empty at <= empty_nl; a draw
    is clamped when running dry."""

    def __init__(self, capacity_nl: int, low_alert_nl: int, empty_nl: int, fill_nl: int = 0) -> None:
        self.capacity_nl = capacity_nl
        self.low_alert_nl = low_alert_nl
        self.empty_nl = empty_nl
        self.remaining_nl = fill_nl

    def draw(self, volume_nl: int) -> int:
        v = min(volume_nl, self.remaining_nl)
        self.remaining_nl -= v
        return v

    def is_low(self) -> bool:
        return self.remaining_nl <= self.low_alert_nl

    def is_empty(self) -> bool:
        return self.remaining_nl <= self.empty_nl
