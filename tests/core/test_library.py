# Plain-assert tests of pumpcore.library (run by pytest and under real MicroPython).
from pumpcore import library as L


def test_default_names_lowercase_and_lookup():
    lib = L.default_library()
    assert lib.names() == ["baclofen", "morphine", "ziconotide"]
    for name in lib.names():
        assert name == name.lower()
        assert lib.entry(name).name == name
    assert lib.entry("Morphine") is None        # names are lowercase, lookup is exact
    assert lib.entry("clonidine") is None       # no silent default for off-label drugs
    assert lib.entry(None) is None
    assert lib.entry(5) is None


def test_defaults_are_marked_examples():
    lib = L.default_library()
    for name in lib.names():
        assert lib.entry(name).example is True
        assert lib.entry(name).to_dict()["example"] is True


def test_ziconotide_label_values():
    z = L.default_library().entry("ziconotide")
    assert (z.conc_min_ug_per_ml, z.conc_max_ug_per_ml) == (25, 100)
    assert z.hard_ng_per_day == 19200
    assert z.soft_ng_per_day == 19200 * 80 // 100
    assert z.start_max_ng_per_day == 2400
    assert z.step_ng_per_day == 2400
    assert z.step_interval_ms == 48 * 3600 * 1000


def test_morphine_and_baclofen_values():
    lib = L.default_library()
    m = lib.entry("morphine")
    assert (m.conc_min_ug_per_ml, m.conc_max_ug_per_ml) == (10000, 25000)
    assert m.soft_ng_per_day == 20000000
    assert m.hard_ng_per_day == 30000000
    b = lib.entry("baclofen")
    assert (b.conc_min_ug_per_ml, b.conc_max_ug_per_ml) == (50, 2000)
    assert b.soft_ng_per_day == 800000 and b.hard_ng_per_day == 1000000
    assert b.step_pct == 30 and b.step_interval_ms == 24 * 3600 * 1000


def test_soft_below_hard_and_all_ints_small():
    lib = L.default_library()
    for name in lib.names():
        d = lib.entry(name).to_dict()
        assert d["soft_ng_per_day"] <= d["hard_ng_per_day"]
        for k in d:
            v = d[k]
            if k in ("name", "example") or v is None:
                continue
            assert isinstance(v, int) and 0 <= v < (1 << 30), k


def test_allowed_increase_absolute_percent_and_none():
    lib = L.default_library()
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


def test_custom_library():
    e = L.DrugEntry("clonidine", 50, 2000, soft_ng_per_day=800000, hard_ng_per_day=1000000,
                    example=False)
    lib = L.Library([e])
    assert lib.entry("clonidine") is e
    assert lib.names() == ["clonidine"]
    assert lib.to_dict()["clonidine"]["hard_ng_per_day"] == 1000000
    assert lib.to_dict()["clonidine"]["example"] is False
    assert L.Library().names() == []
