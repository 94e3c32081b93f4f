# Periodic boluses on the wall clock, spaced on the monotonic clock (docs/therapy.md "Time
# base"): a start time never starts again within 23 h of monotonic time, whatever is done to the
# wall clock; DST and travel behave as documented.
import rx_helpers as RXH
from library_helpers import core_library
from pump_helpers import DAY, HOUR, MIN, MONDAY, kinds, programmed, run
from pumpcore.pump import Pump


def _periodic_rx():
    rx = RXH.morphine_rx()                      # periodic 25 uL at 06:00 and 18:00
    rx["patient"] = None
    return rx


def _starts(events):
    return [e for e in events if e["kind"] == "bolus_start" and e["code"] == "periodic"]


def test_setting_the_clock_back_after_each_periodic_bolus_never_repeats_it():
    # Issue sequence: the clock set back to 05:59 after each 06:00 periodic bolus, for 48 h,
    # used to give it every minute (5.2 x the programmed dose, 1.26 x the hard limit).
    p = programmed(_periodic_rx(), at=(MONDAY[0], 5 * HOUR + 55 * MIN))
    starts_mono = []
    for _ in range(48 * 60):
        run(p, MIN)
        ev = p.pop_events()
        for e in _starts(ev):
            starts_mono.append(e["up_s"])
            if p.wall.ms // MIN == 6 * 60:          # the 06:00 bolus just started: set it back
                assert p.set_clock(p.wall.day, 5 * HOUR + 59 * MIN)[0] == "ok"
    # at most the two programmed starts (06:00, 18:00) in any 24 h of monotonic time
    for i in range(len(starts_mono)):
        within = [s for s in starts_mono if 0 <= s - starts_mono[i] < 86400]
        assert len(within) <= 2, starts_mono
    assert len(starts_mono) >= 3                     # therapy itself goes on


def test_dst_autumn_repeats_nothing_and_spring_gives_the_bolus():
    # a start at 02:30: in autumn the clock goes back 03:00 -> 02:00, 02:30 comes twice by the
    # wall clock but is given once; in spring 02:00 -> 03:00 the next day's 06:00 comes 23 h after
    # the last one and is given.
    rx = _periodic_rx()
    rx["periodic"] = [{"times_min": [150], "volume_nl": 25000, "duration_ms": 600000}]
    p = programmed(rx, at=(MONDAY[0], 2 * HOUR))
    run(p, HOUR)                                    # 03:00: the 02:30 bolus was given
    assert len(_starts(p.pop_events())) == 1
    assert p.set_clock(MONDAY[0], 2 * HOUR)[0] == "ok"   # autumn: back to 02:00
    run(p, 2 * HOUR)
    ev = p.pop_events()
    assert _starts(ev) == []
    assert ("periodic_skipped", "too_soon") in kinds(ev)
    # spring: one day later the clock jumps 02:00 -> 03:00 at 02:00 ... the 02:30 start is
    # jumped over (not made up); the start on the day after comes 23 h after the last given
    p2 = programmed(_periodic_rx(), at=(MONDAY[0], 5 * HOUR))
    run(p2, 2 * HOUR)                               # 07:00: the 06:00 bolus was given
    assert len(_starts(p2.pop_events())) == 1
    run(p2, 22 * HOUR)                              # 05:00 the next day (18:00 given)
    assert len(_starts(p2.pop_events())) == 1
    assert p2.set_clock(p2.wall.day, 6 * HOUR - 1)[0] == "ok"   # clock forward 1 h (spring)
    run(p2, MIN)
    assert len(_starts(p2.pop_events())) == 1       # 23 h after the last: given


def test_eastward_travel_skips_each_start_once_then_follows_local_time():
    p = programmed(_periodic_rx(), at=(MONDAY[0], 5 * HOUR))
    run(p, 2 * HOUR)                                # 06:00 given
    assert len(_starts(p.pop_events())) == 1
    run(p, 12 * HOUR)                               # 19:00, 18:00 given
    assert len(_starts(p.pop_events())) == 1
    # fly 7 h east: at 19:00 home time it is 02:00 the next day
    assert p.set_clock(p.wall.day + 1, 2 * HOUR)[0] == "ok"
    run(p, 5 * HOUR)                                # 07:00 local: 06:00 came 17 h after the last
    ev = p.pop_events()
    assert _starts(ev) == [] and ("periodic_skipped", "too_soon") in kinds(ev)
    run(p, 12 * HOUR)                               # 19:00 local: 18:00 came 17 h after too
    ev = p.pop_events()
    assert _starts(ev) == [] and ("periodic_skipped", "too_soon") in kinds(ev)
    run(p, 12 * HOUR)                               # 07:00 local the next day: 06:00 given again
    assert len(_starts(p.pop_events())) == 1
    run(p, 12 * HOUR)                               # and 18:00: the schedule is in the new zone
    assert len(_starts(p.pop_events())) == 1


def test_periodic_spacing_survives_a_reset():
    p = programmed(_periodic_rx(), at=(MONDAY[0], 5 * HOUR))
    run(p, HOUR + MIN)                              # 06:01: the 06:00 bolus runs
    assert len(_starts(p.pop_events())) == 1
    q = Pump(library=core_library())
    assert q.restore(p.snapshot()) == "ok"
    q.note_reset("power_on")
    q.boot(resume=q.was_running())
    assert q.set_clock(q.wall.day, 6 * HOUR - 1000)[0] == "ok"   # a clinician sets 05:59:59
    run(q, 10 * MIN)
    ev = q.pop_events()
    assert _starts(ev) == [] and ("periodic_skipped", "too_soon") in kinds(ev)
    assert q.status()["state"] == "running"
    run(q, DAY)
    assert len(_starts(q.pop_events())) == 2          # 18:00 and the next 06:00
