# Resets (docs/therapy.md "Resets and accounting"): the write-ahead reservation is counted as
# delivered after a reset (fail towards less drug), every reset is logged and alarmed with its
# cause, three within an hour are a reset loop (safe state), an interrupted bolus is reported and
# not resumed.
import rx_helpers as RXH
from library_helpers import core_library
from pump_helpers import HOUR, MIN, kinds, programmed, run
from pumpcore.pump import Pump


def _rebooted(p, cause="power_on"):
    q = Pump(library=core_library())
    assert q.restore(p.snapshot()) == "ok"
    q.note_reset(cause)
    q.boot(resume=q.was_running())
    return q


def _alarm(p, code):
    for a in p.status()["alarms"]:
        if a[0] == code:
            return a
    return None


def _clonidine_rx(rate):
    rx = RXH.simple_rx(rate)
    rx["drugs"] = [{"name": "clonidine", "conc_ug_per_ml": 100,
                    "hard_ng_per_day": 3000000, "soft_ng_per_day": 3000000}]
    return rx


def test_the_reservation_is_counted_as_delivered_after_a_reset():
    p = programmed(_clonidine_rx(1000000))          # 1 mL/h: the 10-uL cap (40 strokes) applies
    run(p, 10 * MIN)
    snap = p.snapshot()
    assert snap["reserve"] == 40
    before = p.status()
    q = _rebooted(p)
    st = q.status()
    assert st["delivered_nl"] == before["delivered_nl"] + 40 * 250
    assert st["strokes"] == before["strokes"] + 40
    assert before["reservoir_nl"] - st["reservoir_nl"] == 40 * 250
    # the ledger gets 10 uL at the highest concentration the drug has (100 ug/mL): 1 ug, + 5 %
    assert st["rolling_24h_ng"]["clonidine"] == before["rolling_24h_ng"]["clonidine"] + 1050
    assert st["presumed"] == {"strokes": 40, "nl": 10000, "drug_ng": {"clonidine": 1000}}
    assert st["state"] == "running"


def test_the_reservation_is_what_30_min_at_the_highest_basal_can_deliver_at_low_rates():
    rx = RXH.simple_rx(2000)                         # 0.048 mL/day
    rx["basal"]["steps"] = [[0, 2000], [600, 4000]]  # the highest step counts, whenever it is
    p = programmed(rx)
    assert p.snapshot()["reserve"] == 4000 * 30 // 60 // 250 + 1      # 9 strokes
    p.stop()
    assert p.snapshot()["reserve"] == 0              # stopped: nothing can be hidden
    q = _rebooted(p)
    assert q.status()["presumed"]["strokes"] == 0


def test_every_reset_is_logged_and_alarmed_with_its_cause():
    p = programmed(RXH.morphine_rx())
    run(p, HOUR)
    q = _rebooted(p, "power_on")
    ev = kinds(q.pop_events())
    assert ("reset", "power_on") in ev and ("alarm_raised", "unexpected_reset") in ev
    assert _alarm(q, "unexpected_reset")[:3] == ["unexpected_reset", "low", False]
    assert q.state == "running"                      # a low alarm: therapy resumes
    assert q.patient_bolus()[0] in ("ok", "lockout")  # a low alarm does not block boluses
    run(q, 2 * HOUR)                                 # well outside the reset-loop window
    r = _rebooted(q, "watchdog")
    assert ("reset", "watchdog") in kinds(r.pop_events())
    assert _alarm(r, "watchdog_reset")[:3] == ["watchdog_reset", "medium", False]
    assert r.state == "running"
    assert r.patient_bolus()[0] == "alarm"           # until a clinician acknowledges it
    assert r.ack("watchdog_reset") == ("ok", None)
    assert _alarm(r, "watchdog_reset") is None       # an event alarm: gone once acknowledged
    assert r.status()["resets"] == 2 and r.status()["last_reset"]["cause"] == "watchdog"


def test_three_resets_within_an_hour_are_a_reset_loop_and_stop_in_the_safe_state():
    p = programmed(RXH.baclofen_rx())
    q = p
    for i in range(2):
        run(q, 10 * MIN)
        q = _rebooted(q, "watchdog")
        assert q.state == "running", i
    run(q, 10 * MIN)
    q = _rebooted(q, "watchdog")
    assert q.state == "safe_state" and not q.motor_enabled()
    assert _alarm(q, "reset_loop")[:2] == ["reset_loop", "high"]
    assert q.status()["last_reset"]["recent"] == 3
    # only a clinician's freshly committed program leaves it
    assert q.start()[0] == "not_allowed"
    code, review = q.stage(RXH.baclofen_rx())
    assert code == "ok"
    assert q.commit(review["checksum"])[0] == "ok" and q.state == "stopped"


def test_resets_spread_over_more_than_the_window_are_not_a_loop():
    q = programmed(RXH.baclofen_rx())
    for _ in range(5):
        run(q, 31 * MIN)
        q = _rebooted(q)
        assert q.state == "running"


def test_an_interrupted_bolus_is_reported_and_not_resumed():
    p = programmed(RXH.morphine_rx())
    run(p, 2 * HOUR)
    assert p.clinician_bolus(50000, 30 * MIN)[0] == "ok"
    run(p, 10 * MIN)
    q = _rebooted(p)
    ev = [e for e in q.pop_events() if e["kind"] == "bolus_interrupted"]
    assert len(ev) == 1 and ev[0]["code"] == "clinician"
    assert ev[0]["data"]["volume_nl"] == 50000 and 0 < ev[0]["data"]["delivered_nl"] < 50000
    assert q.status()["bolus"] is None
    assert q.status()["last_reset"]["interrupted_bolus"]["kind"] == "clinician"


def test_a_version_1_record_restores_with_the_full_reservation_presumed():
    p = programmed(RXH.simple_rx(20000))
    run(p, HOUR)
    snap = p.snapshot()
    for k in ("reserve", "bolus", "hard_ng", "held_strokes", "periodic_last", "presumed",
              "resets", "reset_count"):
        del snap[k]
    snap["v"] = 1
    q = Pump(library=core_library())
    assert q.restore(snap) == "ok"
    q.note_reset("power_on")
    assert q.status()["presumed"]["strokes"] == 40
    assert q._hard_ng[q.slot_names.index("morphine")] == 30000000
