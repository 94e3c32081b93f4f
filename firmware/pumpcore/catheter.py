# Catheter model: a FIFO of concentration segments between the pump outlet and the tip.
#
# Units: volume nL, concentration µg/mL (= ng/µL), amount ng (ng = nL * µg/mL // 1000; the
# remainder, in pg = nL*µg/mL units below 1000, is carried per drug, never dropped).
#
# Model (plug flow, no mixing/diffusion): fluid pushed in at the pump end displaces the oldest
# fluid out of the tip. The catheter holds volume_nl (its dead volume) when full.
# - Empty catheter (after implant, `filled=False`): fill_nl starts at 0; pushes fill it first and
#   nothing leaves the tip until fill_nl == volume_nl (is_primed()). The unfilled part is not
#   drug: the priming volume is not patient dose. Once full, whatever leaves the tip IS counted as
#   delivered to the patient (also during a priming bolus that over-fills: conservative).
# - Segments: at most max_segments (default 8), each with a volume and one concentration per drug
#   (n_drugs 1..4), in preallocated lists used as a ring. A push with the same concentrations as the
#   newest segment extends it (the steady state: no new segment, no allocation).
# - When a new concentration arrives and the ring is full, the two OLDEST segments (next to leave
#   the tip) are merged; the merged segment takes, per drug, the MAX of the two concentrations.
#   Conservative for dose limits: amounts leaving the tip are over-counted, never under-counted
#   (bounded by the older segments' volume times the concentration difference), and merged content
#   is never taken for the current admixture by volume_holding_old() unless both parts were.
#   Merging the oldest keeps the error where it leaves the catheter first.
#
# Overflow bound: volume * conc is computed per piece of at most CHUNK_NL nL with conc <=
# MAX_CONC_UG_PER_ML, so every product stays below 2**30 (CHUNK_NL * MAX_CONC = 1e9).
# Allocation: push() with unchanged concentrations does only small-int arithmetic in place.

from pumpcore.delivery import MS_PER_HOUR, ceil_mul_div

MAX_DRUGS = 4
MAX_CONC_UG_PER_ML = 100_000  # 100 mg/mL, above every labelled IT concentration (DOMAIN.md)
CHUNK_NL = 10_000
MAX_VOLUME_NL = 10_000_000  # 10 mL: far above any IT catheter dead volume


class Catheter:
    """Fields: volume_nl, n_drugs, fill_nl, out_ng (list: ng per drug that left the tip in the
    last push(); overwritten by every push), out_nl (nL that left the tip in the last push)."""

    def __init__(self, volume_nl, n_drugs=1, filled=False, concs=None, max_segments=8):
        if not isinstance(volume_nl, int) or volume_nl < 0 or volume_nl > MAX_VOLUME_NL:
            raise ValueError("catheter volume_nl out of range")
        if not (1 <= n_drugs <= MAX_DRUGS):
            raise ValueError("n_drugs out of range")
        if max_segments < 2:
            raise ValueError("max_segments must be >= 2")
        self.volume_nl = volume_nl
        self.n_drugs = n_drugs
        self.max_segments = max_segments
        self._vol = [0] * max_segments
        self._conc = [0] * (max_segments * MAX_DRUGS)
        self._head = 0  # index of the oldest segment
        self._count = 0
        self.fill_nl = 0
        self.out_ng = [0] * MAX_DRUGS
        self.out_nl = 0
        self._pg_rem = [0] * MAX_DRUGS  # carried remainders (pg = nL*µg/mL, < 1000)
        if filled:
            if concs is None:
                raise ValueError("filled catheter needs concs")
            self.fill_with(concs)

    # --- event time ---------------------------------------------------------------------------
    def fill_with(self, concs):
        """Declare the catheter full of one admixture (e.g. a catheter primed on the bench)."""
        self._check_concs(concs)
        self._count = 0
        self._head = 0
        self.fill_nl = 0
        if self.volume_nl:
            self._new_segment(concs)
            self._vol[self._head] = self.volume_nl
            self.fill_nl = self.volume_nl

    def empty(self):
        """Catheter replaced/emptied: fill 0, no segments (remainders of past amounts are kept)."""
        self._count = 0
        self._head = 0
        self.fill_nl = 0

    def _check_concs(self, concs):
        if len(concs) < self.n_drugs:
            raise ValueError("one concentration per drug")
        for i in range(self.n_drugs):
            c = concs[i]
            if not isinstance(c, int) or isinstance(c, bool) or c < 0 or c > MAX_CONC_UG_PER_ML:
                raise ValueError("concentration out of range")

    def _new_segment(self, concs):
        # Event time (a concentration change). Merges the two oldest when the ring is full.
        self._check_concs(concs)
        if self._count == self.max_segments:
            self._merge_oldest()
        i = (self._head + self._count) % self.max_segments
        self._vol[i] = 0
        base = i * MAX_DRUGS
        for d in range(MAX_DRUGS):
            self._conc[base + d] = concs[d] if d < self.n_drugs else 0
        self._count += 1

    def _merge_oldest(self):
        h = self._head
        n = (h + 1) % self.max_segments
        bh = h * MAX_DRUGS
        bn = n * MAX_DRUGS
        for d in range(MAX_DRUGS):
            self._conc[bn + d] = max(self._conc[bn + d], self._conc[bh + d])
        self._vol[n] += self._vol[h]
        self._vol[h] = 0
        self._head = n
        self._count -= 1

    # --- steady state ---------------------------------------------------------------------------
    def _newest_matches(self, concs):
        if self._count == 0:
            return False
        i = (self._head + self._count - 1) % self.max_segments
        base = i * MAX_DRUGS
        for d in range(self.n_drugs):
            if self._conc[base + d] != concs[d]:
                return False
        return True

    def push(self, volume_nl, concs):
        """The pump moved volume_nl of fluid with concentrations concs (per drug, µg/mL) into the
        catheter. Returns nL that left the tip; out_ng[d] = ng of drug d that left (this push).

        Allocation-free when concs equals the newest segment's (pass the same preallocated list).
        """
        out = self.out_ng
        for d in range(MAX_DRUGS):
            out[d] = 0
        self.out_nl = 0
        if volume_nl <= 0:
            return 0
        if self.volume_nl == 0:
            # No catheter dead volume: fluid goes straight to the tip (concs checked every push;
            # the check does not allocate).
            self._check_concs(concs)
            self._emit_conc(volume_nl, concs)
            self.out_nl = volume_nl
            return volume_nl
        same = self._newest_matches(concs)
        if not same:
            self._check_concs(concs)  # a refused push changes nothing
        # Fluid entering pushes the oldest content out first: drain, then append (so a push that
        # flushes whole old segments frees their slots before a new segment needs one).
        excess = self.fill_nl + volume_nl - self.volume_nl
        keep = volume_nl
        if excess > 0:
            from_old = excess if excess < self.fill_nl else self.fill_nl
            self._drain(from_old)
            self.fill_nl -= from_old
            if excess > from_old:
                # the push is larger than the whole catheter: part of it passes straight through
                self._emit_conc(excess - from_old, concs)
                keep = volume_nl - (excess - from_old)
            self.out_nl = excess
            # a drain takes from the oldest end: the newest segment is still there (and still
            # matches) unless the drain emptied the catheter
            same = same and self._count > 0
        if not same:
            self._new_segment(concs)
        tail = (self._head + self._count - 1) % self.max_segments
        self._vol[tail] += keep
        self.fill_nl += keep
        return self.out_nl

    def _drain(self, excess):
        # Take `excess` nL (<= fill_nl) out of the tip, oldest segments first; emptied segments go.
        while excess > 0:
            h = self._head
            v = self._vol[h]
            take = v if v < excess else excess
            self._emit_segment(take, h * MAX_DRUGS)
            excess -= take
            if take == v:
                self._vol[h] = 0
                self._head = (h + 1) % self.max_segments
                self._count -= 1
            else:
                self._vol[h] = v - take

    def _emit_segment(self, volume_nl, base):
        conc = self._conc
        out = self.out_ng
        rem = self._pg_rem
        for d in range(self.n_drugs):
            c = conc[base + d]
            if c == 0:
                continue
            v = volume_nl
            while v > 0:
                piece = CHUNK_NL if v > CHUNK_NL else v
                pg = rem[d] + piece * c
                out[d] += pg // 1000
                rem[d] = pg % 1000
                v -= piece

    def _emit_conc(self, volume_nl, concs):
        out = self.out_ng
        rem = self._pg_rem
        for d in range(self.n_drugs):
            c = concs[d]
            v = volume_nl
            while v > 0 and c:
                piece = min(CHUNK_NL, v)
                pg = rem[d] + piece * c
                out[d] += pg // 1000
                rem[d] = pg % 1000
                v -= piece

    # --- dose guard and reset accounting -----------------------------------------------------------
    def would_emit(self, volume_nl, concs, out):
        """ng of each drug that push(volume_nl, concs) would send out of the tip, into out[d]
        (exact: the same pieces and carried remainders as push). Changes nothing; allocation-free.
        The dose guard asks this before every stroke."""
        for d in range(MAX_DRUGS):
            out[d] = 0
        if volume_nl <= 0:
            return
        if self.volume_nl == 0:
            self._would_emit_conc(volume_nl, concs, out)
            return
        excess = self.fill_nl + volume_nl - self.volume_nl
        if excess <= 0:
            return
        from_old = excess if excess < self.fill_nl else self.fill_nl
        rem = self._pg_rem
        conc = self._conc
        h = self._head
        if excess == from_old and excess <= self._vol[h] and excess <= CHUNK_NL:
            # the common stroke: all of it from the tip segment, one piece per drug
            base = h * MAX_DRUGS
            for d in range(self.n_drugs):
                out[d] = (rem[d] + excess * conc[base + d]) // 1000
            return
        for d in range(self.n_drugs):
            # walk the segments from the tip, the same pieces push() would emit
            left = from_old
            k = 0
            r = rem[d]
            total = 0
            while left > 0 and k < self._count:
                i = (self._head + k) % self.max_segments
                v = self._vol[i]
                take = v if v < left else left
                c = conc[i * MAX_DRUGS + d]
                while take > 0 and c:
                    piece = CHUNK_NL if take > CHUNK_NL else take
                    pg = r + piece * c
                    total += pg // 1000
                    r = pg % 1000
                    take -= piece
                left -= v if v < left else left
                k += 1
            c = concs[d]
            through = excess - from_old  # a push larger than the catheter passes straight through
            while through > 0 and c:
                piece = CHUNK_NL if through > CHUNK_NL else through
                pg = r + piece * c
                total += pg // 1000
                r = pg % 1000
                through -= piece
            out[d] = total

    def _would_emit_conc(self, volume_nl, concs, out):
        rem = self._pg_rem
        for d in range(self.n_drugs):
            c = concs[d]
            r = rem[d]
            v = volume_nl
            total = 0
            while v > 0 and c:
                piece = CHUNK_NL if v > CHUNK_NL else v
                pg = r + piece * c
                total += pg // 1000
                r = pg % 1000
                v -= piece
            out[d] = total

    def presume_hidden_pushes(self, width_nl, incoming):
        """After a reset that may have hidden up to width_nl of pushes of `incoming` (the
        reservoir's concentrations) (docs/therapy.md, "Resets and accounting"), make the model's
        later output never fall below the truth, wherever between 0 and width_nl the truth is:
        - an unfilled catheter is taken as filled by up to width_nl more (it may be primed
          sooner than it really is: more is counted as leaving the tip, never less);
        - every point of the catheter takes, per drug, the highest concentration found within
          width_nl behind it (towards the pump, the incoming fluid included).
        What the hidden pushes sent out of the tip is booked by the facade, not here. Event time
        (may split segments; a full ring merges conservatively, as _new_segment does)."""
        if width_nl <= 0:
            return
        self._check_concs(incoming)
        if self.fill_nl < self.volume_nl:
            extra = self.volume_nl - self.fill_nl
            if extra > width_nl:
                extra = width_nl
            if not self._newest_matches(incoming):
                self._new_segment(incoming)
            self._vol[(self._head + self._count - 1) % self.max_segments] += extra
            self.fill_nl += extra
        if self._count == 0:
            return
        segs = self.segments()       # tip first
        segs.append((width_nl, [incoming[d] for d in range(self.n_drugs)]))
        n = len(segs) - 1            # the real segments; the last entry is the incoming fluid
        out = []                     # rebuilt list, tip first: [vol, concs]
        end = 0
        for k in range(n):
            vol, concs = segs[k]
            end += vol               # this segment's pump-side end
            # points within width_nl of the pump-side end see what lies up to width_nl behind
            seen = list(concs)
            pos = end
            j = k + 1
            while j <= n and pos < end + width_nl:
                cj = segs[j][1]
                for d in range(self.n_drugs):
                    if cj[d] > seen[d]:
                        seen[d] = cj[d]
                pos += segs[j][0]
                j += 1
            if seen == concs:
                out.append([vol, concs])
            else:
                near = width_nl if width_nl < vol else vol
                if vol > near:
                    out.append([vol - near, concs])
                out.append([near, seen])
        merged = []                  # neighbours that ended up equal become one segment
        for vol, concs in out:
            if merged and merged[-1][1] == concs:
                merged[-1][0] += vol
            else:
                merged.append([vol, concs])
        fill = self.fill_nl
        self._count = 0
        self._head = 0
        for vol, concs in merged:
            full = [0] * MAX_DRUGS
            for d in range(self.n_drugs):
                full[d] = concs[d]
            self._new_segment(full)
            self._vol[(self._head + self._count - 1) % self.max_segments] += vol
        self.fill_nl = fill

    # --- queries ------------------------------------------------------------------------------
    def is_primed(self):
        """True when the catheter is full of fluid (drug reaches the tip with the next push)."""
        return self.fill_nl >= self.volume_nl

    def nl_to_primed(self):
        """nL still needed to fill the catheter (0 when primed)."""
        return self.volume_nl - self.fill_nl

    def segment_count(self):
        return self._count

    def segments(self):
        """[(volume_nl, [conc per drug]), ...] oldest (at the tip) first. Event time (allocates)."""
        res = []
        for k in range(self._count):
            i = (self._head + k) % self.max_segments
            base = i * MAX_DRUGS
            res.append((self._vol[i], [self._conc[base + d] for d in range(self.n_drugs)]))
        return res

    def volume_holding_old(self, concs):
        """nL in the catheter whose concentrations are not exactly `concs` (the current one)."""
        total = 0
        for k in range(self._count):
            i = (self._head + k) % self.max_segments
            base = i * MAX_DRUGS
            for d in range(self.n_drugs):
                if self._conc[base + d] != concs[d]:
                    total += self._vol[i]
                    break
        return total

    def snapshot(self):
        """Plain data for persistence: fill_nl, segments [[vol, [concs]], ...], rem [pg]."""
        return {"fill_nl": self.fill_nl,
                "segments": [[v, c] for (v, c) in self.segments()],
                "rem": [self._pg_rem[d] for d in range(MAX_DRUGS)]}

    def restore(self, snap):
        segs = snap["segments"]
        if len(segs) > self.max_segments:
            raise ValueError("too many segments")
        total = 0
        for v, c in segs:
            self._check_concs(c)
            if not isinstance(v, int) or v < 0:
                raise ValueError("bad segment volume")
            total += v
        if total != snap["fill_nl"] or total > self.volume_nl:
            raise ValueError("inconsistent catheter snapshot")
        self.empty()
        for v, c in segs:
            self._new_segment(c)
            self._vol[(self._head + self._count - 1) % self.max_segments] = v
        self.fill_nl = total
        for d in range(MAX_DRUGS):
            self._pg_rem[d] = snap["rem"][d]


def bridge_proposal(catheter, concs, old_rate_nl_per_h):
    """Bridge bolus after an admixture change: deliver the catheter volume still holding the old
    admixture at the OLD program's rate, so the old drug keeps its old dose rate at the tip until
    the new admixture arrives (SynchroMed "bridge bolus", DOMAIN.md).

    Returns (volume_nl, duration_ms), or None when nothing to bridge (no old fluid, or old rate 0).
    duration_ms = ceil(volume * 3.6e6 / old_rate), so the bolus rate
    (floor of volume * 3.6e6 / duration) never exceeds the old rate. The facade runs it INSTEAD of
    the new basal (see docs/delivery.md).
    """
    v = catheter.volume_holding_old(concs)
    if v <= 0 or old_rate_nl_per_h <= 0:
        return None
    return v, ceil_mul_div(v, MS_PER_HOUR, old_rate_nl_per_h)
