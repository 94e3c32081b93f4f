# The drug library on the Pump facade: loaded as data (stage + commit), refused whole, never
# loosening what the committed program's hard limits hold; continuing therapy; a refill that
# commits with its program; refusals that carry their details. Plain asserts (CPython and
# MicroPython).
import rx_helpers as RXH
from library_helpers import core_library, core_record
from pump_helpers import DAY, HOUR, MIN, kinds, programmed, run
from pumpcore import library as L
from pumpcore import reasons as R
from pumpcore.pump import Pump


def _lib_with(field, value, drug=1, version="2", **more):
    rec = core_record()
    rec["version"] = version
    rec["drugs"][drug][L.FIELDS.index(field)] = value
    for k in more:
        rec["drugs"][drug][L.FIELDS.index(k)] = more[k]
    return rec


def _load(p, rec, loosen=False):
    code, rv = p.library_stage(rec)
    assert code == "ok", (code, rv)
    return p.library_commit(rv["checksum"], confirm_loosening=loosen)


def test_no_library_refuses_every_program_until_one_is_loaded():
    p = Pump()
    p.boot()
    code, data = p.stage(RXH.morphine_rx())
    assert code == R.NO_LIBRARY and p.staged is None
    assert p.status()["library"] is None
    assert p.library_show()[0] == R.NO_LIBRARY
    code, rv = p.library_stage(core_record())
    assert code == "ok" and rv["added"] == ["baclofen", "morphine", "ziconotide"]
    assert rv["current"] is None and rv["loosens"] == [] and rv["drugs"] == 3
    assert p.library is None                              # nothing changes before the commit
    assert p.library_commit("0" * 16)[0] == R.CHECKSUM_MISMATCH
    code, ident = p.library_commit(rv["checksum"])
    assert code == "ok" and ident["checksum"] == rv["checksum"] and p.library_changed
    assert p.status()["library"] == ident
    code, shown = p.library_show()
    assert code == "ok" and shown["drugs"] == core_record()["drugs"]
    assert shown["checksum"] == rv["checksum"]
    assert ("library_loaded", None) in kinds(p.pop_events())
    assert p.stage(RXH.morphine_rx())[0] == "ok"


def test_a_refused_library_changes_nothing():
    p = Pump(library=core_library())
    p.boot()
    before = p.library.checksum
    code, data = p.library_stage(_lib_with("soft_ng_per_day", 40000000))   # soft above hard
    assert code == R.LIBRARY_RANGE and p.staged_library is None
    assert data["problems"][0][:2] == [R.LIBRARY_RANGE, "drugs[1].soft_ng_per_day"]
    assert p.library.checksum == before and not p.library_changed
    assert p.library_commit(before)[0] == R.NOTHING_STAGED


def test_loosening_needs_its_own_confirmation():
    p = Pump(library=core_library())
    p.boot()
    code, rv = p.library_stage(_lib_with("hard_ng_per_day", 40000000))
    assert code == "ok" and rv["loosens"] == ["morphine"] and rv["changed"] == ["morphine"]
    code, data = p.library_commit(rv["checksum"])
    assert code == R.LOOSENING_UNCONFIRMED and data == {"drugs": ["morphine"]}
    assert p.library.entry("morphine").hard_ng_per_day == 30000000
    assert p.library_commit(rv["checksum"], confirm_loosening=True)[0] == "ok"
    assert p.library.entry("morphine").hard_ng_per_day == 40000000
    ev = [e for e in p.pop_events() if e["kind"] == "library_loaded"][0]
    assert ev["data"]["loosens"] == ["morphine"] and ev["data"]["version"] == "2"


def test_a_library_the_running_program_breaks_is_refused():
    p = programmed(RXH.simple_rx(50000))        # morphine 12 mg/day, running
    code, data = p.library_stage(_lib_with("hard_ng_per_day", 10000000,
                                           soft_ng_per_day=8000000))
    assert code == R.LIBRARY_CONFLICT
    prob = data["problems"][0]
    assert prob[:2] == [R.LIBRARY_CONFLICT, "drugs[0]"]
    assert prob[2]["conflict"] == R.HARD_LIMIT and prob[2]["program"] == "program"
    assert prob[2]["value"] == 12000000 and prob[2]["limit"] == 10000000
    code, data = p.library_stage(_lib_with("conc_max_ug_per_ml", 5000, version="3",
                                           conc_min_ug_per_ml=500))
    assert code == R.LIBRARY_CONFLICT                      # 10 mg/mL no longer in range
    assert data["problems"][0][2]["conflict"] == R.CONCENTRATION_RANGE
    assert p.library.checksum == core_library().checksum


def test_a_library_change_never_loosens_the_guard_and_tightens_it_at_once():
    p = programmed(RXH.simple_rx(50000))        # morphine 12 mg/day; hard 30 mg/day
    d = p._slot_of("morphine")
    assert p._hard_ng[d] == 30000000
    assert _load(p, _lib_with("hard_ng_per_day", 60000000), loosen=True)[0] == "ok"
    assert p._hard_ng[d] == 30000000            # looser library: the program keeps its limit
    assert p.rx_review["limits"]["morphine"] == [20000000, 30000000]
    assert _load(p, _lib_with("hard_ng_per_day", 15000000, version="3",
                              soft_ng_per_day=14000000))[0] == "ok"
    assert p._hard_ng[d] == 15000000            # stricter: at once (the program fits under it)
    assert p.rx_review["limits"]["morphine"] == [14000000, 15000000]
    # a restart restores the stricter limit, and the stored program still loads
    snap = p.snapshot()
    q = Pump(library=p.library)
    assert q.restore(snap) == "ok" and q._hard_ng[d] == 15000000


def test_a_pending_program_cannot_bring_back_a_looser_limit():
    p = programmed(RXH.simple_rx(50000))
    run(p, DAY)
    code, rv = p.stage(RXH.simple_rx(60000))          # 14.4 mg/day, within +30 %
    assert code == "ok"
    assert p.commit(rv["checksum"])[0] == "ok" and p._pending is not None
    assert _load(p, _lib_with("hard_ng_per_day", 16000000, soft_ng_per_day=15000000))[0] == "ok"
    run(p, 5 * MIN)                                    # the pending program applies
    assert p._pending is None
    assert p._hard_ng[p._slot_of("morphine")] == 16000000


def test_restore_keeps_a_program_committed_under_another_library():
    p = programmed(RXH.simple_rx(50000))
    snap = p.snapshot()
    other = L.validate_record(_lib_with("conc_min_ug_per_ml", 20000))[1]   # 10 mg/mL not allowed
    q = Pump(library=other)
    assert q.restore(snap) == "ok" and q.rx == p.rx
    assert Pump().restore(snap) == "ok"                # even with no library at all


def test_a_library_change_discards_the_staged_program():
    p = programmed(RXH.simple_rx(50000))
    assert p.stage(RXH.simple_rx(40000))[0] == "ok"
    assert _load(p, _lib_with("soft_ng_per_day", 19000000))[0] == "ok"
    assert p.staged is None and ("staged_discarded", None) in kinds(p.pop_events())


def test_first_program_above_the_start_rule_needs_continuing_confirmation():
    p = Pump(library=core_library())
    p.boot()
    rx = RXH.baclofen_rx(75000)                        # 900 ug/day; start rule 300 ug/day
    code, rv = p.stage(rx)
    assert code == "ok" and rv["start_breaches"][0]["drug"] == "baclofen"
    assert rv["start_breaches"][0]["value"] == 900000 and rv["start_breaches"][0]["limit"] == 300000
    code, data = p.commit(rv["checksum"], confirm_soft=True)
    assert code == R.START_DOSE_UNCONFIRMED and data["drugs"][0]["drug"] == "baclofen"
    assert p.rx is None
    assert p.commit(rv["checksum"], confirm_soft=True, continuing=True)[0] == "ok"
    ev = kinds(p.pop_events())
    assert ("continuing_therapy", None) in ev and ("committed", None) in ev
    # on a pump that already runs a program, a new drug above its start rule stays refused
    code, data = p.stage(RXH.ziconotide_rx(8000))      # 4.8 ug/day > 2.4 start
    assert code == R.START_DOSE and data["problems"][0][2]["first_program"] is False


def test_refill_with_a_new_program_is_all_or_nothing():
    p = programmed(RXH.simple_rx(10000), start=False)
    run(p, DAY)
    rx = RXH.simple_rx(40000)                          # 9.6 mg/day from 2.4: a titration step
    rx["drugs"][0]["conc_ug_per_ml"] = 20000
    assert p.stage(rx)[0] == R.TITRATION_STEP          # refused: nothing recorded
    before = p.reservoir.remaining_nl
    rx = RXH.simple_rx(10000)
    rx["drugs"][0]["conc_ug_per_ml"] = 12000           # 2.88 mg/day: within the step
    code, rv = p.stage(rx)
    assert code == "ok"
    # a refused commit (checksum) records no refill either
    assert p.commit("0" * 16, refill_nl=19000000)[0] == R.CHECKSUM_MISMATCH
    assert p.reservoir.remaining_nl == before and not p.needs_program
    code, data = p.commit(rv["checksum"], refill_nl=21000000)      # above the capacity
    assert code == R.BAD_VALUE and data["max"] == 20000000 and p.reservoir.remaining_nl == before
    assert p.commit(rv["checksum"], refill_nl=19000000)[0] == "ok"
    assert p.reservoir.remaining_nl == 19000000 and not p.needs_program
    assert p._concs[p._slot_of("morphine")] == 12000
    ev = kinds(p.pop_events())
    assert ev.index(("refilled", None)) < ev.index(("committed", None))
    # while running a refill is not allowed: neither is a commit that brings one
    p2 = programmed(RXH.simple_rx(10000))
    code, rv = p2.stage(RXH.simple_rx(9000))
    code, data = p2.commit(rv["checksum"], refill_nl=18000000)
    assert code == R.NOT_ALLOWED and data["state"] == "running" and "stopped" in data["allowed_in"]
    assert p2.staged is not None                        # still staged: stop, then commit again


def test_refusals_carry_their_details():
    p = programmed(RXH.morphine_rx())
    code, data = p.prime(150000)
    assert code == R.NOT_ALLOWED and data == {"state": "running", "allowed_in": ["stopped"]}
    code, data = p.patient_bolus()                     # lockout after programming
    assert code == R.LOCKOUT and data["lockout_ms"] == HOUR
    assert 0 < data["remaining_ms"] <= HOUR
    code, data = p.ack("nonsense")
    assert code == R.UNKNOWN_ALARM and data["active"] == [] and "occlusion" in data["known"]
    code, data = p.ack("occlusion")
    assert code == R.UNKNOWN_ALARM and "known" not in data
    code, data = p.suspend(5000)
    assert code == R.BAD_VALUE and data["arg"] == "minutes" and data["max"] == 1440
    run(p, 2 * HOUR + 30 * MIN)
    for _ in range(4):                                  # four boluses, one an hour (max 4/24 h)
        assert p.patient_bolus()[0] == "ok"
        run(p, HOUR)
    code, data = p.patient_bolus()
    assert code == R.MAX_PER_24H and data["count"] == 4 and data["max"] == 4
    assert 19 * HOUR < data["wait_ms"] <= 20 * HOUR   # the first of the four leaves the window
    q = Pump(library=core_library())
    q.boot()
    assert q.start() == (R.NO_PROGRAM, {})
    code, rv = q.stage(RXH.morphine_rx())
    q.commit(rv["checksum"])
    code, data = q.start()
    assert code == R.CLOCK_NOT_SET
    q.set_clock(9800, 0)
    code, data = q.start()
    assert code == R.NOT_PRIMED and data == {"catheter_nl": 150000, "catheter_fill_nl": 0}


def test_stage_refusal_lists_every_problem_with_numbers_and_no_change_list():
    p = programmed(RXH.simple_rx(10000))              # 2.4 mg/day
    rx = RXH.simple_rx(151667)                         # 36.4 mg/day
    code, data = p.stage(rx)
    assert code == R.HARD_LIMIT
    got = dict((q[0], q[2]) for q in data["problems"])
    assert got[R.HARD_LIMIT] == {"drug": "morphine", "value": 36400080, "limit": 30000000,
                                 "unit": "ng/day"}
    assert got[R.TITRATION_STEP]["current"] == 2400000
    assert got[R.TITRATION_STEP]["limit"] == 3400000   # +1 mg/day (more than +30 %)
    assert "changes" not in data["review"] and data["review"]["daily_ng"]["morphine"] == 36400080
    run(p, DAY)
    code, rv = p.stage(RXH.simple_rx(12000))
    assert code == "ok"
    p.commit(rv["checksum"])
    run(p, HOUR)
    code, data = p.stage(RXH.simple_rx(13000))        # a second increase within 24 h
    assert code == R.TITRATION_INTERVAL
    d = data["problems"][0][2]
    assert d["interval_ms"] == DAY and DAY - 2 * HOUR < d["wait_ms"] <= DAY - HOUR
