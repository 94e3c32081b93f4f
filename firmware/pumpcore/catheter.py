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
# Two figures per push (docs/therapy.md, "The catheter's uncertainty band"):
# - out_ng, out_nl: the NOMINAL model: every push moved exactly the volume asked. Reports
#   (delivered amounts) use it.
# - guard_ng: what the DOSE LIMITS count. The mechanism moves each stroke within +-tol_pct of
#   nominal, so a boundary between two fluids that entered p nL of pushes ago truly lies anywhere
#   within p*(1 +- tol) of the pump end. At the tip (p about volume_nl) fluid the nominal model
#   places up to band_in_nl = volume_nl*tol/(100+tol) inside the catheter may already be leaving
#   (a fast mechanism), and fluid it places up to band_out_nl = volume_nl*tol/(100-tol) beyond the
#   tip may still be leaving (a slow one), both rounded up. So every nL the nominal model moves past
#   the tip is counted, per drug, at the HIGHEST concentration within that band around it, blank
#   (unprimed) catheter included: a drug front is counted from the push that brings it within
#   band_in_nl of the tip. The fluid that left the tip up to band_out_nl ago is kept (the tail) for
#   this. With tol_pct = 0 the bands are empty and guard_ng equals out_ng.
#   Coordinates used below: s = nL from the tip towards the pump (the tail at s < 0); the ring's
#   oldest fluid starts at s = volume_nl - fill_nl - tail_nl; the blank (if any) is [0, that).
#
# Overflow bound: volume * conc is computed per piece of at most CHUNK_NL nL with conc <=
# MAX_CONC_UG_PER_ML, so every product stays below 2**30 (CHUNK_NL * MAX_CONC = 1e9).
# Allocation: push() with unchanged concentrations, the band wholly inside one segment, does only
# small-int arithmetic in place.

from pumpcore.delivery import MS_PER_HOUR, ceil_mul_div

MAX_DRUGS = 4
MAX_CONC_UG_PER_ML = 100_000  # 100 mg/mL, above every labelled IT concentration (DOMAIN.md)
CHUNK_NL = 10_000
MAX_VOLUME_NL = 10_000_000  # 10 mL: far above any IT catheter dead volume
MAX_TOL_PCT = 20


class Catheter:
    """Fields: volume_nl, n_drugs, fill_nl, tail_nl (nL kept of what left the tip), out_ng (list:
    ng per drug that left the tip in the last push(), nominal; overwritten by every push), out_nl
    (nL that left the tip in the last push, nominal), guard_ng (list: ng per drug the dose limits
    count for the last push), band_in_nl, band_out_nl (the uncertainty band, see above)."""

    def __init__(self, volume_nl, n_drugs=1, filled=False, concs=None, max_segments=8, tol_pct=0):
        if not isinstance(volume_nl, int) or volume_nl < 0 or volume_nl > MAX_VOLUME_NL:
            raise ValueError("catheter volume_nl out of range")
        if not (1 <= n_drugs <= MAX_DRUGS):
            raise ValueError("n_drugs out of range")
        if max_segments < 2:
            raise ValueError("max_segments must be >= 2")
        if not isinstance(tol_pct, int) or not (0 <= tol_pct <= MAX_TOL_PCT):
            raise ValueError("tol_pct out of range")
        self.volume_nl = volume_nl
        self.n_drugs = n_drugs
        self.max_segments = max_segments
        self.tol_pct = tol_pct
        self.band_in_nl = ceil_mul_div(volume_nl, tol_pct, 100 + tol_pct)
        self.band_out_nl = ceil_mul_div(volume_nl, tol_pct, 100 - tol_pct)
        self._vol = [0] * max_segments
        self._conc = [0] * (max_segments * MAX_DRUGS)
        self._head = 0  # index of the oldest segment
        self._count = 0
        self.fill_nl = 0
        self.tail_nl = 0
        self.out_ng = [0] * MAX_DRUGS
        self.out_nl = 0
        self.guard_ng = [0] * MAX_DRUGS
        self._pg_rem = [0] * MAX_DRUGS  # carried remainders (pg = nL*µg/mL, < 1000), nominal
        self._guard_rem = [0] * MAX_DRUGS  # the same for guard_ng
        self._rem_scratch = [0] * MAX_DRUGS
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
        self.tail_nl = 0
        if self.volume_nl:
            self._new_segment(concs)
            self._vol[self._head] = self.volume_nl
            self.fill_nl = self.volume_nl

    def empty(self):
        """Catheter replaced/emptied: fill 0, no segments (remainders of past amounts are kept)."""
        self._count = 0
        self._head = 0
        self.fill_nl = 0
        self.tail_nl = 0

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
        catheter. Returns nL that left the tip; out_ng[d] = ng of drug d that left (this push,
        nominal); guard_ng[d] = ng of drug d the dose limits count for it.

        Allocation-free when concs equals the newest segment's (pass the same preallocated list)
        and the band lies in one segment.
        """
        out = self.out_ng
        for d in range(MAX_DRUGS):
            out[d] = 0
        self.out_nl = 0
        if volume_nl <= 0:
            for d in range(MAX_DRUGS):
                self.guard_ng[d] = 0
            return 0
        same = self._newest_matches(concs)
        if not same:
            self._check_concs(concs)  # a refused push changes nothing
        self._counted(volume_nl, concs, self.guard_ng, True)
        if self.volume_nl == 0:
            # No catheter dead volume: fluid goes straight to the tip.
            self._emit_conc(volume_nl, concs)
            self.out_nl = volume_nl
            return volume_nl
        # Fluid entering pushes the oldest content out first (the nominal figures), then the ring
        # takes the push at the pump end; what left joins the tail, kept to band_out_nl.
        excess = self.fill_nl + volume_nl - self.volume_nl
        if excess < 0:
            excess = 0
        h = self._head
        tail = self.tail_nl
        if same and excess == volume_nl and tail + excess < self._vol[h]:
            # the steady stroke: a full catheter whose oldest segment holds the tail, all that
            # leaves and more; the same steps as below, in place
            self._emit_segment(excess, h * MAX_DRUGS)
            self.out_nl = excess
            tail += excess
            drop = tail - self.band_out_nl
            if drop > 0:
                self._vol[h] -= drop
                tail -= drop
            self._vol[(h + self._count - 1) % self.max_segments] += volume_nl
            self.tail_nl = tail
            return excess
        departed = 0           # nL of fluid already in the ring that leaves the tip
        if excess:
            departed = excess if excess < self.fill_nl else self.fill_nl
            self._emit_ring(self.tail_nl, departed)
            if excess > departed:
                # the push is larger than the whole catheter: part of it passes straight through
                self._emit_conc(excess - departed, concs)
            self.out_nl = excess
        tail = self.tail_nl + excess
        drop = tail - self.band_out_nl
        if drop > 0:
            first = self.tail_nl + departed   # what of the ring's content is now beyond the tip
            if first > drop:
                first = drop
            self._drop_oldest(first)
            drop -= first
            tail -= first
            # the drop may have taken the newest segment with it (the whole catheter flushed)
            same = same and self._count > 0
        if not same:
            self._new_segment(concs)
        self._vol[(self._head + self._count - 1) % self.max_segments] += volume_nl
        self.fill_nl += volume_nl - excess
        if drop > 0:
            self._drop_oldest(drop)
            tail -= drop
        self.tail_nl = tail
        return self.out_nl

    def _emit_ring(self, offset, volume_nl):
        # Nominal amounts of volume_nl of the ring's content starting offset nL from its oldest
        # end (the tail is skipped by passing tail_nl): into out_ng.
        k = 0
        while volume_nl > 0 and k < self._count:
            i = (self._head + k) % self.max_segments
            v = self._vol[i]
            k += 1
            if offset >= v:
                offset -= v
                continue
            take = v - offset
            if take > volume_nl:
                take = volume_nl
            offset = 0
            self._emit_segment(take, i * MAX_DRUGS)
            volume_nl -= take

    def _drop_oldest(self, n):
        # Forget n nL (<= the ring's content) at the oldest end; emptied segments go.
        while n > 0 and self._count:
            h = self._head
            v = self._vol[h]
            if v <= n:
                n -= v
                self._vol[h] = 0
                self._head = (h + 1) % self.max_segments
                self._count -= 1
            else:
                self._vol[h] = v - n
                n = 0

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
        """ng of each drug the dose limits would count for push(volume_nl, concs) (what push then
        puts in guard_ng: the same pieces and carried remainders), into out[d]. Changes nothing;
        allocation-free in the steady state. The dose guard asks this before every stroke."""
        if volume_nl <= 0:
            for d in range(MAX_DRUGS):
                out[d] = 0
            return
        self._counted(volume_nl, concs, out, False)

    def _counted(self, volume_nl, concs, out, commit):
        # The guard's amounts for a push of volume_nl (> 0) of concs, in the geometry before it:
        # the nL at s0 in [0, volume_nl) pass the tip, each counted at the highest concentration
        # within [s0 - band_out_nl, s0 + band_in_nl]; the push's own fluid lies at s >= volume_nl
        # of the catheter. Carried remainders: _guard_rem, written back only when commit.
        grem = self._guard_rem
        n_drugs = self.n_drugs
        b_in = self.band_in_nl
        h = self._head
        count = self._count
        conc = self._conc
        vol = self._vol
        start = self.volume_nl - self.fill_nl - self.tail_nl
        if count and volume_nl <= CHUNK_NL and start + vol[h] >= volume_nl + b_in:
            # the common stroke: only the oldest segment lies within the band of any nL passing;
            # before it there is only blank (nothing counted until it comes within band_in_nl)
            lo = start - b_in
            if lo < 0:
                lo = 0
            v = volume_nl - lo
            base = h * MAX_DRUGS
            for d in range(MAX_DRUGS):
                if d >= n_drugs or v <= 0:
                    out[d] = 0
                else:
                    pg = grem[d] + v * conc[base + d]
                    out[d] = pg // 1000
                    if commit:
                        grem[d] = pg % 1000
            return
        for d in range(MAX_DRUGS):
            out[d] = 0
        rem = self._rem_scratch
        for d in range(MAX_DRUGS):
            rem[d] = grem[d]
        b_out = self.band_out_nl
        ms = self.max_segments
        # the band holds a boundary: piece by piece between the points where one enters or leaves
        x = 0
        while x < volume_nl:
            # the next s0 where a fluid edge enters or leaves the band
            nxt = volume_nl
            pos = start
            for k in range(count + 1):
                a = pos
                if k < count:
                    pos += vol[(h + k) % ms]
                    e = pos + b_out
                    if x < e < nxt:
                        nxt = e
                e = a - b_in
                if x < e < nxt:
                    nxt = e
            for d in range(n_drugs):
                top = 0
                pos = start
                for k in range(count + 1):
                    a = pos
                    if k < count:
                        i = (h + k) % ms
                        pos += vol[i]
                        c = conc[i * MAX_DRUGS + d]
                        inside = pos > x - b_out
                    else:
                        c = concs[d]       # the push's own fluid, beyond the pump end
                        inside = True
                    if inside and a <= x + b_in and c > top:
                        top = c
                if top:
                    out[d] += self._count_piece(nxt - x, top, d, rem)
            x = nxt
        if commit:
            for d in range(MAX_DRUGS):
                grem[d] = rem[d]

    def _count_piece(self, volume_nl, c, d, rem):
        total = 0
        r = rem[d]
        while volume_nl > 0 and c:
            piece = CHUNK_NL if volume_nl > CHUNK_NL else volume_nl
            pg = r + piece * c
            total += pg // 1000
            r = pg % 1000
            volume_nl -= piece
        rem[d] = r
        return total

    def presume_hidden_pushes(self, width_nl, incoming):
        """After a reset that may have hidden up to width_nl of pushes of `incoming` (the
        reservoir's concentrations) (docs/therapy.md, "Resets and accounting"), make the model's
        later output never fall below the truth, wherever between 0 and width_nl the truth is:
        - an unfilled catheter is taken as filled by up to width_nl more (it may be primed
          sooner than it really is: more is counted as leaving the tip, never less);
        - every point of the catheter (and of the tail) takes, per drug, the highest
          concentration found within width_nl behind it (towards the pump, the incoming fluid
          included).
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
        segs = self._ring()          # oldest (tail) first
        segs.append((width_nl, [incoming[d] for d in range(self.n_drugs)]))
        n = len(segs) - 1            # the real segments; the last entry is the incoming fluid
        out = []                     # rebuilt list, oldest first: [vol, concs]
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
        self._rebuild(out)

    def _rebuild(self, segs):
        # Event time: the ring from [vol, concs] oldest first; equal neighbours become one
        # segment; fill_nl and tail_nl are the caller's.
        self._count = 0
        self._head = 0
        for vol, concs in segs:
            if not self._newest_matches(concs):
                full = [0] * MAX_DRUGS
                for d in range(self.n_drugs):
                    full[d] = concs[d]
                self._new_segment(full)
            self._vol[(self._head + self._count - 1) % self.max_segments] += vol

    # --- queries ------------------------------------------------------------------------------
    def is_primed(self):
        """True when the catheter is full of fluid (drug reaches the tip with the next push)."""
        return self.fill_nl >= self.volume_nl

    def nl_to_primed(self):
        """nL still needed to fill the catheter (0 when primed)."""
        return self.volume_nl - self.fill_nl

    def segment_count(self):
        return self._count

    def _ring(self):
        # [(volume_nl, [conc per drug]), ...] of all the ring holds, oldest first (the tail's
        # segments included). Event time (allocates).
        res = []
        for k in range(self._count):
            i = (self._head + k) % self.max_segments
            base = i * MAX_DRUGS
            res.append((self._vol[i], [self._conc[base + d] for d in range(self.n_drugs)]))
        return res

    def _split(self):
        # (tail, inside): the ring cut at the tip, each [(volume_nl, [concs]), ...] oldest first.
        tail = []
        inside = []
        left = self.tail_nl
        for v, c in self._ring():
            if left >= v:
                if v:
                    tail.append((v, c))
                left -= v
            else:
                if left:
                    tail.append((left, c))
                inside.append((v - left, list(c)))
                left = 0
        return tail, inside

    def segments(self):
        """[(volume_nl, [conc per drug]), ...] in the catheter, oldest (at the tip) first; their
        volumes add up to fill_nl. Event time (allocates)."""
        return self._split()[1]

    def max_conc(self, d):
        """The highest concentration of drug d anywhere in the catheter or its tail (0 if none):
        what a bolus could push out of the tip at most. Allocation-free."""
        top = 0
        for k in range(self._count):
            i = (self._head + k) % self.max_segments
            c = self._conc[i * MAX_DRUGS + d]
            if self._vol[i] and c > top:
                top = c
        return top

    def volume_holding_old(self, concs):
        """nL in the catheter (not the tail) whose concentrations are not exactly `concs` (the
        current one)."""
        total = 0
        left = self.tail_nl
        for k in range(self._count):
            i = (self._head + k) % self.max_segments
            v = self._vol[i]
            if left >= v:
                left -= v
                continue
            v -= left
            left = 0
            base = i * MAX_DRUGS
            for d in range(self.n_drugs):
                if self._conc[base + d] != concs[d]:
                    total += v
                    break
        return total

    def snapshot(self):
        """Plain data for persistence: fill_nl, segments [[vol, [concs]], ...] in the catheter,
        tail [[vol, [concs]], ...] beyond the tip, rem [pg] and guard_rem [pg]."""
        tail, inside = self._split()
        return {"fill_nl": self.fill_nl,
                "segments": [[v, c] for (v, c) in inside],
                "tail": [[v, c] for (v, c) in tail],
                "rem": [self._pg_rem[d] for d in range(MAX_DRUGS)],
                "guard_rem": [self._guard_rem[d] for d in range(MAX_DRUGS)]}

    def restore(self, snap):
        """From snapshot(). A record without a tail (written before it existed) restores with
        none."""
        segs = snap["segments"]
        tail = snap.get("tail", [])
        if len(segs) + len(tail) > self.max_segments + 1:
            raise ValueError("too many segments")
        total = 0
        t_total = 0
        for v, c in tail:
            self._check_concs(c)
            if not isinstance(v, int) or v < 0:
                raise ValueError("bad segment volume")
            t_total += v
        for v, c in segs:
            self._check_concs(c)
            if not isinstance(v, int) or v < 0:
                raise ValueError("bad segment volume")
            total += v
        if total != snap["fill_nl"] or total > self.volume_nl:
            raise ValueError("inconsistent catheter snapshot")
        if t_total > self.band_out_nl or (t_total and total < self.volume_nl):
            raise ValueError("inconsistent catheter tail")
        self.empty()
        self._rebuild(tail + segs)
        self.fill_nl = total
        self.tail_nl = t_total
        for d in range(MAX_DRUGS):
            self._pg_rem[d] = snap["rem"][d]
            self._guard_rem[d] = snap.get("guard_rem", snap["rem"])[d]


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
