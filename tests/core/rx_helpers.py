# Example prescriptions (rx dicts, docs/architecture.md) shared by every helper's tests.
# Each function returns a NEW dict (tests may mutate it).  All are valid against
# the core tests' library (library_helpers.core_library()) and the shipped example library
# (host/pumphost/data/library-example.toml) unless the name says otherwise.  Research/education only:
# the doses are examples, not clinical guidance.


def morphine_rx():
    """The architecture.md example: morphine 10 mg/mL, two basal steps, two periodic boluses,
    patient bolus 10 uL x 4/24 h.  Projected 24 h volume 640000 + 50000 + 40000 = 730000 nL
    -> 7300000 ng morphine per day (below the 20 mg soft limit).  A FIRST program is valid
    (morphine has no start rule)."""
    return {
        "reservoir": {"capacity_nl": 20000000, "fill_nl": 18000000,
                      "low_alert_nl": 2000000, "empty_nl": 500000},
        "catheter": {"volume_nl": 150000},
        "drugs": [{"name": "morphine", "conc_ug_per_ml": 10000,
                   "hard_ng_per_day": None, "soft_ng_per_day": None}],
        "basal": {"steps": [[0, 20000], [480, 30000]], "days": None},
        "periodic": [{"times_min": [360, 1080], "volume_nl": 25000, "duration_ms": 600000}],
        "patient": {"volume_nl": 10000, "duration_ms": 120000, "lockout_ms": 3600000,
                    "max_per_24h": 4},
    }


def simple_rx(rate_nl_per_h=10000):
    """Morphine 10 mg/mL, one constant basal rate, no periodic, no patient bolus.
    Daily volume = 24 * rate nL; ng/day = 24 * rate * 10 (rate 10000 -> 2400000 ng)."""
    return {
        "reservoir": {"capacity_nl": 20000000, "fill_nl": 20000000,
                      "low_alert_nl": 2000000, "empty_nl": 500000},
        "catheter": {"volume_nl": 150000},
        "drugs": [{"name": "morphine", "conc_ug_per_ml": 10000,
                   "hard_ng_per_day": None, "soft_ng_per_day": None}],
        "basal": {"steps": [[0, rate_nl_per_h]], "days": None},
        "periodic": [],
        "patient": None,
    }


def ziconotide_rx(rate_nl_per_h=4000):
    """Ziconotide 25 ug/mL, constant basal only.  ng/day = rate * 24 * 25 // 1000
    (4000 nL/h -> 96000 nL/day -> 2400 ng/day = exactly the library's start limit)."""
    rx = simple_rx(rate_nl_per_h)
    rx["drugs"] = [{"name": "ziconotide", "conc_ug_per_ml": 25,
                    "hard_ng_per_day": None, "soft_ng_per_day": None}]
    return rx


def baclofen_rx(rate_nl_per_h=12500):
    """Baclofen 500 ug/mL, constant basal only.  ng/day = rate * 24 * 500 // 1000
    (12500 nL/h -> 300000 nL/day -> 150000 ng = 150 ug/day; start limit 300 ug/day)."""
    rx = simple_rx(rate_nl_per_h)
    rx["drugs"] = [{"name": "baclofen", "conc_ug_per_ml": 500,
                    "hard_ng_per_day": None, "soft_ng_per_day": None}]
    return rx


def admixture_rx():
    """Baclofen 500 ug/mL + clonidine 500 ug/mL (clonidine has no library entry: explicit limits
    given).  Basal 12500 nL/h -> 300000 nL/day -> 150000 ng/day of each drug."""
    rx = baclofen_rx(12500)
    rx["drugs"].append({"name": "clonidine", "conc_ug_per_ml": 500,
                        "hard_ng_per_day": 600000, "soft_ng_per_day": 480000})
    return rx


def flex_rx():
    """Morphine with weekday profiles: weekdays use "steps", the weekend its own profile, a
    periodic bolus at 12:00 and patient bolus.  13-step Saturday profile (the maximum)."""
    rx = morphine_rx()
    sat = [[0, 10000]]
    for i in range(1, 13):
        sat.append([i * 100, 10000 + i * 1000])
    rx["basal"]["days"] = {"sat": sat, "sun": [[0, 0], [600, 15000]]}
    rx["periodic"] = [{"times_min": [720], "volume_nl": 20000, "duration_ms": 300000}]
    return rx


def all_examples():
    """Every valid example above (for loops in tests)."""
    return [morphine_rx(), simple_rx(), ziconotide_rx(), baclofen_rx(), admixture_rx(), flex_rx()]
