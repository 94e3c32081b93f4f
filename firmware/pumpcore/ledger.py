# Rolling 24-hour dose ledger per drug, plus patient-bolus start history and the lockout reference.
#
# Units: amounts in ng, time in ms on the MONOTONIC clock (uptime; setting the wall clock never
# changes these windows).
#
# Ledger window (exact statement):
#   Time is cut into buckets of bucket_ms (default 5 min) counted from the ledger's creation. There
#   are n_buckets = 86_400_000 // bucket_ms + 1 buckets (289 by default): the current, partly
#   elapsed bucket plus 288 complete ones. An amount added at monotonic time t is in total() at time
#   `now` iff  now // bucket_ms - t // bucket_ms <= 288.  Hence
#     - every amount added within the last 24 h (now - t <= 24 h) is counted: NEVER under-counts;
#     - an amount is dropped at the latest 24 h + one bucket after it was added: it may over-count
#       by what was added in the window's oldest, partly-outside bucket (< 5 min of delivery).
#   Conservative for the daily hard/soft limits (the pump may refuse a bolus slightly early, never
#   late). Totals are kept incrementally (add and rotation update them): total() is O(1).
#   Amounts are attributed to the bucket that is current when add() is called; the facade adds what
#   left the catheter tip at the end of the advance step that produced it.
# Allocation: add() and advance() update preallocated lists in place (small ints while each total
#   stays < 2**30 ng = 1.07 g per 24 h, far above any IT dose).
#
# PatientHistory: start times of patient boluses (for max_per_24h) in a ring, and the lockout
# reference (start of the last DELIVERED patient bolus, or the last commit/refill: SynchroMed
# starts a lockout after every programming session or refill, DOMAIN.md). Event time.

import array
import binascii

from pumpcore.clock import MS_PER_DAY, diff_ms

MAX_DRUGS = 4
DEFAULT_BUCKET_MS = 300_000  # 5 min


class Ledger:
    """Per-drug rolling 24-h totals. Who calls it: the Pump facade (add after each step's push)."""

    def __init__(self, n_drugs=1, bucket_ms=DEFAULT_BUCKET_MS):
        if not (1 <= n_drugs <= MAX_DRUGS):
            raise ValueError("n_drugs out of range")
        if bucket_ms <= 0 or MS_PER_DAY % bucket_ms:
            raise ValueError("bucket_ms must divide 24 h")
        self.n_drugs = n_drugs
        self.bucket_ms = bucket_ms
        self.n_buckets = MS_PER_DAY // bucket_ms + 1
        # drug d, bucket k at d*n_buckets + k (each drug's buckets contiguous, so a snapshot takes
        # a drug's slice in one C call); int32 (a bucket holds < 2**30 ng, see above)
        self._b = array.array("i", [0] * (self.n_buckets * MAX_DRUGS))
        self._tot = [0] * MAX_DRUGS
        self._cur = 0  # current bucket index
        self.ms_in_bucket = 0  # elapsed ms within the current bucket, < bucket_ms

    def add(self, drug_index, amount_ng):
        """Record amount_ng of drug drug_index delivered now (amount_ng >= 0)."""
        if amount_ng:
            i = drug_index * self.n_buckets + self._cur
            self._b[i] += amount_ng
            self._tot[drug_index] += amount_ng

    def total(self, drug_index):
        """ng of the drug in the window (see module comment): >= the true last-24-h amount."""
        return self._tot[drug_index]

    def would_exceed(self, drug_index, amount_ng, limit_ng):
        """True if total + amount_ng > limit_ng (limit None = no limit)."""
        if limit_ng is None:
            return False
        return self._tot[drug_index] + amount_ng > limit_ng

    def advance(self, elapsed_ms):
        """Move monotonic time on by elapsed_ms (>= 0), dropping buckets that leave the window."""
        ms = self.ms_in_bucket + elapsed_ms
        if ms < self.bucket_ms:
            self.ms_in_bucket = ms
            return
        steps = ms // self.bucket_ms
        self.ms_in_bucket = ms % self.bucket_ms
        if steps >= self.n_buckets:
            self.clear()
            return
        n = self.n_buckets
        b = self._b
        tot = self._tot
        cur = self._cur
        while steps > 0:
            cur += 1
            if cur == n:
                cur = 0
            i = cur
            for d in range(MAX_DRUGS):
                tot[d] -= b[i]
                b[i] = 0
                i += n
            steps -= 1
        self._cur = cur

    def clear(self):
        """Forget everything (a long idle gap, or a new ledger). Keeps bucket phase."""
        for i in range(len(self._b)):
            self._b[i] = 0
        for d in range(MAX_DRUGS):
            self._tot[d] = 0

    def ms_to_next_rotation(self):
        """ms until the next bucket boundary (a total may drop then)."""
        return self.bucket_ms - self.ms_in_bucket

    def snapshot(self):
        """Plain data for persistence (event time): each drug slot's 289 buckets as base64 of its
        int32 slice, little-endian (the Pico and the laptops the emulator runs on), or None when
        the slot holds nothing (its total is 0): one C call per drug in use instead of a thousand
        int-to-text conversions on every periodic save, and no bytes for empty slots."""
        n = self.n_buckets
        mv = memoryview(self._b)
        slots = []
        for d in range(MAX_DRUGS):
            if self._tot[d]:
                # bytes(...) first: MicroPython's b2a_base64 reads only len(array) bytes of an
                # int array
                slots.append(binascii.b2a_base64(bytes(mv[d * n:(d + 1) * n])).decode().strip())
            else:
                slots.append(None)
        return {"bucket_ms": self.bucket_ms, "cur": self._cur, "ms_in_bucket": self.ms_in_bucket,
                "slots_b64": slots}

    def restore(self, snap):
        """Load a snapshot() or one of the older forms ("buckets_b64": the whole array bucket-major,
        or a plain "buckets" list, bucket-major). Raises ValueError (or KeyError/TypeError) when it
        does not match this ledger or a value is out of range; then nothing has changed."""
        n = self.n_buckets
        total = len(self._b)
        if snap["bucket_ms"] != self.bucket_ms:
            raise ValueError("ledger snapshot does not match")
        vals = [0] * total                           # drug-major, as self._b
        if "slots_b64" in snap:
            slots = snap["slots_b64"]
            if not isinstance(slots, list) or len(slots) != MAX_DRUGS:
                raise ValueError("ledger snapshot does not match")
            for d in range(MAX_DRUGS):
                if slots[d] is None:
                    continue
                raw = _b64_ints(slots[d], n)
                for k in range(n):
                    vals[d * n + k] = raw[k]
        else:
            if "buckets_b64" in snap:
                old = _b64_ints(snap["buckets_b64"], total)
            else:
                old = snap["buckets"]
                if len(old) != total:
                    raise ValueError("ledger snapshot does not match")
            for k in range(n):                       # bucket-major -> drug-major
                for d in range(MAX_DRUGS):
                    vals[d * n + k] = old[k * MAX_DRUGS + d]
        for v in vals:
            if not isinstance(v, int) or not 0 <= v < 1 << 30:
                raise ValueError("ledger bucket out of range")
        if not (0 <= snap["cur"] < n and 0 <= snap["ms_in_bucket"] < self.bucket_ms):
            raise ValueError("ledger position out of range")
        for i in range(total):
            self._b[i] = vals[i]
        self._cur = snap["cur"]
        self.ms_in_bucket = snap["ms_in_bucket"]
        for d in range(MAX_DRUGS):
            s = 0
            for k in range(n):
                s += self._b[d * n + k]
            self._tot[d] = s


def _b64_ints(b64, count):
    """count little-endian int32 from base64 text (ValueError when it is not exactly that)."""
    if not isinstance(b64, str):
        raise ValueError("ledger snapshot does not match")
    raw = binascii.a2b_base64(b64.encode())          # MicroPython takes bytes only
    if len(raw) != 4 * count:
        raise ValueError("ledger snapshot does not match")
    return [int.from_bytes(raw[4 * i:4 * i + 4], "little") for i in range(count)]


class PatientHistory:
    """Patient-bolus start times (monotonic (day, ms)) and the lockout reference. Event time.

    capacity: ring size; keep it >= the largest max_per_24h the prescription allows. When full,
    the oldest start is overwritten; if all stored starts are within 24 h the count is `capacity`,
    which is >= max_per_24h, so the gate still refuses (conservative).
    """

    def __init__(self, capacity=48):
        self.capacity = capacity
        self._day = [0] * capacity
        self._ms = [0] * capacity
        self._n = 0
        self._next = 0
        self.lockout_ref_day = None  # None = no lockout reference yet (no lockout)
        self.lockout_ref_ms = 0

    def record_start(self, day, ms):
        """A patient bolus started (delivered) at monotonic (day, ms): counted; starts lockout."""
        self._day[self._next] = day
        self._ms[self._next] = ms
        self._next = (self._next + 1) % self.capacity
        if self._n < self.capacity:
            self._n += 1
        self.mark_lockout(day, ms)

    def mark_lockout(self, day, ms):
        """Start a lockout interval now (also called by the facade at every commit and refill)."""
        self.lockout_ref_day = day
        self.lockout_ref_ms = ms

    def count_in_24h(self, day, ms):
        """Number of recorded starts t with now - t < 24 h (now = (day, ms))."""
        n = 0
        for i in range(self._n):
            if diff_ms(self._day[i], self._ms[i], day, ms, MS_PER_DAY) < MS_PER_DAY:
                n += 1
        return n

    def ms_to_expiry(self, day, ms, k=1):
        """ms until the k-th oldest start still inside the 24-h window leaves it (so the count
        drops by k), or None when fewer than k starts are inside. Event time (allocates)."""
        ages = []
        for i in range(self._n):
            a = diff_ms(self._day[i], self._ms[i], day, ms, MS_PER_DAY)
            if a < MS_PER_DAY:
                ages.append(a)
        if k < 1 or len(ages) < k:
            return None
        ages.sort()
        return MS_PER_DAY - ages[len(ages) - k]

    def lockout_remaining_ms(self, day, ms, lockout_ms):
        """ms of lockout left at now = (day, ms) for an interval lockout_ms (0 = not locked)."""
        if self.lockout_ref_day is None or lockout_ms <= 0:
            return 0
        since = diff_ms(self.lockout_ref_day, self.lockout_ref_ms, day, ms, lockout_ms)
        since = max(since, 0)  # reference in the future (should not happen on a monotonic clock)
        return lockout_ms - since if since < lockout_ms else 0

    def snapshot(self, day=None, ms=None):
        """Plain data for the state record. With now = (day, ms), starts 24 h old or older are
        left out: they can never count again (the clock is monotonic), so the restored history
        answers every query the same, and the record stays small."""
        starts = []
        for k in range(self._n):
            i = (self._next - self._n + k) % self.capacity
            d = self._day[i]
            # now - start >= 24 h: two or more days back, or one day back at a later time of day
            if day is not None and (d < day - 1 or (d == day - 1 and self._ms[i] <= ms)):
                continue
            starts.append([self._day[i], self._ms[i]])
        lock = None if self.lockout_ref_day is None else [self.lockout_ref_day, self.lockout_ref_ms]
        return {"starts": starts, "lockout": lock}

    def restore(self, snap):
        self._n = 0
        self._next = 0
        for day, ms in snap["starts"][-self.capacity:]:
            self._day[self._next] = day
            self._ms[self._next] = ms
            self._next = (self._next + 1) % self.capacity
            self._n += 1
        lock = snap["lockout"]
        if lock is None:
            self.lockout_ref_day = None
            self.lockout_ref_ms = 0
        else:
            self.lockout_ref_day, self.lockout_ref_ms = lock
