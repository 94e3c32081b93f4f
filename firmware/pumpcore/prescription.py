# Prescription ("rx dict") validation, dose projection, review and checksum.
#
# The rx dict is defined in docs/architecture.md; every rule, range and reason code is listed
# with its source in docs/prescription.md.  Research and education software, not a medical
# device; library defaults are examples, not clinical guidance.
#
# Public API (called by the Pump facade's stage/commit and by the host):
#   normalize(rx) -> rx'      deep copy, defaults filled (never raises; non-dicts returned as is)
#   checksum(rx) -> str       16 lowercase hex chars: sha256 over canonical(normalize(rx))
#   canonical(obj) -> bytes   the canonical serialization (documented below)
#   validate(rx, library, current=None, last_increase_age_ms=None, stroke_nl=250)
#       -> (problems, review)   problems: list of [reason, field, details]; [] = acceptable
#   (details: a dict naming what people need to fix the problem: "drug", "value", "limit" or
#   "min"/"max", "unit" in wire units ("ng/day", "ug/mL", "nL", "nL/h", "ms", "count"), and for
#   titration the current dose and the time still to wait; docs/prescription.md lists them)
#   project(rx) -> (daily_volume_numerator, concs) or None   (see below)
#
# Not on the hot path: validate runs once per stage command and may allocate (and use ints above
# 2**30 for intermediate products: MicroPython's long ints are used here only).
#
# Fields are dotted paths: "reservoir.fill_nl", "drugs[0].conc_ug_per_ml",
# "basal.steps[2].rate", "basal.steps[2].start", "basal.days.mon[1].rate",
# "periodic[0].times_min[1]", "patient.lockout_ms";
# "drugs[0]" for dose-level problems (hard_limit, titration_*, start_dose) of drug 0; "" for the rx
# itself.

import hashlib

from pumpcore import reasons as R
from pumpcore import schedule
from pumpcore.library import UNKNOWN_CONC_MAX_UG_PER_ML

# --- ranges (docs/prescription.md gives the reason for each) -----------------------------------
CAPACITIES_NL = (20000000, 40000000)       # SynchroMed II: 20 or 40 mL reservoir
CATHETER_MIN_NL = 1                        # 0 < catheter volume ...
CATHETER_MAX_NL = 1000000                  # ... <= 1 mL
MAX_DRUGS = 4
MAX_STEPS = 13                             # SynchroMed flex: up to 13 rate changes a day
RATE_MIN_NL_PER_H = 2000                   # 0.048 mL/day = 48000 nL/24 h (SynchroMed min flow)
RATE_MAX_NL_PER_H = 1000000                # 1 mL/h
BOLUS_VOLUME_MAX_NL = 1000000              # 1 mL in one bolus
BOLUS_DURATION_MIN_MS = 1
BOLUS_DURATION_MAX_MS = 86400000           # 24 h
BOLUS_RATE_MAX_NL_PER_H = 1000000          # a bolus never runs faster than 1 mL/h
MAX_PERIODIC = 4                           # periodic bolus programs
MAX_PERIODIC_TIMES = 24                    # start times per periodic program
LOCKOUT_MIN_MS = 60000                     # 1 min
LOCKOUT_MAX_MS = 86400000                  # 24 h
PATIENT_MAX_PER_24H = 24
NAME_MAX_LEN = 32
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"
INT_MAX = (1 << 30) - 1                    # any int field above this is "huge" -> invalid
MAX_DEPTH = 12                             # canonical/normalize/diff stop descending here

TOP_KEYS = ("reservoir", "catheter", "drugs", "basal", "periodic", "patient")
RESERVOIR_KEYS = ("capacity_nl", "fill_nl", "low_alert_nl", "empty_nl")
DRUG_KEYS = ("name", "conc_ug_per_ml", "hard_ng_per_day", "soft_ng_per_day")
BASAL_KEYS = ("steps", "days")
PERIODIC_KEYS = ("times_min", "volume_nl", "duration_ms")
PATIENT_KEYS = ("volume_nl", "duration_ms", "lockout_ms", "max_per_24h")

INTERNAL_FIELD = "<internal>"   # field of the problem reported if validation itself failed


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


# --- normalize ---------------------------------------------------------------------------------


def _copy(obj, depth):
    if depth > MAX_DEPTH:
        return obj
    if isinstance(obj, dict):
        out = {}
        for k in obj:
            out[k] = _copy(obj[k], depth + 1)
        return out
    if isinstance(obj, list):
        return [_copy(x, depth + 1) for x in obj]
    return obj


def normalize(rx):
    """Deep copy of rx with the optional parts made explicit; the Pump stores this form.
    - "periodic" missing or None -> []
    - "patient" missing -> None
    - basal "days" missing, None or {} -> None; day keys whose value is None are dropped
    - each drug's "hard_ng_per_day"/"soft_ng_per_day" missing -> None
    Unknown keys are kept (validate refuses them).  Idempotent; never raises; a non-dict rx is
    returned unchanged."""
    if not isinstance(rx, dict):
        return rx
    out = _copy(rx, 0)
    if out.get("periodic") is None:
        out["periodic"] = []
    if "patient" not in out:
        out["patient"] = None
    basal = out.get("basal")
    if isinstance(basal, dict):
        days = basal.get("days")
        if isinstance(days, dict):
            for k in list(days.keys()):
                if days[k] is None:
                    del days[k]
            if not days:
                days = None
        basal["days"] = days
    drugs = out.get("drugs")
    if isinstance(drugs, list):
        for d in drugs:
            if isinstance(d, dict):
                if "hard_ng_per_day" not in d:
                    d["hard_ng_per_day"] = None
                if "soft_ng_per_day" not in d:
                    d["soft_ng_per_day"] = None
    return out


# --- canonical serialization and checksum ------------------------------------------------------
# canonical(obj) is a byte string, identical on CPython and MicroPython:
#   None -> b"n"   True -> b"t"   False -> b"f"   int -> b"i" + decimal + b";"
#   str  -> b"s" + byte length + b":" + utf-8 bytes
#   list/tuple -> b"l" + count + b"[" + items + b"]"
#   dict -> b"d" + count + b"{" + (canonical(key) + canonical(value))
#           sorted by canonical(key) + b"}"
#   anything else (float, bytes, ...; never in a valid rx) -> b"?" + len + b":" + repr
# Deeper than MAX_DEPTH -> b"~" (such an rx is invalid anyway).  Lengths prefix every variable
# part, so two different values never serialize to the same bytes.


def _ser(obj, out, depth):
    if depth > MAX_DEPTH:
        out.append(b"~")
    elif obj is None:
        out.append(b"n")
    elif obj is True:
        out.append(b"t")
    elif obj is False:
        out.append(b"f")
    elif isinstance(obj, int):
        out.append(("i%d;" % obj).encode())
    elif isinstance(obj, str):
        b = obj.encode()
        out.append(("s%d:" % len(b)).encode())
        out.append(b)
    elif isinstance(obj, (list, tuple)):
        out.append(("l%d[" % len(obj)).encode())
        for x in obj:
            _ser(x, out, depth + 1)
        out.append(b"]")
    elif isinstance(obj, dict):
        pairs = []
        for k in obj:
            kb = []
            _ser(k, kb, depth + 1)
            pairs.append((b"".join(kb), obj[k]))
        pairs.sort(key=lambda p: p[0])
        out.append(("d%d{" % len(pairs)).encode())
        for kbytes, v in pairs:
            out.append(kbytes)
            _ser(v, out, depth + 1)
        out.append(b"}")
    else:
        r = repr(obj).encode()
        out.append(("?%d:" % len(r)).encode())
        out.append(r)


def canonical(obj):
    """Canonical bytes of obj (see the table above).  Does NOT normalize."""
    out = []
    _ser(obj, out, 0)
    return b"".join(out)


def checksum(rx):
    """The program's identity: first 16 lowercase hex chars of sha256(canonical(normalize(rx))).
    checksum(rx) == checksum(normalize(rx)); any change of any field changes it."""
    return _checksum_of(normalize(rx))


def _checksum_of(nrx):
    # checksum of an already normalized rx
    digest = hashlib.sha256(canonical(nrx)).digest()
    return "".join(["%02x" % digest[i] for i in range(8)])


# --- field-level differences (review["changes"]) ------------------------------------------------


def _child_path(path, key, unused=False):
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    if path == "":
        return str(key)
    return "%s.%s" % (path, key)


def _key_order(k):
    # display order of dict keys in changes(): by the key's utf-8 bytes (str), else canonical
    return k.encode() if isinstance(k, str) else canonical(k)


def _diff(old, new, path, out, depth, steps_mode):
    # steps_mode: 0 = normal, 1 = this value is a steps list, 2 = this value is one [start, rate]
    if depth > MAX_DEPTH:
        if canonical(old) != canonical(new):
            out.append([path, old, new])
        return
    if isinstance(old, dict) and isinstance(new, dict):
        keys = []
        for k in old:
            keys.append(k)
        for k in new:
            if k not in old:
                keys.append(k)
        keys.sort(key=_key_order)
        for k in keys:
            mode = 0
            if k == "steps":
                mode = 1
            elif path.endswith("basal.days") or path == "basal.days":
                mode = 1
            _diff(old.get(k), new.get(k), _child_path(path, k, False), out, depth + 1, mode)
        return
    if isinstance(old, list) and isinstance(new, list):
        n = len(old) if len(old) > len(new) else len(new)
        for i in range(n):
            o = old[i] if i < len(old) else None
            w = new[i] if i < len(new) else None
            if steps_mode == 2 and i < 2:
                sub = "%s.%s" % (path, ("start", "rate")[i])
            else:
                sub = "%s[%d]" % (path, i)
            _diff(o, w, sub, out, depth + 1, 2 if steps_mode == 1 else 0)
        return
    if isinstance(old, dict) and new is None:
        for k in sorted(old.keys(), key=_key_order):
            mode = 1 if (k == "steps" or path.endswith("days")) else 0
            _diff(old[k], None, _child_path(path, k, False), out, depth + 1, mode)
        return
    if old is None and isinstance(new, dict):
        for k in sorted(new.keys(), key=_key_order):
            mode = 1 if (k == "steps" or path.endswith("days")) else 0
            _diff(None, new[k], _child_path(path, k, False), out, depth + 1, mode)
        return
    if old is None and isinstance(new, list):
        _diff([], new, path, out, depth, steps_mode)
        return
    if isinstance(old, list) and new is None:
        _diff(old, [], path, out, depth, steps_mode)
        return
    if type(old) is not type(new) or old != new:
        out.append([path, old, new])


def changes(current, rx):
    """Field-level differences [[field, old, new], ...] between two (normalized) programs, in a
    deterministic order.  current None (first program) lists every leaf of rx as [field, None, v].
    A leaf that exists on one side only has None on the other side."""
    out = []
    _diff(normalize(current), normalize(rx), "", out, 0, 0)
    return out


# --- projection --------------------------------------------------------------------------------


def _week_segments(basal):
    # ([start_week_min...], [rate...], [integral (x60) at each start...], week total x60)
    starts = []
    rates = []
    cums = []
    total = 0
    for d in range(7):
        steps = schedule.profile_for(basal, d)
        n = len(steps)
        for i in range(n):
            s = d * 1440 + steps[i][0]
            end = d * 1440 + (steps[i + 1][0] if i + 1 < n else 1440)
            starts.append(s)
            rates.append(steps[i][1])
            cums.append(total)
            total += steps[i][1] * (end - s)
    return starts, rates, cums, total


def _week_cum(seg, t):
    # exact basal integral (x60) over week minutes [0, t), 0 <= t < 2 * 10080 (wraps once)
    starts, rates, cums, total = seg
    base = 0
    if t >= 10080:
        t -= 10080
        base = total
    lo = 0
    hi = len(starts) - 1
    while lo < hi:                     # last segment with start <= t
        mid = (lo + hi + 1) // 2
        if starts[mid] <= t:
            lo = mid
        else:
            hi = mid - 1
    return base + cums[lo] + rates[lo] * (t - starts[lo])


def max_basal_24h_numerator(basal):
    """Largest basal volume (x60, nL/h*min) in ANY 24 h window of the weekly schedule, rolling
    over midnight and over the week.  With no per-weekday profiles this is the daily volume.
    (A rolling window can exceed every calendar day when e.g. Monday evening and Tuesday morning
    are both high; the device's dose ledger is rolling, so the projection is too.)
    The window sum is piecewise linear in the window start, with breakpoints where the start or
    the end meets a step boundary: evaluating those starts finds the maximum exactly."""
    if basal.get("days") is None:
        return schedule.daily_volume_numerator(basal["steps"])
    seg = _week_segments(basal)
    best = 0
    for s in seg[0]:
        for a in (s, (s - 1440) % 10080):
            v = _week_cum(seg, a + 1440) - _week_cum(seg, a)
            if v > best:
                best = v
    return best


def project(rx):
    """Projected worst-case 24 h volume of a shape-valid rx as an exact numerator over 60
    (nL/h * min): max rolling 24 h basal + every periodic bolus once + max_per_24h patient
    boluses.  ng of a drug = numerator * conc_ug_per_ml // 60000; volume_nl = numerator // 60.
    Caller guarantees the shape (validate does)."""
    num = max_basal_24h_numerator(rx["basal"])
    extra_nl = 0
    for p in rx.get("periodic") or []:
        extra_nl += len(p["times_min"]) * p["volume_nl"]
    pat = rx.get("patient")
    if pat is not None:
        extra_nl += pat["max_per_24h"] * pat["volume_nl"]
    return num + 60 * extra_nl


# --- validation --------------------------------------------------------------------------------


class _V:
    # Collects problems; one per validate call (allocation is fine here).
    def __init__(self):
        self.problems = []
        self.soft_raised = []

    def add(self, reason, field, details=None):
        self.problems.append([reason, field, details if details is not None else {}])

    def rng(self, reason, field, value, lo, hi, unit, extra=None):
        # a value outside lo..hi (inclusive; None: no bound on that side)
        d = {"value": value, "min": lo, "max": hi, "unit": unit}
        if extra:
            for k in extra:
                d[k] = extra[k]
        self.add(reason, field, d)

    def int_field(self, d, key, path):
        """d[key] as an int in 0..INT_MAX, else an invalid problem and None."""
        if key not in d:
            self.add(R.INVALID, path, {"expected": "present"})
            return None
        x = d[key]
        if not _is_int(x) or x < 0 or x > INT_MAX:
            self.add(R.INVALID, path, {"expected": "whole number 0..%d" % INT_MAX})
            return None
        return x

    def keys(self, d, allowed, path):
        """d must be a dict with only allowed keys; returns False (and records) otherwise."""
        if not isinstance(d, dict):
            self.add(R.INVALID, path, {"expected": "object"})
            return False
        for k in d:
            if not isinstance(k, str) or k not in allowed:
                self.add(R.INVALID, _child_path(path, k if isinstance(k, str) else "?", False),
                         {"expected": "no such key"})
        return True


def _check_reservoir(v, res):
    if not v.keys(res, RESERVOIR_KEYS, "reservoir"):
        return
    cap = v.int_field(res, "capacity_nl", "reservoir.capacity_nl")
    fill = v.int_field(res, "fill_nl", "reservoir.fill_nl")
    low = v.int_field(res, "low_alert_nl", "reservoir.low_alert_nl")
    empty = v.int_field(res, "empty_nl", "reservoir.empty_nl")
    if cap is not None and cap not in CAPACITIES_NL:
        v.add(R.RESERVOIR_CAPACITY, "reservoir.capacity_nl",
              {"value": cap, "allowed": list(CAPACITIES_NL), "unit": "nL"})
        cap = None
    cap_or_max = cap if cap is not None else CAPACITIES_NL[-1]
    if empty is not None and low is not None and empty >= low:
        v.rng(R.ALERT_RANGE, "reservoir.empty_nl", empty, 0, low - 1, "nL")
    if low is not None and low >= cap_or_max:
        v.rng(R.ALERT_RANGE, "reservoir.low_alert_nl", low, None, cap_or_max - 1, "nL")
    if fill is not None:
        if fill > cap_or_max or (empty is not None and fill <= empty) or fill == 0:
            v.rng(R.FILL_RANGE, "reservoir.fill_nl", fill,
                  (empty + 1) if empty is not None else 1, cap_or_max, "nL")


def _check_catheter(v, cat):
    if not v.keys(cat, ("volume_nl",), "catheter"):
        return
    vol = v.int_field(cat, "volume_nl", "catheter.volume_nl")
    if vol is not None and not (CATHETER_MIN_NL <= vol <= CATHETER_MAX_NL):
        v.rng(R.CATHETER_RANGE, "catheter.volume_nl", vol, CATHETER_MIN_NL, CATHETER_MAX_NL, "nL")


def _check_limit(v, d, key, path):
    # None (absent) or an int 0..INT_MAX; returns (given, value)
    if key not in d or d[key] is None:
        return False, None
    x = d[key]
    if not _is_int(x) or x < 0 or x > INT_MAX:
        v.add(R.INVALID, path, {"expected": "whole number 0..%d or none" % INT_MAX})
        return True, None
    return True, x


def _check_drugs(v, drugs, library):
    """Returns a list of (index, name, conc or None, entry or None, soft, hard) per drug, and
    records in v.soft_raised the drugs whose explicit soft limit is above the library's."""
    out = []
    if not isinstance(drugs, list):
        v.add(R.INVALID, "drugs", {"expected": "list"})
        return out
    if len(drugs) == 0:
        v.add(R.NO_DRUGS, "drugs")
        return out
    if len(drugs) > MAX_DRUGS:
        v.rng(R.TOO_MANY_DRUGS, "drugs", len(drugs), 1, MAX_DRUGS, "drugs")
    seen = []
    for i in range(len(drugs)):
        d = drugs[i]
        path = "drugs[%d]" % i
        if not v.keys(d, DRUG_KEYS, path):
            continue
        name = d.get("name")
        ok_name = isinstance(name, str) and 0 < len(name) <= NAME_MAX_LEN
        if ok_name:
            for ch in name:
                if ch not in NAME_CHARS:
                    ok_name = False
                    break
        if not ok_name:
            v.add(R.INVALID, path + ".name", {"expected": "1..%d of a-z 0-9 _ -" % NAME_MAX_LEN})
            name = None
        elif name in seen:
            v.add(R.DUPLICATE_DRUG, path + ".name", {"drug": name})
        else:
            seen.append(name)
        entry = library.entry(name) if (name is not None and library is not None) else None
        conc = v.int_field(d, "conc_ug_per_ml", path + ".conc_ug_per_ml")
        if conc is not None:
            if entry is not None:
                lo = entry.conc_min_ug_per_ml
                hi = entry.conc_max_ug_per_ml
            else:
                lo = 1
                hi = UNKNOWN_CONC_MAX_UG_PER_ML
            if not (lo <= conc <= hi):
                v.rng(R.CONCENTRATION_RANGE, path + ".conc_ug_per_ml", conc, lo, hi, "ug/mL",
                      {"drug": name, "in_library": entry is not None})
        hpath = path + ".hard_ng_per_day"
        spath = path + ".soft_ng_per_day"
        hgiven, hard = _check_limit(v, d, "hard_ng_per_day", hpath)
        sgiven, soft = _check_limit(v, d, "soft_ng_per_day", spath)
        hard_x = hard
        soft_x = soft
        if entry is not None:
            # only the hard limit is never loosened; a prescription may set its own soft limit
            # anywhere up to the (effective) hard limit, and above the library's soft it needs
            # the same confirmation as a soft-limit breach (review["soft_raised"])
            if hard is not None and hard > entry.hard_ng_per_day:
                v.add(R.LIMIT_LOOSENS_LIBRARY, hpath,
                      {"drug": name, "value": hard, "limit": entry.hard_ng_per_day,
                       "unit": "ng/day"})
                hard = None
            if hard is None:
                hard = entry.hard_ng_per_day
            if soft is not None and soft > hard and (hard_x is None or hard_x >= soft):
                v.add(R.LIMIT_LOOSENS_LIBRARY, spath,
                      {"drug": name, "value": soft, "limit": hard, "unit": "ng/day"})
            elif soft is not None and soft > entry.soft_ng_per_day:
                v.soft_raised.append(name)
            if soft is None:
                soft = entry.soft_ng_per_day
        elif name is not None:
            if not hgiven:
                v.add(R.UNKNOWN_DRUG_NEEDS_LIMITS, hpath, {"drug": name, "limit": "hard"})
            if not sgiven:
                v.add(R.UNKNOWN_DRUG_NEEDS_LIMITS, spath, {"drug": name, "limit": "soft"})
        if hard_x is not None and soft_x is not None and soft_x > hard_x:
            # explicit soft above explicit hard
            v.add(R.INVALID, spath, {"drug": name, "value": soft_x, "max": hard_x,
                                     "unit": "ng/day", "expected": "soft limit <= hard limit"})
        if soft is not None and hard is not None and soft > hard:
            soft = hard   # an explicit hard below the library soft also lowers the soft limit
        if name is not None:
            out.append((i, name, conc, entry, soft, hard))
    return out


def _check_steps(v, steps, path):
    """True when steps are shape-valid (usable for projection), range problems aside."""
    if not isinstance(steps, list) or len(steps) == 0:
        v.add(R.INVALID, path, {"expected": "1..%d steps [start_min, rate]" % MAX_STEPS})
        return False
    ok = True
    if len(steps) > MAX_STEPS:
        v.rng(R.TOO_MANY_STEPS, path, len(steps), 1, MAX_STEPS, "steps")
    prev = -1
    for i in range(len(steps)):
        st = steps[i]
        sp = "%s[%d]" % (path, i)
        if not isinstance(st, list) or len(st) != 2:
            v.add(R.INVALID, sp, {"expected": "[start_min, rate]"})
            ok = False
            continue
        start = st[0]
        rate = st[1]
        if not _is_int(start) or start < 0 or start > INT_MAX:
            v.add(R.INVALID, sp + ".start", {"expected": "minute of day"})
            ok = False
        else:
            if (i == 0 and start != 0) or start <= prev or start >= 1440:
                v.add(R.STEP_ORDER, sp + ".start",
                      {"value": start, "min": 0 if i == 0 else prev + 1,
                       "max": 0 if i == 0 else 1439, "unit": "min"})
                ok = False
            prev = start
        if not _is_int(rate) or rate < 0 or rate > INT_MAX:
            v.add(R.INVALID, sp + ".rate", {"expected": "whole number"})
            ok = False
        elif rate != 0 and not (RATE_MIN_NL_PER_H <= rate <= RATE_MAX_NL_PER_H):
            v.rng(R.RATE_RANGE, sp + ".rate", rate, RATE_MIN_NL_PER_H, RATE_MAX_NL_PER_H, "nL/h",
                  {"zero_ok": True})
    return ok


def _check_basal(v, basal):
    if not v.keys(basal, BASAL_KEYS, "basal"):
        return False
    if "steps" not in basal:
        v.add(R.INVALID, "basal.steps", {"expected": "present"})
        return False
    ok = _check_steps(v, basal["steps"], "basal.steps")
    days = basal.get("days")
    if days is not None:
        if not isinstance(days, dict):
            v.add(R.INVALID, "basal.days", {"expected": "object"})
            return False
        for k in days:
            if not isinstance(k, str) or k not in schedule.WEEKDAYS:
                v.add(R.INVALID, "basal.days", {"expected": "mon..sun"})
                ok = False
        for k in schedule.WEEKDAYS:
            if k in days and days[k] is not None:
                if not _check_steps(v, days[k], "basal.days." + k):
                    ok = False
    return ok


def _check_bolus_common(v, b, path, stroke_nl):
    vol = v.int_field(b, "volume_nl", path + ".volume_nl")
    dur = v.int_field(b, "duration_ms", path + ".duration_ms")
    if vol is not None and not (stroke_nl <= vol <= BOLUS_VOLUME_MAX_NL):
        v.rng(R.BOLUS_RANGE, path + ".volume_nl", vol, stroke_nl, BOLUS_VOLUME_MAX_NL, "nL")
    if dur is not None:
        if not (BOLUS_DURATION_MIN_MS <= dur <= BOLUS_DURATION_MAX_MS):
            v.rng(R.BOLUS_RANGE, path + ".duration_ms", dur, BOLUS_DURATION_MIN_MS,
                  BOLUS_DURATION_MAX_MS, "ms")
        elif vol is not None and vol * 3600000 > BOLUS_RATE_MAX_NL_PER_H * dur:
            # a bolus never runs faster than 1 mL/h: the shortest duration for this volume
            v.rng(R.BOLUS_RANGE, path + ".duration_ms", dur,
                  (vol * 3600000 + BOLUS_RATE_MAX_NL_PER_H - 1) // BOLUS_RATE_MAX_NL_PER_H,
                  BOLUS_DURATION_MAX_MS, "ms", {"max_rate_nl_per_h": BOLUS_RATE_MAX_NL_PER_H})
    return vol, dur


def _check_periodic(v, periodic, stroke_nl):
    """Returns (shape_ok, [(volume_nl, path)])."""
    vols = []
    if not isinstance(periodic, list):
        v.add(R.INVALID, "periodic", {"expected": "list"})
        return False, vols
    if len(periodic) > MAX_PERIODIC:
        v.rng(R.BOLUS_RANGE, "periodic", len(periodic), 0, MAX_PERIODIC, "programs")
    ok = True
    starts = []   # (start_ms, duration_ms, path)
    for k in range(len(periodic)):
        p = periodic[k]
        path = "periodic[%d]" % k
        if not v.keys(p, PERIODIC_KEYS, path):
            ok = False
            continue
        vol, dur = _check_bolus_common(v, p, path, stroke_nl)
        if vol is None:
            ok = False
        else:
            vols.append((vol, path + ".volume_nl"))
        times = p.get("times_min")
        tpath = path + ".times_min"
        if not isinstance(times, list) or len(times) == 0:
            v.add(R.INVALID, tpath, {"expected": "1..%d start times" % MAX_PERIODIC_TIMES})
            ok = False
            continue
        if len(times) > MAX_PERIODIC_TIMES:
            v.rng(R.BOLUS_RANGE, tpath, len(times), 1, MAX_PERIODIC_TIMES, "times")
        prev = -1
        for j in range(len(times)):
            t = times[j]
            jp = "%s[%d]" % (tpath, j)
            if not _is_int(t) or t < 0 or t > INT_MAX:
                v.add(R.INVALID, jp, {"expected": "minute of day"})
                ok = False
                continue
            if t >= 1440 or t <= prev:
                v.rng(R.BOLUS_RANGE, jp, t, prev + 1, 1439, "min")
            else:
                if dur is not None:
                    starts.append((t * 60000, dur, jp))
            prev = t
    # periodic boluses never overlap (also across programs, and over midnight)
    starts.sort(key=lambda s: s[0])
    n = len(starts)
    for i in range(n):
        if n < 2:
            break
        t, dur, jp = starts[i]
        if i + 1 < n:
            nxt = starts[i + 1][0]
            npath = starts[i + 1][2]
        else:
            nxt = starts[0][0] + 86400000
            npath = starts[0][2]
        if t + dur > nxt:
            v.add(R.BOLUS_RANGE, npath, {"value": nxt // 60000 % 1440, "min": (t + dur) // 60000
                                         % 1440, "unit": "min", "overlaps": jp})
    return ok, vols


def _check_patient(v, pat, stroke_nl):
    """Returns (shape_ok, volume_nl or None)."""
    if pat is None:
        return True, None
    if not v.keys(pat, PATIENT_KEYS, "patient"):
        return False, None
    vol, dur = _check_bolus_common(v, pat, "patient", stroke_nl)
    lock = v.int_field(pat, "lockout_ms", "patient.lockout_ms")
    mx = v.int_field(pat, "max_per_24h", "patient.max_per_24h")
    if lock is not None:
        if not (LOCKOUT_MIN_MS <= lock <= LOCKOUT_MAX_MS) or (dur is not None and lock < dur):
            lo = LOCKOUT_MIN_MS if dur is None or dur < LOCKOUT_MIN_MS else dur
            v.rng(R.BOLUS_RANGE, "patient.lockout_ms", lock, lo, LOCKOUT_MAX_MS, "ms")
    if mx is not None and not (1 <= mx <= PATIENT_MAX_PER_24H):
        v.rng(R.BOLUS_RANGE, "patient.max_per_24h", mx, 1, PATIENT_MAX_PER_24H, "count")
    ok = vol is not None and dur is not None and lock is not None and mx is not None
    return ok, vol


def _age_for(last_increase_age_ms, name):
    # None = never increased; int = same age for every drug; dict = per drug (missing = never)
    if isinstance(last_increase_age_ms, dict):
        a = last_increase_age_ms.get(name)
    else:
        a = last_increase_age_ms
    if _is_int(a):
        return a
    return None


def _analyze(rx, library, stroke_nl):
    """(problems, drugs_info, numerator or None, rx) for the normalized rx."""
    v = _V()
    if not isinstance(rx, dict):
        v.add(R.INVALID, "", {"expected": "object"})
        return v, [], None
    for k in rx:
        if not isinstance(k, str) or k not in TOP_KEYS:
            v.add(R.INVALID, k if isinstance(k, str) else "?", {"expected": "no such key"})
    for k in ("reservoir", "catheter", "drugs", "basal"):
        if k not in rx:
            v.add(R.INVALID, k, {"expected": "present"})
    if "reservoir" in rx:
        _check_reservoir(v, rx["reservoir"])
    if "catheter" in rx:
        _check_catheter(v, rx["catheter"])
    drugs = _check_drugs(v, rx.get("drugs"), library) if "drugs" in rx else []
    basal_ok = "basal" in rx and _check_basal(v, rx["basal"])
    per_ok, per_vols = _check_periodic(v, rx.get("periodic"), stroke_nl)
    pat_ok, pat_vol = _check_patient(v, rx.get("patient"), stroke_nl)
    # per-bolus drug amount vs the library's max bolus
    bolus_vols = list(per_vols)
    if pat_vol is not None:
        bolus_vols.append((pat_vol, "patient.volume_nl"))
    for (i, name, conc, entry, soft, hard) in drugs:
        if conc is None or entry is None or entry.max_bolus_ng is None:
            continue
        for vol, path in bolus_vols:
            if vol * conc // 1000 > entry.max_bolus_ng:
                v.add(R.BOLUS_AMOUNT, path, {"drug": name, "value": vol * conc // 1000,
                                             "limit": entry.max_bolus_ng, "unit": "ng",
                                             "volume_nl": vol, "conc_ug_per_ml": conc})
    num = None
    if basal_ok and per_ok and pat_ok:
        num = project(rx)
    return v, drugs, num


def validate(rx, library, current=None, last_increase_age_ms=None, stroke_nl=250,
             now_mono_ms_since_last_increase=None):
    """Validate rx against library (and against the committed program `current` for titration).

    current               the committed (normalized) rx, or None for a first program.
    last_increase_age_ms  ms since the last committed increase of a drug's projected daily dose:
                          None = never (no interval rule applies), an int = the same for every
                          drug, or a dict {drug_name: ms or None}.  (now_mono_ms_since_last_increase
                          is accepted as an alias.)  The facade measures it on the monotonic clock.
    stroke_nl             pump stroke volume: the smallest bolus volume accepted.
    Returns (problems, review); problems [] means the program may be committed (after confirming
    review["soft_breaches"], if any).  Never raises on malformed input."""
    if last_increase_age_ms is None:
        last_increase_age_ms = now_mono_ms_since_last_increase
    nrx = normalize(rx)
    review = {"checksum": _checksum_of(nrx), "daily_ng": {}, "soft_breaches": [],
              "soft_raised": [], "daily_volume_nl": None, "limits": {}, "units": {},
              "changes": []}
    problems = []
    ncur = None
    try:
        v, drugs, num = _analyze(nrx, library, stroke_nl)
        problems = v.problems
        if num is not None:
            review["daily_volume_nl"] = num // 60
        # current program's projection per drug (titration reference)
        cur_ng = None
        if current is not None:
            cur_ng = {}
            ncur = normalize(current)
            _cv, cdrugs, cnum = _analyze(ncur, library, stroke_nl)
            if cnum is not None:
                for (i, name, conc, entry, soft, hard) in cdrugs:
                    if conc is not None:
                        cur_ng[name] = cnum * conc // 60000
        review["soft_raised"] = sorted(v.soft_raised)
        for (i, name, conc, entry, soft, hard) in drugs:
            review["limits"][name] = [soft, hard]
            review["units"][name] = dose_unit(entry, hard)
            if conc is None or num is None:
                continue
            ng = num * conc // 60000
            review["daily_ng"][name] = ng
            dpath = "drugs[%d]" % i
            if hard is not None and ng > hard:
                problems.append([R.HARD_LIMIT, dpath, {"drug": name, "value": ng, "limit": hard,
                                                       "unit": "ng/day"}])
            if soft is not None and ng > soft:
                review["soft_breaches"].append(name)
            if entry is None:
                continue
            cur = cur_ng.get(name) if cur_ng is not None else None
            if cur is None or cur == 0:
                if entry.start_max_ng_per_day is not None and ng > entry.start_max_ng_per_day:
                    problems.append([R.START_DOSE, dpath, {
                        "drug": name, "value": ng, "limit": entry.start_max_ng_per_day,
                        "unit": "ng/day", "first_program": current is None}])
            elif ng > cur:
                allowed = entry.allowed_increase_ng_per_day(cur)
                if allowed is not None and ng - cur > allowed:
                    problems.append([R.TITRATION_STEP, dpath, {
                        "drug": name, "value": ng, "current": cur, "limit": cur + allowed,
                        "unit": "ng/day", "step_ng_per_day": entry.step_ng_per_day,
                        "step_pct": entry.step_pct}])
                age = _age_for(last_increase_age_ms, name)
                if entry.step_interval_ms is not None and age is not None \
                        and age < entry.step_interval_ms:
                    problems.append([R.TITRATION_INTERVAL, dpath, {
                        "drug": name, "value": ng, "current": cur,
                        "interval_ms": entry.step_interval_ms,
                        "wait_ms": entry.step_interval_ms - age, "unit": "ng/day"}])
        review["soft_breaches"].sort()
        out = []
        _diff(ncur, nrx, "", out, 0, 0)
        review["changes"] = out
    except Exception:  # defensive: a validation bug must refuse the program, never crash the pump
        problems.append([R.INVALID, INTERNAL_FIELD, {}])
    return problems, review


def dose_unit(entry, hard_ng_per_day=None):
    """How people read a drug's amounts: the library's dose_unit, else "mg" when its hard limit
    is at least 1 mg/day (mg/day and mg/mL), else "ug"."""
    if entry is not None:
        return entry.dose_unit
    if hard_ng_per_day is not None and hard_ng_per_day >= 1000000:
        return "mg"
    return "ug"


def library_conflicts(rx, library, stroke_nl=250):
    """Problems a committed program has under another library: the library-dependent problems
    of validate() except the ones about changing a program (titration, start). [] = it fits."""
    problems, review = validate(rx, library, None, None, stroke_nl)
    out = []
    for p in problems:
        if p[0] in R.LIBRARY_PROBLEMS and p[0] not in (R.TITRATION_STEP, R.TITRATION_INTERVAL,
                                                       R.START_DOSE):
            out.append(p)
    return out, review


def increased_drugs(rx, current, library):
    """Names of drugs whose projected daily dose rises from current to rx (the facade records the
    increase time for these at commit, for titration_interval).  Both must be valid programs;
    a drug new in rx (or current None) counts as increased."""
    out = []
    nrx = normalize(rx)
    _, drugs, num = _analyze(nrx, library, 1)
    cur = {}
    if current is not None:
        _, cdrugs, cnum = _analyze(normalize(current), library, 1)
        if cnum is not None:
            for (i, name, conc, entry, soft, hard) in cdrugs:
                if conc is not None:
                    cur[name] = cnum * conc // 60000
    if num is None:
        return out
    for (i, name, conc, entry, soft, hard) in drugs:
        if conc is None:
            continue
        ng = num * conc // 60000
        if name not in cur or ng > cur[name]:
            out.append(name)
    out.sort()
    return out
