# The drug library of the core tests: a fixed record, deliberately independent of the project's
# shipped example library (host/pumphost/data/library-example.toml), so the core's rules are
# tested against numbers that do not move when the example changes. Test values, not clinical
# guidance. Plain data: runs under CPython and MicroPython.
from pumpcore.library import FIELDS, validate_record

H = 3600000

TEST_RECORD = {
    "name": "core test library",
    "version": "1",
    "fields": list(FIELDS),
    "drugs": [
        # name, conc min, conc max (ug/mL), soft, hard (ng/day), max bolus (ng), step (ng/day),
        # step %, interval (ms), start max (ng/day), dose unit
        ["baclofen", 50, 2000, 800000, 1000000, 100000, None, 30, 24 * H, 300000, "ug"],
        ["morphine", 10000, 25000, 20000000, 30000000, 1000000, 1000000, 30, 24 * H, None, "mg"],
        ["ziconotide", 25, 100, 15360, 19200, 1200, 2400, None, 48 * H, 2400, "ug"],
    ],
}


def core_record():
    """A fresh copy of TEST_RECORD (tests may change it)."""
    return {"name": TEST_RECORD["name"], "version": TEST_RECORD["version"],
            "fields": list(FIELDS), "drugs": [list(r) for r in TEST_RECORD["drugs"]]}


def core_library():
    problems, lib = validate_record(core_record())
    assert problems == [], problems
    return lib
