# Plain-assert tests of pumpcore.prescription (run by pytest and under real MicroPython).
# Every rule at its edge (exactly at the limit passes, one over fails) and every reason code.
import rx_helpers as H
from library_helpers import core_library
from pumpcore import prescription as P
from pumpcore import reasons as R

LIB = core_library()
H48 = 48 * 3600000
H24 = 24 * 3600000


def probs(rx, **kw):
    # [reason, field] of each problem (their details are tested in test_problem_details_*)
    problems, review = P.validate(rx, LIB, **kw)
    for p in problems:
        assert len(p) == 3 and isinstance(p[2], dict), p
    return [p[:2] for p in problems]


def has(problems, reason, field=None):
    for p in problems:
        if p[0] == reason and (field is None or p[1] == field):
            return True
    return False


def only(problems, reason, field):
    return [p[:2] for p in problems] == [[reason, field]]


def ok(rx, **kw):
    p = probs(rx, **kw)
    assert p == [], p
    return True


# --- whole-program basics ------------------------------------------------------------------------


def test_examples_are_valid():
    for rx in H.all_examples():
        assert ok(rx)


def test_review_shape_and_projection():
    problems, rv = P.validate(H.morphine_rx(), LIB)
    assert problems == []
    # basal 20000*8 + 30000*16 = 640000; periodic 2*25000; patient 4*10000 -> 730000 nL
    assert rv["daily_volume_nl"] == 730000
    assert rv["daily_ng"] == {"morphine": 7300000}
    assert rv["soft_breaches"] == []
    assert rv["limits"] == {"morphine": [20000000, 30000000]}
    c = rv["checksum"]
    assert isinstance(c, str) and len(c) == 16
    for ch in c:
        assert ch in "0123456789abcdef"
    assert c == P.checksum(H.morphine_rx())


def test_projection_keeps_remainders_exact():
    # 2001 nL/h of morphine 10000 ug/mL: 48024 nL/day -> 480240 ng exactly
    rx = H.simple_rx(2001)
    problems, rv = P.validate(rx, LIB)
    assert problems == [] and rv["daily_ng"]["morphine"] == 480240
    # 61 nL/h-steps never lose the fraction before the final division
    rx["basal"]["steps"] = [[0, 2003], [1, 2060]]
    exact_num = 2003 * 1 + 2060 * 1439
    problems, rv = P.validate(rx, LIB)
    assert rv["daily_ng"]["morphine"] == exact_num * 10000 // 60000
    assert rv["daily_volume_nl"] == exact_num // 60


def test_projection_rolling_24h_over_weekdays():
    rx = H.simple_rx(2000)
    rx["basal"]["days"] = {"mon": [[0, 2000], [720, 100000]], "tue": [[0, 100000], [720, 2000]]}
    problems, rv = P.validate(rx, LIB)
    assert problems == []
    # no calendar day exceeds 12*100000 + 12*2000, but Mon 12:00 -> Tue 12:00 holds 24*100000
    assert rv["daily_volume_nl"] == 2400000
    # over the week's end: Sunday evening + Monday morning
    rx["basal"]["days"] = {"sun": [[0, 2000], [1200, 50000]], "mon": [[0, 50000], [240, 2000]]}
    problems, rv = P.validate(rx, LIB)
    assert rv["daily_volume_nl"] == 8 * 50000 + 16 * 2000
    # a day alone: same as a constant schedule
    rx["basal"]["days"] = {"wed": [[0, 40000]]}
    problems, rv = P.validate(rx, LIB)
    assert rv["daily_volume_nl"] == 24 * 40000


def test_non_dict_and_missing_parts_are_invalid():
    for bad in (None, 5, "rx", [], [1, 2], True):
        problems, rv = P.validate(bad, LIB)
        assert [q[:2] for q in problems] == [[R.INVALID, ""]], problems
        assert len(rv["checksum"]) == 16
    for key in ("reservoir", "catheter", "drugs", "basal"):
        rx = H.morphine_rx()
        del rx[key]
        assert has(probs(rx), R.INVALID, key)
    # periodic and patient are optional
    rx = H.morphine_rx()
    del rx["periodic"]
    del rx["patient"]
    assert ok(rx)


def test_unknown_keys_are_invalid():
    rx = H.morphine_rx()
    rx["patinet"] = None
    assert only(probs(rx), R.INVALID, "patinet")
    rx = H.morphine_rx()
    rx["reservoir"]["extra"] = 1
    assert only(probs(rx), R.INVALID, "reservoir.extra")
    rx = H.morphine_rx()
    rx["drugs"][0]["dose"] = 1
    assert only(probs(rx), R.INVALID, "drugs[0].dose")
    rx = H.morphine_rx()
    rx["basal"]["days"] = {"monday": [[0, 2000]]}
    assert has(probs(rx), R.INVALID, "basal.days")


def test_wrong_types_bools_negatives_huge_floats():
    bads = (True, False, -1, 1 << 30, 1 << 70, "10", None, [], {}, float("2.5"))
    fields = [("reservoir", "fill_nl", "reservoir.fill_nl"),
              ("catheter", "volume_nl", "catheter.volume_nl"),
              ("patient", "lockout_ms", "patient.lockout_ms"),
              ("patient", "max_per_24h", "patient.max_per_24h")]
    for bad in bads:
        for part, key, path in fields:
            rx = H.morphine_rx()
            rx[part][key] = bad
            p = probs(rx)
            assert has(p, R.INVALID, path), (bad, path, p)
        rx = H.morphine_rx()
        rx["basal"]["steps"][1][1] = bad
        assert has(probs(rx), R.INVALID, "basal.steps[1].rate")
        rx = H.morphine_rx()
        rx["basal"]["steps"][1][0] = bad
        assert has(probs(rx), R.INVALID, "basal.steps[1].start")
        rx = H.morphine_rx()
        rx["drugs"][0]["conc_ug_per_ml"] = bad
        assert has(probs(rx), R.INVALID, "drugs[0].conc_ug_per_ml")
        rx = H.morphine_rx()
        rx["periodic"][0]["times_min"][1] = bad
        assert has(probs(rx), R.INVALID, "periodic[0].times_min[1]")
        if bad is not None:
            rx = H.morphine_rx()
            rx["drugs"][0]["hard_ng_per_day"] = bad
            assert has(probs(rx), R.INVALID, "drugs[0].hard_ng_per_day")


def test_malformed_shapes_never_raise():
    weird = (None, 0, -5, True, "x", [], [[]], [None], {}, {"a": 1}, [[0]], [[0, 1, 2]],
             float("1.5"), 1 << 80, [1 << 80, -1])
    paths = (("reservoir",), ("catheter",), ("drugs",), ("basal",), ("periodic",), ("patient",),
             ("basal", "steps"), ("basal", "days"), ("drugs", 0), ("drugs", 0, "name"),
             ("periodic", 0), ("periodic", 0, "times_min"), ("basal", "steps", 0))
    for base in (H.morphine_rx, H.flex_rx, H.admixture_rx):
        for path in paths:
            if base is H.admixture_rx and path[0] == "periodic" and len(path) > 1:
                continue                                   # admixture_rx has no periodic[0]
            for w in weird:
                rx = base()
                node = rx
                for k in path[:-1]:
                    node = node[k]
                node[path[-1]] = w
                problems, rv = P.validate(rx, LIB)
                assert isinstance(problems, list)
                for p in problems:
                    assert p[1] != P.INTERNAL_FIELD, (path, w, problems)
                    assert isinstance(p[0], str) and isinstance(p[1], str)
                assert len(rv["checksum"]) == 16


# --- reservoir / catheter ------------------------------------------------------------------------


def test_reservoir_capacity():
    for cap in (20000000, 40000000):
        rx = H.morphine_rx()
        rx["reservoir"]["capacity_nl"] = cap
        assert ok(rx)
    for cap in (19999999, 30000000, 40000001, 0):
        rx = H.morphine_rx()
        rx["reservoir"]["capacity_nl"] = cap
        assert has(probs(rx), R.RESERVOIR_CAPACITY, "reservoir.capacity_nl")


def test_fill_range():
    rx = H.morphine_rx()
    rx["reservoir"]["fill_nl"] = 20000000                  # exactly full
    assert ok(rx)
    rx["reservoir"]["fill_nl"] = 20000001
    assert only(probs(rx), R.FILL_RANGE, "reservoir.fill_nl")
    rx["reservoir"]["fill_nl"] = 500001                    # just above empty
    assert ok(rx)
    rx["reservoir"]["fill_nl"] = 500000                    # at empty: refused
    assert only(probs(rx), R.FILL_RANGE, "reservoir.fill_nl")


def test_alert_range():
    rx = H.morphine_rx()
    rx["reservoir"]["empty_nl"] = 0
    assert ok(rx)
    rx["reservoir"]["empty_nl"] = 2000000                  # empty == low
    assert has(probs(rx), R.ALERT_RANGE, "reservoir.empty_nl")
    rx = H.morphine_rx()
    rx["reservoir"]["low_alert_nl"] = 19999999
    assert ok(rx)
    rx["reservoir"]["low_alert_nl"] = 20000000             # low == capacity
    assert only(probs(rx), R.ALERT_RANGE, "reservoir.low_alert_nl")


def test_catheter_range():
    for vol, good in ((1, True), (1000000, True), (0, False), (1000001, False)):
        rx = H.morphine_rx()
        rx["catheter"]["volume_nl"] = vol
        if good:
            assert ok(rx)
        else:
            assert only(probs(rx), R.CATHETER_RANGE, "catheter.volume_nl")


# --- drugs and limits ----------------------------------------------------------------------------


def test_drug_count_and_duplicates():
    rx = H.morphine_rx()
    rx["drugs"] = []
    assert only(probs(rx), R.NO_DRUGS, "drugs")
    rx = H.admixture_rx()
    for name in ("bupivacaine", "midazolam"):
        rx["drugs"].append({"name": name, "conc_ug_per_ml": 1000, "hard_ng_per_day": 10000000,
                            "soft_ng_per_day": 10000000})
    assert ok(rx)                                          # exactly 4 drugs
    rx["drugs"].append({"name": "hydromorphone", "conc_ug_per_ml": 1000,
                        "hard_ng_per_day": 10000000, "soft_ng_per_day": 10000000})
    assert only(probs(rx), R.TOO_MANY_DRUGS, "drugs")
    rx = H.admixture_rx()
    rx["drugs"][1]["name"] = "baclofen"
    assert has(probs(rx), R.DUPLICATE_DRUG, "drugs[1].name")


def test_drug_name_rules():
    for name in ("Morphine", "", "morphine ", "a" * 33, 7, None):
        rx = H.morphine_rx()
        rx["drugs"][0]["name"] = name
        assert has(probs(rx), R.INVALID, "drugs[0].name"), name


def test_concentration_range_library():
    for conc, good in ((25, True), (100, True), (24, False), (101, False), (0, False)):
        rx = H.ziconotide_rx(4000)
        rx["drugs"][0]["conc_ug_per_ml"] = conc
        # keep the projected dose within the start limit: the lowest rate at conc 100
        if conc == 100:
            rx["basal"]["steps"] = [[0, 0]]
        p = probs(rx)
        if good:
            assert p == [], (conc, p)
        else:
            assert has(p, R.CONCENTRATION_RANGE, "drugs[0].conc_ug_per_ml"), conc


def test_concentration_range_unknown_drug():
    for conc, good in ((1, True), (100000, True), (0, False), (100001, False)):
        rx = H.admixture_rx()
        rx["drugs"][1]["conc_ug_per_ml"] = conc
        rx["drugs"][1]["hard_ng_per_day"] = 1 << 29
        rx["drugs"][1]["soft_ng_per_day"] = 1 << 29
        p = probs(rx)
        if good:
            assert p == [], (conc, p)
        else:
            assert only(p, R.CONCENTRATION_RANGE, "drugs[1].conc_ug_per_ml"), (conc, p)


def test_unknown_drug_needs_limits():
    rx = H.admixture_rx()
    rx["drugs"][1]["hard_ng_per_day"] = None
    rx["drugs"][1]["soft_ng_per_day"] = None
    p = probs(rx)
    assert has(p, R.UNKNOWN_DRUG_NEEDS_LIMITS, "drugs[1].hard_ng_per_day")
    assert has(p, R.UNKNOWN_DRUG_NEEDS_LIMITS, "drugs[1].soft_ng_per_day")
    rx = H.admixture_rx()
    del rx["drugs"][1]["soft_ng_per_day"]
    assert only(probs(rx), R.UNKNOWN_DRUG_NEEDS_LIMITS, "drugs[1].soft_ng_per_day")


def test_explicit_limits_only_tighten():
    rx = H.morphine_rx()
    rx["drugs"][0]["hard_ng_per_day"] = 30000000           # equal to the library: fine
    rx["drugs"][0]["soft_ng_per_day"] = 20000000
    assert ok(rx)
    rx["drugs"][0]["hard_ng_per_day"] = 30000001
    assert only(probs(rx), R.LIMIT_LOOSENS_LIBRARY, "drugs[0].hard_ng_per_day")

def test_own_soft_limit_up_to_the_hard_limit_needs_confirmation():
    # a prescription may set its own soft limit anywhere up to the hard limit; above the
    # library's soft limit that is listed in review["soft_raised"] (commit needs confirm_soft)
    rx = H.morphine_rx()
    rx["drugs"][0]["soft_ng_per_day"] = 20000001
    problems, rv = P.validate(rx, LIB)
    assert problems == [] and rv["soft_raised"] == ["morphine"]
    assert rv["limits"]["morphine"] == [20000001, 30000000]
    rx["drugs"][0]["soft_ng_per_day"] = 30000000            # at the hard limit: still fine
    problems, rv = P.validate(rx, LIB)
    assert problems == [] and rv["soft_raised"] == ["morphine"]
    rx["drugs"][0]["soft_ng_per_day"] = 30000001            # above the hard limit: refused
    problems, rv = P.validate(rx, LIB)
    assert [q[:2] for q in problems] == [[R.LIMIT_LOOSENS_LIBRARY, "drugs[0].soft_ng_per_day"]]
    assert problems[0][2] == {"drug": "morphine", "value": 30000001, "limit": 30000000,
                              "unit": "ng/day"}
    rx["drugs"][0]["soft_ng_per_day"] = 20000000            # at the library's: nothing to confirm
    assert P.validate(rx, LIB)[1]["soft_raised"] == []


def test_explicit_soft_above_explicit_hard_is_invalid():
    rx = H.admixture_rx()
    rx["drugs"][1]["soft_ng_per_day"] = 1000001
    assert only(probs(rx), R.INVALID, "drugs[1].soft_ng_per_day")


def test_explicit_hard_tightens_and_lowers_soft():
    rx = H.morphine_rx()                                   # 7300000 ng/day
    rx["drugs"][0]["hard_ng_per_day"] = 7300000
    problems, rv = P.validate(rx, LIB)
    assert problems == [] and rv["soft_breaches"] == []
    assert rv["limits"]["morphine"] == [7300000, 7300000]
    rx["drugs"][0]["hard_ng_per_day"] = 7299999
    assert only(probs(rx), R.HARD_LIMIT, "drugs[0]")


# --- hard / soft limits --------------------------------------------------------------------------


def test_hard_and_soft_limits_at_edges():
    # clonidine 1000 ug/mL: ng/day = 24 * rate; soft 480000 = rate 20000, hard 720000 = 30000
    def clon(rate):
        rx = H.simple_rx(rate)
        rx["drugs"] = [{"name": "clonidine", "conc_ug_per_ml": 1000,
                        "hard_ng_per_day": 720000, "soft_ng_per_day": 480000}]
        return P.validate(rx, LIB)
    p, rv = clon(20000)
    assert p == [] and rv["soft_breaches"] == [] and rv["daily_ng"]["clonidine"] == 480000
    p, rv = clon(20001)
    assert p == [] and rv["soft_breaches"] == ["clonidine"]  # soft breach is NOT a problem
    p, rv = clon(30000)
    assert p == [] and rv["soft_breaches"] == ["clonidine"]
    p, rv = clon(30001)
    assert [q[:2] for q in p] == [[R.HARD_LIMIT, "drugs[0]"]]
    assert rv["daily_ng"]["clonidine"] == 720024          # review still computed


def test_morphine_library_soft_and_hard():
    p, rv = P.validate(H.simple_rx(83333), LIB)            # 19999920 ng
    assert p == [] and rv["soft_breaches"] == []
    p, rv = P.validate(H.simple_rx(83334), LIB)            # 20000160 ng
    assert p == [] and rv["soft_breaches"] == ["morphine"]
    p, rv = P.validate(H.simple_rx(125000), LIB)           # 30000000 ng: at hard
    assert p == []
    p, rv = P.validate(H.simple_rx(125001), LIB)
    assert [q[:2] for q in p] == [[R.HARD_LIMIT, "drugs[0]"]]


def test_each_drug_limited_separately_in_admixture():
    rx = H.admixture_rx()                                  # 150000 ng/day of each
    rx["drugs"][1]["hard_ng_per_day"] = 150000
    rx["drugs"][1]["soft_ng_per_day"] = 100000
    problems, rv = P.validate(rx, LIB)
    assert problems == [] and rv["soft_breaches"] == ["clonidine"]
    rx["drugs"][1]["hard_ng_per_day"] = 149999
    assert only(probs(rx), R.HARD_LIMIT, "drugs[1]")


def test_patient_and_periodic_count_in_projection():
    rx = H.morphine_rx()
    base = P.validate(rx, LIB)[1]["daily_ng"]["morphine"]
    rx["patient"]["max_per_24h"] = 5
    assert P.validate(rx, LIB)[1]["daily_ng"]["morphine"] == base + 10000 * 10
    rx["periodic"][0]["times_min"].append(1200)
    assert P.validate(rx, LIB)[1]["daily_ng"]["morphine"] == base + 10000 * 10 + 25000 * 10


# --- basal ---------------------------------------------------------------------------------------


def test_step_count():
    rx = H.simple_rx()
    rx["basal"]["steps"] = [[i * 100, 10000] for i in range(13)]
    assert ok(rx)
    rx["basal"]["steps"] = [[i * 100, 10000] for i in range(14)]
    assert only(probs(rx), R.TOO_MANY_STEPS, "basal.steps")
    rx["basal"]["steps"] = []
    assert only(probs(rx), R.INVALID, "basal.steps")


def test_step_order():
    cases = (([[1, 10000]], "basal.steps[0].start"),
             ([[0, 10000], [480, 2000], [480, 3000]], "basal.steps[2].start"),
             ([[0, 10000], [600, 2000], [480, 3000]], "basal.steps[2].start"),
             ([[0, 10000], [1440, 2000]], "basal.steps[1].start"))
    for steps, field in cases:
        rx = H.simple_rx()
        rx["basal"]["steps"] = steps
        assert only(probs(rx), R.STEP_ORDER, field), (steps, probs(rx))
    rx = H.simple_rx()
    rx["basal"]["steps"] = [[0, 10000], [1439, 2000]]
    assert ok(rx)


def test_rate_range():
    for rate, good in ((0, True), (2000, True), (1000000, True), (1999, False), (1, False),
                       (1000001, False)):
        rx = H.simple_rx()
        rx["drugs"][0]["hard_ng_per_day"] = None
        rx["basal"]["steps"] = [[0, 2000], [1380, rate]]
        p = probs(rx)
        if good:
            assert p == [], (rate, p)
        else:
            assert only(p, R.RATE_RANGE, "basal.steps[1].rate"), (rate, p)


def test_weekday_profiles_validated_with_paths():
    rx = H.flex_rx()
    rx["basal"]["days"]["sun"][1][1] = 1999
    assert only(probs(rx), R.RATE_RANGE, "basal.days.sun[1].rate")
    rx = H.flex_rx()
    rx["basal"]["days"]["sat"].append([1300, 5000])          # 14 steps
    assert only(probs(rx), R.TOO_MANY_STEPS, "basal.days.sat")
    rx = H.flex_rx()
    rx["basal"]["days"]["mon"] = [[5, 2000]]
    assert only(probs(rx), R.STEP_ORDER, "basal.days.mon[0].start")
    rx = H.flex_rx()
    rx["basal"]["days"] = "weekends"
    assert has(probs(rx), R.INVALID, "basal.days")


# --- boluses -------------------------------------------------------------------------------------


def test_periodic_ranges():
    def per(**kw):
        rx = H.morphine_rx()
        for k in kw:
            rx["periodic"][0][k] = kw[k]
        return probs(rx)
    assert per(volume_nl=250) == []                        # one stroke
    assert only(per(volume_nl=249), R.BOLUS_RANGE, "periodic[0].volume_nl")
    assert per(volume_nl=100000, duration_ms=360000) == []  # exactly 1 mL/h and 1 mg morphine
    assert only(per(volume_nl=100000, duration_ms=359999), R.BOLUS_RANGE,
                "periodic[0].duration_ms")                 # faster than 1 mL/h
    assert only(per(volume_nl=100001, duration_ms=400000), R.BOLUS_AMOUNT, "periodic[0].volume_nl")
    assert only(per(duration_ms=0), R.BOLUS_RANGE, "periodic[0].duration_ms")
    assert per(times_min=[360], volume_nl=25000, duration_ms=H24) == []
    assert only(per(times_min=[360], duration_ms=H24 + 1), R.BOLUS_RANGE,
                "periodic[0].duration_ms")
    assert only(per(times_min=[360, 1440]), R.BOLUS_RANGE, "periodic[0].times_min[1]")
    assert only(per(times_min=[1080, 360]), R.BOLUS_RANGE, "periodic[0].times_min[1]")
    assert only(per(times_min=[]), R.INVALID, "periodic[0].times_min")


def test_bolus_volume_max_one_ml():
    rx = H.simple_rx()
    rx["drugs"] = [{"name": "clonidine", "conc_ug_per_ml": 1,
                    "hard_ng_per_day": 1000000, "soft_ng_per_day": 1000000}]
    rx["periodic"] = [{"times_min": [0], "volume_nl": 1000000, "duration_ms": 3600000}]
    assert ok(rx)
    rx["periodic"][0]["volume_nl"] = 1000001
    rx["periodic"][0]["duration_ms"] = 4000000
    assert only(probs(rx), R.BOLUS_RANGE, "periodic[0].volume_nl")


def test_periodic_count_and_times_count():
    rx = H.simple_rx()
    rx["periodic"] = [{"times_min": [i * 60], "volume_nl": 1000, "duration_ms": 60000}
                      for i in range(4)]
    assert ok(rx)
    rx["periodic"].append({"times_min": [1000], "volume_nl": 1000, "duration_ms": 60000})
    assert only(probs(rx), R.BOLUS_RANGE, "periodic")
    rx = H.simple_rx()
    rx["periodic"] = [{"times_min": [i * 60 for i in range(24)], "volume_nl": 1000,
                       "duration_ms": 60000}]
    assert ok(rx)
    rx["periodic"][0]["times_min"] = [i * 50 for i in range(25)]
    assert only(probs(rx), R.BOLUS_RANGE, "periodic[0].times_min")


def test_periodic_overlap_within_across_and_over_midnight():
    rx = H.simple_rx()
    rx["periodic"] = [{"times_min": [0, 10], "volume_nl": 1000, "duration_ms": 600000}]
    assert ok(rx)                                          # ends exactly when the next starts
    rx["periodic"][0]["duration_ms"] = 600001
    assert only(probs(rx), R.BOLUS_RANGE, "periodic[0].times_min[1]")
    rx = H.simple_rx()
    rx["periodic"] = [{"times_min": [100], "volume_nl": 1000, "duration_ms": 60000},
                      {"times_min": [100], "volume_nl": 1000, "duration_ms": 60000}]
    assert has(probs(rx), R.BOLUS_RANGE)
    rx = H.simple_rx()
    rx["periodic"] = [{"times_min": [1430], "volume_nl": 1000, "duration_ms": 1200000},
                      {"times_min": [5], "volume_nl": 1000, "duration_ms": 60000}]
    assert only(probs(rx), R.BOLUS_RANGE, "periodic[1].times_min[0]")   # runs past 00:05
    rx["periodic"][0]["duration_ms"] = 900000                            # ends 00:05 exactly
    assert ok(rx)


def test_patient_ranges():
    def pat(**kw):
        rx = H.morphine_rx()
        for k in kw:
            rx["patient"][k] = kw[k]
        return probs(rx)
    assert pat(lockout_ms=60000, duration_ms=60000) == []
    assert only(pat(lockout_ms=59999, duration_ms=36000), R.BOLUS_RANGE, "patient.lockout_ms")
    assert only(pat(lockout_ms=100000, duration_ms=100001), R.BOLUS_RANGE, "patient.lockout_ms")
    assert pat(lockout_ms=H24) == []
    assert only(pat(lockout_ms=H24 + 1), R.BOLUS_RANGE, "patient.lockout_ms")
    assert pat(max_per_24h=1) == [] and pat(max_per_24h=24) == []
    assert only(pat(max_per_24h=0), R.BOLUS_RANGE, "patient.max_per_24h")
    assert only(pat(max_per_24h=25), R.BOLUS_RANGE, "patient.max_per_24h")
    assert only(pat(volume_nl=249), R.BOLUS_RANGE, "patient.volume_nl")
    assert only(pat(volume_nl=10000, duration_ms=35999), R.BOLUS_RANGE, "patient.duration_ms")
    rx = H.morphine_rx()
    rx["patient"] = None                                   # patient bolus disabled
    assert ok(rx)
    rx["patient"] = {"volume_nl": 10000}
    assert has(probs(rx), R.INVALID, "patient.lockout_ms")


def test_stroke_volume_sets_minimum_bolus():
    rx = H.morphine_rx()
    rx["patient"]["volume_nl"] = 500
    assert P.validate(rx, LIB, stroke_nl=500)[0] == []
    assert only(P.validate(rx, LIB, stroke_nl=501)[0], R.BOLUS_RANGE, "patient.volume_nl")


def test_bolus_amount_vs_library_max():
    # morphine max bolus 1 mg = 100000 nL at 10 mg/mL
    rx = H.morphine_rx()
    rx["patient"]["volume_nl"] = 100000
    rx["patient"]["duration_ms"] = 360000
    rx["patient"]["lockout_ms"] = 360000
    rx["patient"]["max_per_24h"] = 1
    assert ok(rx)
    rx["patient"]["volume_nl"] = 100001
    rx["patient"]["duration_ms"] = 400000
    rx["patient"]["lockout_ms"] = 400000
    assert only(probs(rx), R.BOLUS_AMOUNT, "patient.volume_nl")
    rx = H.morphine_rx()
    rx["periodic"][0]["volume_nl"] = 100001
    rx["periodic"][0]["duration_ms"] = 400000
    assert only(probs(rx), R.BOLUS_AMOUNT, "periodic[0].volume_nl")
    # unknown drug: no library bolus rule
    rx = H.admixture_rx()
    rx["drugs"] = rx["drugs"][1:]
    rx["periodic"] = [{"times_min": [0], "volume_nl": 500000, "duration_ms": 1800000}]
    assert ok(rx)


# --- titration / start ---------------------------------------------------------------------------


def test_start_dose_first_program():
    assert ok(H.ziconotide_rx(4000))                       # 2400 ng/day: at the start limit
    assert P.validate(H.ziconotide_rx(4002), LIB)[1]["daily_ng"]["ziconotide"] == 2401
    assert only(probs(H.ziconotide_rx(4002)), R.START_DOSE, "drugs[0]")
    assert ok(H.baclofen_rx(25000))                        # 300000 ng: baclofen start limit
    assert only(probs(H.baclofen_rx(25001)), R.START_DOSE, "drugs[0]")
    assert ok(H.simple_rx(80000))                          # morphine: no start rule


def test_start_dose_when_drug_is_new_or_was_zero():
    cur = H.simple_rx()                                    # morphine only
    assert only(probs(H.ziconotide_rx(4002), current=cur), R.START_DOSE, "drugs[0]")
    cur = H.ziconotide_rx(0)
    assert only(probs(H.ziconotide_rx(4002), current=cur), R.START_DOSE, "drugs[0]")
    assert ok(H.ziconotide_rx(4000), current=cur)


def test_titration_step_absolute():
    cur = H.ziconotide_rx(4000)                            # 2400
    assert ok(H.ziconotide_rx(8000), current=cur)          # 4800: +2400 exactly
    assert only(probs(H.ziconotide_rx(8002), current=cur), R.TITRATION_STEP, "drugs[0]")
    assert ok(H.ziconotide_rx(2000), current=cur)          # decreases are always fine


def test_titration_step_percent():
    cur = H.baclofen_rx(12500)                             # 150000 ng; +30 % = 45000
    assert ok(H.baclofen_rx(16250), current=cur)           # 195000
    assert only(probs(H.baclofen_rx(16251), current=cur), R.TITRATION_STEP, "drugs[0]")


def test_titration_interval():
    cur = H.ziconotide_rx(4000)
    new = H.ziconotide_rx(6000)
    assert ok(new, current=cur, last_increase_age_ms=H48)
    assert only(probs(new, current=cur, last_increase_age_ms=H48 - 1),
                R.TITRATION_INTERVAL, "drugs[0]")
    assert ok(new, current=cur, last_increase_age_ms=None)     # never increased
    assert only(probs(new, current=cur, last_increase_age_ms={"ziconotide": 5}),
                R.TITRATION_INTERVAL, "drugs[0]")
    assert ok(new, current=cur, last_increase_age_ms={"morphine": 5})
    assert only(probs(new, current=cur, now_mono_ms_since_last_increase=5),
                R.TITRATION_INTERVAL, "drugs[0]")             # alias keyword
    # a decrease or an unchanged dose is never limited by the interval
    assert ok(H.ziconotide_rx(4000), current=cur, last_increase_age_ms=0)
    assert ok(H.ziconotide_rx(3000), current=cur, last_increase_age_ms=0)


def test_increased_drugs():
    cur = H.ziconotide_rx(4000)
    assert P.increased_drugs(H.ziconotide_rx(6000), cur, LIB) == ["ziconotide"]
    assert P.increased_drugs(H.ziconotide_rx(4000), cur, LIB) == []
    assert P.increased_drugs(H.ziconotide_rx(3000), cur, LIB) == []
    assert P.increased_drugs(H.admixture_rx(), H.baclofen_rx(12500), LIB) == ["clonidine"]
    assert P.increased_drugs(H.baclofen_rx(), None, LIB) == ["baclofen"]


# --- review: changes -----------------------------------------------------------------------------


def test_changes_vs_current():
    cur = H.morphine_rx()
    new = H.morphine_rx()
    new["basal"]["steps"][1][1] = 35000
    new["patient"]["lockout_ms"] = 7200000
    problems, rv = P.validate(new, LIB, current=cur)
    assert problems == []
    assert rv["changes"] == [["basal.steps[1].rate", 30000, 35000],
                             ["patient.lockout_ms", 3600000, 7200000]]
    assert P.validate(cur, LIB, current=H.morphine_rx())[1]["changes"] == []


def test_changes_added_and_removed_parts():
    cur = H.morphine_rx()
    new = H.morphine_rx()
    new["patient"] = None
    new["basal"]["steps"].append([1200, 2000])
    ch = P.changes(cur, new)
    assert ["basal.steps[2].start", None, 1200] in ch
    assert ["basal.steps[2].rate", None, 2000] in ch
    assert ["patient.max_per_24h", 4, None] in ch
    a = H.flex_rx()
    b = H.flex_rx()
    b["basal"]["days"]["sat"][1][1] = 5000
    assert P.changes(a, b) == [["basal.days.sat[1].rate", 11000, 5000]]
    assert ["basal.days.sun[1].rate", None, 15000] in P.changes(H.morphine_rx(), a)
    first = P.changes(None, H.simple_rx())
    assert ["basal.steps[0].rate", None, 10000] in first
    assert ["drugs[0].name", None, "morphine"] in first


# --- checksum ------------------------------------------------------------------------------------


def _leaves(obj, path, out):
    if isinstance(obj, dict):
        for k in obj:
            _leaves(obj[k], path + (k,), out)
    elif isinstance(obj, list):
        for i in range(len(obj)):
            _leaves(obj[i], path + (i,), out)
    else:
        out.append(path)


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def test_checksum_known_vector_same_on_every_runtime():
    # pinned value: CPython and MicroPython must both produce it (canonical form is portable)
    assert P.checksum(H.morphine_rx()) == "c5381db1756f53b0"
    assert P.canonical({"b": [1, None], "a": "x"}) == b"d2{s1:as1:xs1:bl2[i1;n]}"


def test_checksum_changes_with_every_leaf():
    for base in H.all_examples():
        c0 = P.checksum(base)
        paths = []
        _leaves(base, (), paths)
        for path in paths:
            old = _get(base, path)
            for new in ([old + 1, old - 1, None] if isinstance(old, int) and old is not True
                        else [0, "x"] if old is None else [old + "a", None]):
                rx = P.normalize(base)
                _set(rx, path, new)
                assert P.checksum(rx) != c0, (path, new)


def test_checksum_distinguishes_types_and_structure():
    rx = H.morphine_rx()
    c0 = P.checksum(rx)
    rx["basal"]["steps"][0][0] = False                     # False vs 0
    assert P.checksum(rx) != c0
    rx = H.morphine_rx()
    rx["basal"]["steps"] = [[0, 20000, 480, 30000]]        # flattened list
    assert P.checksum(rx) != c0
    rx = H.morphine_rx()
    rx["drugs"][0]["name"] = "morphine "
    assert P.checksum(rx) != c0
    assert P.checksum({"a": "1"}) != P.checksum({"a": 1})
    assert P.checksum({"a": ["b"]}) != P.checksum({"a": "b"})


def test_checksum_deterministic_and_normalized():
    a = H.morphine_rx()
    b = H.morphine_rx()
    # rebuild b's dicts in reverse insertion order
    b = dict(reversed(list(b.items())))
    b["reservoir"] = dict(reversed(list(b["reservoir"].items())))
    assert P.checksum(a) == P.checksum(b) == P.checksum(a)
    n = P.normalize(a)
    assert P.checksum(n) == P.checksum(a)
    assert P.normalize(n) == n
    # missing optional parts normalize to their explicit defaults
    c = H.morphine_rx()
    del c["basal"]["days"]
    del c["drugs"][0]["hard_ng_per_day"]
    assert P.checksum(c) == P.checksum(a)
    d = H.simple_rx()
    e = H.simple_rx()
    del e["periodic"]
    del e["patient"]
    assert P.checksum(d) == P.checksum(e)
    e["basal"]["days"] = {"sun": None}
    assert P.checksum(d) == P.checksum(e)


def test_normalize_does_not_mutate_input():
    rx = H.morphine_rx()
    del rx["periodic"]
    n = P.normalize(rx)
    assert "periodic" not in rx and n["periodic"] == []
    n["basal"]["steps"][0][1] = 1
    assert rx["basal"]["steps"][0][1] == 20000
    assert P.normalize(None) is None and P.normalize(5) == 5


def test_deeply_nested_input_never_raises():
    deep = 0
    for _ in range(60):
        deep = [deep]
    ddeep = {}
    for _ in range(60):
        ddeep = {"a": ddeep}
    for w in (deep, ddeep):
        for part in ("basal", "patient", "drugs"):
            rx = H.morphine_rx()
            rx[part] = w
            problems, rv = P.validate(rx, LIB, current=H.morphine_rx())
            assert has(problems, R.INVALID)
            for p in problems:
                assert p[1] != P.INTERNAL_FIELD
            assert len(rv["checksum"]) == 16
            # and as the current program
            problems, rv = P.validate(H.morphine_rx(), LIB, current=rx)
            assert problems == []
