# The drug library the pump enforces (hard limits refuse a program, soft limits need confirmation),
# held as DATA: a record a clinician loads (library_stage + library_commit), validated here as
# strictly as a prescription, persisted by the shell as a MACed record (pumpfw.storage LIBRARY).
# The firmware ships no library values: factory provisioning writes the project's example library
# (host/pumphost/data/library-example.toml, EXAMPLES, NOT CLINICAL GUIDANCE; sources per value in
# that file and docs/prescription.md). A pump without a library refuses every program
# (reasons.NO_LIBRARY) until one is loaded.
#
# Record (plain data, the same on the wire, on flash and in the host's file converter):
#   {"name": str, "version": str, "fields": [FIELDS...], "drugs": [[value per FIELDS], ...]}
# Rows are lists in FIELDS order (compact: a full library fits one protocol line). Units: conc in
# ug/mL (= ng/uL), daily amounts in ng per 24 h, bolus amounts in ng, time in ms, percent as an int.
# None means "no such rule in the library" (the rule is not applied), never 0. dose_unit ("mg" or
# "ug") only says how people read this drug's amounts (mg/day and mg/mL, or ug/day and ug/mL).
#
# Who calls it: the Pump facade (validate_record, Library.from_record, compare, the conflict check
# through pumpcore.prescription), pumpcore.prescription.validate (entries), the shell (boot), the
# host (offline checks, display).

from pumpcore import reasons as R

# Sanity maximum concentration for a drug WITHOUT a library entry (and the largest any library
# may allow): 100 mg/mL, above every labelled intrathecal concentration in DOMAIN.md.
UNKNOWN_CONC_MAX_UG_PER_ML = 100000

MS_PER_MIN = 60000
MS_PER_HOUR = 3600000
MAX_DRUGS = 12                 # a full record stays within one protocol line (docs/protocol.md)
NAME_MAX = 48                  # library name: printable ASCII
VERSION_MAX = 24
DRUG_NAME_MAX = 32             # as prescription drug names
DRUG_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"
INT_MAX = (1 << 30) - 1
STEP_PCT_MAX = 100             # at most doubling per step
INTERVAL_MIN_MS = MS_PER_MIN
INTERVAL_MAX_MS = 7 * 24 * MS_PER_HOUR   # the facade measures increase ages up to 7 days
DOSE_UNITS = ("mg", "ug")

FIELDS = ("name", "conc_min_ug_per_ml", "conc_max_ug_per_ml", "soft_ng_per_day",
          "hard_ng_per_day", "max_bolus_ng", "step_ng_per_day", "step_pct", "step_interval_ms",
          "start_max_ng_per_day", "dose_unit")
RECORD_KEYS = ("name", "version", "fields", "drugs")


class DrugEntry:
    """One library entry. All fields are plain ints (or None where documented) and a name.

    name                   lowercase drug name
    conc_min_ug_per_ml     lowest accepted concentration (inclusive)
    conc_max_ug_per_ml     highest accepted concentration (inclusive)
    soft_ng_per_day        projected daily dose above this needs confirmation (soft limit)
    hard_ng_per_day        projected daily dose above this is refused (hard limit)
    max_bolus_ng           largest amount in ONE bolus (periodic or patient); None = not limited
    step_ng_per_day        largest increase of projected daily dose per program change, absolute;
                           None = no absolute allowance
    step_pct               largest increase in percent of the current projected daily dose;
                           None = no percent allowance.  Allowed increase =
                           max(step_ng_per_day or 0, current * step_pct // 100).  If both are None
                           the drug has no titration-step rule.
    step_interval_ms       minimum time between two increases; None = no interval rule
    start_max_ng_per_day   largest projected daily dose when the drug starts (first program, drug
                           newly added, or current projected dose 0); None = no start rule
    dose_unit              "mg" or "ug": how people read this drug's amounts (display only)
    """

    def __init__(self, name, conc_min_ug_per_ml, conc_max_ug_per_ml, soft_ng_per_day,
                 hard_ng_per_day, max_bolus_ng=None, step_ng_per_day=None, step_pct=None,
                 step_interval_ms=None, start_max_ng_per_day=None, dose_unit="ug"):
        self.name = name
        self.conc_min_ug_per_ml = conc_min_ug_per_ml
        self.conc_max_ug_per_ml = conc_max_ug_per_ml
        self.soft_ng_per_day = soft_ng_per_day
        self.hard_ng_per_day = hard_ng_per_day
        self.max_bolus_ng = max_bolus_ng
        self.step_ng_per_day = step_ng_per_day
        self.step_pct = step_pct
        self.step_interval_ms = step_interval_ms
        self.start_max_ng_per_day = start_max_ng_per_day
        self.dose_unit = dose_unit

    def allowed_increase_ng_per_day(self, current_ng_per_day):
        """Largest allowed increase from current_ng_per_day, or None when no step rule applies."""
        if self.step_ng_per_day is None and self.step_pct is None:
            return None
        allowed = 0
        if self.step_ng_per_day is not None:
            allowed = self.step_ng_per_day
        if self.step_pct is not None:
            by_pct = current_ng_per_day * self.step_pct // 100
            if by_pct > allowed:
                allowed = by_pct
        return allowed

    def row(self):
        """The record row: values in FIELDS order."""
        return [getattr(self, f) for f in FIELDS]

    def to_dict(self):
        """Plain-dict form keyed by FIELDS (for the host)."""
        out = {}
        for f in FIELDS:
            out[f] = getattr(self, f)
        return out


class Library:
    """A set of DrugEntry objects keyed by lowercase name, with the name and version people give
    it and the checksum of its record (its identity: what `library show` prints)."""

    def __init__(self, entries=(), name="", version="", checksum=None):
        self._entries = {}
        for e in entries:
            self._entries[e.name] = e
        self.name = name
        self.version = version
        self.checksum = checksum if checksum is not None else record_checksum(self.record())

    def entry(self, name):
        """The DrugEntry for name, or None (unknown drug: explicit limits required)."""
        if not isinstance(name, str):
            return None
        return self._entries.get(name)

    def names(self):
        """Sorted list of the drug names with an entry."""
        out = list(self._entries.keys())
        out.sort()
        return out

    def record(self):
        """The library as its record (drugs sorted by name)."""
        return {"name": self.name, "version": self.version, "fields": list(FIELDS),
                "drugs": [self._entries[n].row() for n in self.names()]}

    def identity(self):
        return {"name": self.name, "version": self.version, "checksum": self.checksum}

    def to_dict(self):
        """{name: entry dict} for the host."""
        out = {}
        for name in self._entries:
            out[name] = self._entries[name].to_dict()
        return out

    @staticmethod
    def from_record(record):
        """The Library of a record that validate_record accepted (raises on a malformed one)."""
        entries = []
        for row in record["drugs"]:
            entries.append(DrugEntry(*row))
        return Library(entries, record["name"], record["version"], record_checksum(record))


def record_checksum(record):
    """16 lowercase hex digits: sha256 over the canonical form of the record (the same canonical
    form as a prescription's checksum, pumpcore.prescription.canonical)."""
    import hashlib

    from pumpcore.prescription import canonical
    rec = {"name": record["name"], "version": record["version"], "fields": list(record["fields"]),
           "drugs": sorted([list(r) for r in record["drugs"]], key=lambda r: str(r[0]))}
    digest = hashlib.sha256(canonical(rec)).digest()
    return "".join(["%02x" % digest[i] for i in range(8)])


# --- validation --------------------------------------------------------------------------------
# problems: [reason, field, details]; reason INVALID (type, shape, unknown or missing key, name)
# or LIBRARY_RANGE (a value outside its bounds or inconsistent with another); details name the
# value, its bounds and the unit ("ng/day", "ug/mL", "ng", "ms", "%").


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _printable(s, max_len):
    if not isinstance(s, str) or not (0 < len(s) <= max_len):
        return False
    for ch in s:
        if not (" " <= ch <= "~"):
            return False
    return True


def _drug_name_ok(name):
    if not isinstance(name, str) or not (0 < len(name) <= DRUG_NAME_MAX):
        return False
    for ch in name:
        if ch not in DRUG_NAME_CHARS:
            return False
    return True


class _Checker:
    def __init__(self):
        self.problems = []

    def add(self, reason, field, details=None):
        self.problems.append([reason, field, details or {}])

    def int_in(self, v, field, lo, hi, unit, optional=False):
        """v as an int within lo..hi (inclusive), else a problem; None passes when optional."""
        if v is None and optional:
            return True
        if not _is_int(v) or v < 0 or v > INT_MAX:
            self.add(R.INVALID, field, {"value": v if _is_int(v) else None,
                                        "expected": "whole number" + (" or none" if optional
                                                                      else "")})
            return False
        if v < lo or v > hi:
            self.add(R.LIBRARY_RANGE, field, {"value": v, "min": lo, "max": hi, "unit": unit})
            return False
        return True


def validate_record(record):
    """-> (problems, Library or None). problems [] means the record may be loaded; each problem is
    [reason, field, details]. Never raises on malformed input."""
    c = _Checker()
    try:
        _check(c, record)
    except Exception:   # defensive: a validation bug refuses the library, never crashes the pump
        c.add(R.INVALID, "<internal>")
    if c.problems:
        return c.problems, None
    return [], Library.from_record(record)


def _check(c, record):
    if not isinstance(record, dict):
        c.add(R.INVALID, "", {"expected": "object"})
        return
    for k in record:
        if k not in RECORD_KEYS:
            c.add(R.INVALID, k if isinstance(k, str) else "?", {"expected": "no such key"})
    for k in RECORD_KEYS:
        if k not in record:
            c.add(R.INVALID, k, {"expected": "present"})
    if "name" in record and not _printable(record["name"], NAME_MAX):
        c.add(R.INVALID, "name", {"expected": "1..%d printable characters" % NAME_MAX})
    if "version" in record and not _printable(record["version"], VERSION_MAX):
        c.add(R.INVALID, "version", {"expected": "1..%d printable characters" % VERSION_MAX})
    fields = record.get("fields")
    if "fields" in record and (not isinstance(fields, list) or tuple(fields) != FIELDS):
        c.add(R.INVALID, "fields", {"expected": ",".join(FIELDS)})
        return
    drugs = record.get("drugs")
    if "drugs" not in record:
        return
    if not isinstance(drugs, list):
        c.add(R.INVALID, "drugs", {"expected": "list"})
        return
    if not (1 <= len(drugs) <= MAX_DRUGS):
        c.add(R.LIBRARY_RANGE, "drugs", {"value": len(drugs), "min": 1, "max": MAX_DRUGS,
                                         "unit": "drugs"})
    seen = []
    for i in range(len(drugs)):
        _check_row(c, drugs[i], "drugs[%d]" % i, seen)


def _check_row(c, row, path, seen):
    if not isinstance(row, list) or len(row) != len(FIELDS):
        c.add(R.INVALID, path, {"expected": "%d values" % len(FIELDS)})
        return
    name = row[0]
    if not _drug_name_ok(name):
        c.add(R.INVALID, path + ".name", {"expected": "1..%d of a-z 0-9 _ -" % DRUG_NAME_MAX})
    elif name in seen:
        c.add(R.DUPLICATE_DRUG, path + ".name", {"drug": name})
    else:
        seen.append(name)
    drug = name if isinstance(name, str) else None
    n0 = len(c.problems)
    cmin, cmax, soft, hard, mbolus, step, pct, interval, start, unit = row[1:]
    ok_c = c.int_in(cmin, path + ".conc_min_ug_per_ml", 1, UNKNOWN_CONC_MAX_UG_PER_ML, "ug/mL")
    if ok_c:
        c.int_in(cmax, path + ".conc_max_ug_per_ml", cmin, UNKNOWN_CONC_MAX_UG_PER_ML, "ug/mL")
    if c.int_in(hard, path + ".hard_ng_per_day", 1, INT_MAX, "ng/day"):
        c.int_in(soft, path + ".soft_ng_per_day", 1, hard, "ng/day")
        c.int_in(mbolus, path + ".max_bolus_ng", 1, hard, "ng", optional=True)
        c.int_in(step, path + ".step_ng_per_day", 1, hard, "ng/day", optional=True)
        c.int_in(start, path + ".start_max_ng_per_day", 1, hard, "ng/day", optional=True)
    c.int_in(pct, path + ".step_pct", 1, STEP_PCT_MAX, "%", optional=True)
    c.int_in(interval, path + ".step_interval_ms", INTERVAL_MIN_MS, INTERVAL_MAX_MS, "ms",
             optional=True)
    if unit not in DOSE_UNITS:
        c.add(R.INVALID, path + ".dose_unit", {"expected": "mg or ug"})
    for p in c.problems[n0:]:
        p[2]["drug"] = drug


# --- comparing two libraries (the review of a library change) ------------------------------------
# A change LOOSENS a drug when a program could now do something the old library refused: a wider
# concentration range, a higher soft/hard/bolus/start limit or step, a shorter interval, a rule
# removed (None), or the drug removed (its programs then need only explicit limits).
_HIGHER = ("conc_max_ug_per_ml", "soft_ng_per_day", "hard_ng_per_day", "max_bolus_ng",
           "step_ng_per_day", "step_pct", "start_max_ng_per_day")


def _looser(field, old, new):
    if old is None:
        return False          # no rule before: nothing to loosen
    if new is None:
        return True           # the rule is gone
    if field == "conc_min_ug_per_ml" or field == "step_interval_ms":
        return new < old
    if field in _HIGHER:
        return new > old
    return False


def loosened_fields(old_entry, new_entry):
    """Fields of a drug in which new_entry allows more than old_entry (sorted names)."""
    out = []
    for f in FIELDS[1:-1]:
        o = getattr(old_entry, f)
        n = getattr(new_entry, f)
        if f in ("step_ng_per_day", "step_pct"):
            continue
        if _looser(f, o, n):
            out.append(f)
    # the step rule as a whole: the allowance max(step_ng or 0, pct) grows, or the rule goes
    if old_entry.step_ng_per_day is not None or old_entry.step_pct is not None:
        if new_entry.step_ng_per_day is None and new_entry.step_pct is None:
            out.append("step_rule")
        else:
            if (new_entry.step_ng_per_day or 0) > (old_entry.step_ng_per_day or 0):
                out.append("step_ng_per_day")
            if (new_entry.step_pct or 0) > (old_entry.step_pct or 0):
                out.append("step_pct")
    out.sort()
    return out


def compare(old, new):
    """Review of replacing library `old` (None: no library) by `new`:
    {"added": [names], "removed": [names], "changed": [names], "loosens": [names]} (sorted)."""
    added = []
    removed = []
    changed = []
    loosens = []
    old_names = old.names() if old is not None else []
    for n in new.names():
        if n not in old_names:
            added.append(n)
            continue
        o = old.entry(n)
        e = new.entry(n)
        if o.row() != e.row():
            changed.append(n)
        if loosened_fields(o, e):
            loosens.append(n)
    for n in old_names:
        if new.entry(n) is None:
            removed.append(n)
            loosens.append(n)
    loosens.sort()
    return {"added": added, "removed": removed, "changed": changed, "loosens": loosens}
