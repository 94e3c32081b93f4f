# The patient bolus gate, in order: not_running, alarm, bolus_active, lockout, max_per_24h,
# dose_limit — each refusal with its reason, a log entry and a counter. Clinician boluses.
import rx_helpers as RXH
from pump_helpers import DAY, HOUR, MIN, kinds, programmed, run


def _denied(p):
    return p.status()["patient_bolus"]["denied"]


def test_not_running():
    p = programmed(RXH.morphine_rx(), start=False)
    assert p.patient_bolus()[0] == "not_running"
    p.start()
    p.suspend(10)
    assert p.patient_bolus()[0] == "not_running"
    assert _denied(p)["not_running"] == 2
    assert ("refused", "patient_bolus") in kinds(p.pop_events())


def test_not_configured_when_program_has_no_patient_bolus():
    p = programmed(RXH.simple_rx(10000))
    assert p.patient_bolus()[0] == "not_configured"


def test_alarm_blocks_and_is_checked_before_bolus_active():
    p = programmed(RXH.morphine_rx())
    run(p, 2 * HOUR)
    assert p.patient_bolus()[0] == "ok"
    p.raise_alarm("under_infusion")                       # medium: cancels the bolus too
    assert p.status()["bolus"] is None
    assert p.patient_bolus()[0] == "alarm"
    p.ack("under_infusion")
    p.clear_condition("under_infusion")
    run(p, HOUR)
    assert p.patient_bolus()[0] == "ok"


def test_low_priority_alarm_does_not_block():
    p = programmed(RXH.morphine_rx())
    run(p, 2 * HOUR)
    p.raise_alarm("reservoir_low")
    assert p.patient_bolus()[0] == "ok"


def test_bolus_active_then_lockout_from_start_of_last_bolus():
    p = programmed(RXH.morphine_rx())                     # lockout 60 min, bolus 2 min
    run(p, 2 * HOUR)
    assert p.patient_bolus()[0] == "ok"
    assert p.patient_bolus()[0] == "bolus_active"
    run(p, 2 * MIN)
    assert p.status()["bolus"] is None
    assert p.patient_bolus()[0] == "lockout"
    run(p, 57 * MIN)
    assert p.patient_bolus()[0] == "lockout"              # 59 min after the START
    run(p, MIN)
    assert p.patient_bolus()[0] == "ok"                   # exactly 60 min after the start


def test_lockout_restarts_after_commit():
    p = programmed(RXH.morphine_rx())
    run(p, 2 * HOUR)
    code, review = p.stage(RXH.morphine_rx())
    p.commit(review["checksum"])
    assert p.patient_bolus()[0] == "lockout"


def test_max_per_24h_counts_starts_in_preceding_24h():
    rx = RXH.morphine_rx()
    rx["patient"]["lockout_ms"] = 10 * MIN
    rx["patient"]["max_per_24h"] = 3
    p = programmed(rx)
    run(p, 2 * HOUR)
    for _ in range(3):
        assert p.patient_bolus()[0] == "ok"
        run(p, 10 * MIN)
    assert p.patient_bolus()[0] == "max_per_24h"
    run(p, DAY - 30 * MIN - MIN)
    assert p.patient_bolus()[0] == "max_per_24h"          # first start was 23 h 59 min ago
    run(p, MIN)
    assert p.patient_bolus()[0] == "ok"


def test_dose_limit_uses_rolling_24h_amount_and_hard_limit():
    rx = RXH.morphine_rx()
    # tighten the hard limit so basal + 1 bolus fits but a few more do not (the ledger counts
    # every stroke at the top of the mechanism's accuracy, +5 %)
    rx["drugs"][0]["hard_ng_per_day"] = 7400000
    rx["drugs"][0]["soft_ng_per_day"] = 7400000
    rx["patient"]["lockout_ms"] = 10 * MIN
    p = programmed(rx)
    run(p, DAY)                                           # 690 uL -> 6.9 mg -> 7.245 mg counted
    assert p.patient_bolus()[0] == "ok"                   # +0.105 mg -> 7.35 mg
    run(p, 15 * MIN)
    code = "ok"
    n = 0
    while code == "ok" and n < 10:
        code = p.patient_bolus()[0]
        run(p, 15 * MIN)
        n += 1
    assert code in ("dose_limit", "max_per_24h")
    total = p.status()["rolling_24h_ng"]["morphine"]
    assert total <= 7400000


def test_dose_limit_refusal_is_exact_at_the_edge():
    rx = RXH.morphine_rx()
    rx["drugs"][0]["hard_ng_per_day"] = 7300000
    rx["drugs"][0]["soft_ng_per_day"] = 7300000
    p = programmed(rx)
    run(p, DAY)
    ledger = p.status()["rolling_24h_ng"]["morphine"]
    # one ng too many for a 100000 ng bolus, counted at +5 % (the mechanism's accuracy): 105000
    p.ledger.add(0, 7300000 - 105000 - ledger + 1)
    assert p.patient_bolus()[0] == "dose_limit"
    p.ledger.add(0, -1)
    assert p.patient_bolus()[0] == "ok"


def test_counters_requested_delivered_denied():
    p = programmed(RXH.morphine_rx())
    run(p, 2 * HOUR)
    p.patient_bolus()
    p.patient_bolus()
    run(p, 5 * MIN)
    p.patient_bolus()
    pb = p.status()["patient_bolus"]
    assert pb["requested"] == 3
    assert pb["delivered"] == 1
    assert pb["denied"]["bolus_active"] == 1
    assert pb["denied"]["lockout"] == 1
    assert sum(pb["denied"].values()) + pb["delivered"] == pb["requested"]


def test_bolus_adds_to_basal_and_never_changes_it():
    rx = RXH.morphine_rx()
    rx["basal"]["steps"] = [[0, 10000]]
    rx["periodic"] = []
    p = programmed(rx)
    run(p, HOUR + 1)                                      # past the commit lockout
    before = p.status()["basal_rate_nl_per_h"]
    assert p.patient_bolus()[0] == "ok"
    st = p.status()
    assert st["basal_rate_nl_per_h"] == before == 10000
    assert st["rate_nl_per_h"] == 10000 + 300000          # 10 uL over 2 min = 300 uL/h on top
    run(p, 2 * MIN)
    assert p.status()["rate_nl_per_h"] == 10000


def test_clinician_bolus_checks():
    p = programmed(RXH.morphine_rx())
    assert p.clinician_bolus(0, 10 * MIN)[0] == "bad_value"
    assert p.clinician_bolus(10000, 0)[0] == "bad_value"
    assert p.clinician_bolus(900000, 60 * MIN)[0] in ("dose_limit", "bolus_amount")
    assert p.clinician_bolus(20000, 10 * MIN)[0] == "ok"
    assert p.clinician_bolus(20000, 10 * MIN)[0] == "bolus_active"
    p.stop()
    assert p.clinician_bolus(20000, 10 * MIN)[0] == "not_allowed"


def test_clinician_bolus_delivers_its_volume():
    p = programmed(RXH.simple_rx(10000))
    base = run(p, HOUR)
    assert p.clinician_bolus(50000, 30 * MIN)[0] == "ok"
    strokes = run(p, HOUR, chunk=7 * 1000)
    assert strokes == base + 200                          # 50000 nL / 250 on top of basal
