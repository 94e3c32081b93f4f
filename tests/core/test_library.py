# Plain-assert tests of pumpcore.library: the drug library as data (run by pytest and under real
# MicroPython). The record is validated as strictly as a prescription; loosening is named.
from library_helpers import core_library, core_record
from pumpcore import library as L
from pumpcore import reasons as R


def probs(rec):
    problems, lib = L.validate_record(rec)
    assert (lib is None) == bool(problems)
    for p in problems:
        assert len(p) == 3 and isinstance(p[2], dict), p
    return [p[:2] for p in problems]


def test_record_round_trip_names_and_lookup():
    lib = core_library()
    assert lib.names() == ["baclofen", "morphine", "ziconotide"]
    assert lib.entry("Morphine") is None        # names are lowercase, lookup is exact
    assert lib.entry("clonidine") is None       # not in this library: explicit limits required
    assert lib.entry(None) is None and lib.entry(5) is None
    rec = lib.record()
    assert rec == core_record()                  # drugs sorted by name, FIELDS order
    again = L.validate_record(rec)[1]
    assert again.checksum == lib.checksum and len(lib.checksum) == 16
    m = lib.entry("morphine")
    assert (m.conc_min_ug_per_ml, m.conc_max_ug_per_ml, m.dose_unit) == (10000, 25000, "mg")
    assert lib.identity() == {"name": "core test library", "version": "1",
                              "checksum": lib.checksum}


def test_checksum_covers_every_value_name_and_version_not_row_order():
    base = L.validate_record(core_record())[1].checksum
    rec = core_record()
    rec["drugs"].reverse()
    assert L.validate_record(rec)[1].checksum == base          # order of rows does not matter
    for change in (("name", "other"), ("version", "2")):
        rec = core_record()
        rec[change[0]] = change[1]
        assert L.validate_record(rec)[1].checksum != base
    for i in range(1, len(L.FIELDS) - 1):
        rec = core_record()
        v = rec["drugs"][1][i]
        rec["drugs"][1][i] = (v + 1) if v is not None else 1
        problems, lib = L.validate_record(rec)
        if lib is not None:
            assert lib.checksum != base, L.FIELDS[i]


def test_allowed_increase_absolute_percent_and_none():
    lib = core_library()
    z = lib.entry("ziconotide")
    assert z.allowed_increase_ng_per_day(0) == 2400
    assert z.allowed_increase_ng_per_day(10000) == 2400
    b = lib.entry("baclofen")
    assert b.allowed_increase_ng_per_day(100000) == 30000
    assert b.allowed_increase_ng_per_day(101) == 30          # floor
    m = lib.entry("morphine")
    assert m.allowed_increase_ng_per_day(1000000) == 1000000   # absolute floor wins
    assert m.allowed_increase_ng_per_day(10000000) == 3000000  # percent wins
    free = L.DrugEntry("x", 1, 10, 5, 10)
    assert free.allowed_increase_ng_per_day(123) is None


def test_malformed_records_are_refused_with_named_fields():
    assert probs(None) == [[R.INVALID, ""]]
    rec = core_record()
    rec["extra"] = 1
    del rec["version"]
    assert probs(rec) == [[R.INVALID, "extra"], [R.INVALID, "version"]]
    rec = core_record()
    rec["fields"] = rec["fields"][:-1]
    assert probs(rec) == [[R.INVALID, "fields"]]
    rec = core_record()
    rec["name"] = ""
    rec["version"] = "x" * (L.VERSION_MAX + 1)
    assert probs(rec) == [[R.INVALID, "name"], [R.INVALID, "version"]]
    rec = core_record()
    rec["drugs"][0][0] = "Baclofen"
    rec["drugs"][1] = rec["drugs"][1][:5]
    assert probs(rec) == [[R.INVALID, "drugs[0].name"], [R.INVALID, "drugs[1]"]]
    rec = core_record()
    rec["drugs"][2][0] = "morphine"
    assert probs(rec) == [[R.DUPLICATE_DRUG, "drugs[2].name"]]
    rec = core_record()
    rec["drugs"] = []
    assert probs(rec) == [[R.LIBRARY_RANGE, "drugs"]]
    rec["drugs"] = [["d%d" % i, 1, 10, 5, 10, None, None, None, None, None, "ug"]
                    for i in range(L.MAX_DRUGS + 1)]
    assert probs(rec) == [[R.LIBRARY_RANGE, "drugs"]]
    rec["drugs"] = rec["drugs"][:L.MAX_DRUGS]
    assert probs(rec) == []


def test_values_are_bounded_and_consistent():
    def row(**kw):
        rec = core_record()
        r = rec["drugs"][1]                       # morphine
        for k in kw:
            r[L.FIELDS.index(k)] = kw[k]
        return probs(rec)
    f = "drugs[1]."
    assert row(conc_min_ug_per_ml=0) == [[R.LIBRARY_RANGE, f + "conc_min_ug_per_ml"]]
    assert row(conc_max_ug_per_ml=9999) == [[R.LIBRARY_RANGE, f + "conc_max_ug_per_ml"]]
    assert row(conc_max_ug_per_ml=100001) == [[R.LIBRARY_RANGE, f + "conc_max_ug_per_ml"]]
    assert row(conc_max_ug_per_ml=100000) == []
    assert row(soft_ng_per_day=30000001) == [[R.LIBRARY_RANGE, f + "soft_ng_per_day"]]
    assert row(soft_ng_per_day=30000000) == []                  # soft may equal hard
    assert row(hard_ng_per_day=0) == [[R.LIBRARY_RANGE, f + "hard_ng_per_day"]]
    assert row(max_bolus_ng=30000001) == [[R.LIBRARY_RANGE, f + "max_bolus_ng"]]
    assert row(start_max_ng_per_day=30000001) == [[R.LIBRARY_RANGE, f + "start_max_ng_per_day"]]
    assert row(step_pct=101) == [[R.LIBRARY_RANGE, f + "step_pct"]]
    assert row(step_pct=0) == [[R.LIBRARY_RANGE, f + "step_pct"]]
    assert row(step_interval_ms=59999) == [[R.LIBRARY_RANGE, f + "step_interval_ms"]]
    assert row(step_interval_ms=7 * 24 * 3600000 + 1) == [[R.LIBRARY_RANGE,
                                                          f + "step_interval_ms"]]
    assert row(max_bolus_ng=None, step_ng_per_day=None, step_pct=None, step_interval_ms=None,
               start_max_ng_per_day=None) == []                  # optional rules
    assert row(soft_ng_per_day=None) == [[R.INVALID, f + "soft_ng_per_day"]]   # required
    assert row(hard_ng_per_day=True) == [[R.INVALID, f + "hard_ng_per_day"]]   # no bools
    assert row(hard_ng_per_day="30000000") == [[R.INVALID, f + "hard_ng_per_day"]]
    assert row(dose_unit="g") == [[R.INVALID, f + "dose_unit"]]
    problems, lib = L.validate_record(_with(core_record(), 1, "soft_ng_per_day", 30000001))
    assert problems[0][2] == {"value": 30000001, "min": 1, "max": 30000000, "unit": "ng/day",
                              "drug": "morphine"}


def _with(rec, i, field, value):
    rec["drugs"][i][L.FIELDS.index(field)] = value
    return rec


def test_compare_names_added_removed_changed_and_loosened_drugs():
    old = core_library()
    same = L.validate_record(core_record())[1]
    assert L.compare(old, same) == {"added": [], "removed": [], "changed": [], "loosens": []}
    assert L.compare(None, old)["added"] == ["baclofen", "morphine", "ziconotide"]
    for field, value, loosens in (
            ("conc_min_ug_per_ml", 500, True), ("conc_min_ug_per_ml", 12000, False),
            ("conc_max_ug_per_ml", 26000, True), ("conc_max_ug_per_ml", 20000, False),
            ("soft_ng_per_day", 21000000, True), ("soft_ng_per_day", 15000000, False),
            ("hard_ng_per_day", 31000000, True), ("hard_ng_per_day", 25000000, False),
            ("max_bolus_ng", None, True), ("max_bolus_ng", 900000, False),
            ("step_ng_per_day", 2000000, True), ("step_pct", 40, True), ("step_pct", 20, False),
            ("step_interval_ms", 12 * 3600000, True), ("step_interval_ms", None, True),
            ("start_max_ng_per_day", 5000000, False)):      # morphine had no start rule
        new = L.validate_record(_with(core_record(), 1, field, value))[1]
        rv = L.compare(old, new)
        assert rv["changed"] == ["morphine"], field
        assert rv["loosens"] == (["morphine"] if loosens else []), (field, value)
    gone = core_record()
    gone["drugs"] = gone["drugs"][:2]
    rv = L.compare(old, L.validate_record(gone)[1])
    assert rv["removed"] == ["ziconotide"] and rv["loosens"] == ["ziconotide"]
    rule_gone = _with(_with(core_record(), 1, "step_ng_per_day", None), 1, "step_pct", None)
    assert L.loosened_fields(old.entry("morphine"),
                             L.validate_record(rule_gone)[1].entry("morphine")) == ["step_rule"]
