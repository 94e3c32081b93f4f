# Helpers for the Pump facade tests (plain functions; run under CPython and MicroPython).
from library_helpers import core_library
from pumpcore.clock import from_ymd_hms
from pumpcore.pump import Pump

MONDAY = from_ymd_hms(2026, 1, 5)      # a Monday, 00:00
MIN = 60000
HOUR = 3600000
DAY = 86400000


def programmed(rx, primed=True, start=True, at=MONDAY, stroke_nl=250):
    """A booted pump with the clock set, rx committed, catheter primed and (by default) running."""
    p = Pump(stroke_nl=stroke_nl, library=core_library())
    assert p.boot() == ("ok", None)
    code, review = p.stage(rx)
    assert code == "ok", (code, review)
    assert p.commit(review["checksum"], confirm_soft=True)[0] == "ok"
    if primed:
        assert p.prime(rx["catheter"]["volume_nl"])[0] == "ok"
        run(p, 20 * MIN)
        assert p.state == "stopped", p.state
    assert p.set_clock(at[0], at[1]) == ("ok", None)   # the test's day starts after priming
    if start:
        assert p.start() == ("ok", None)
    p.pop_events()
    return p


def run(p, ms, chunk=MIN):
    """Advance ms in chunks; returns strokes."""
    n = 0
    while ms > 0:
        d = chunk if ms > chunk else ms
        n += p.advance(d)
        ms -= d
    return n


def kinds(events):
    return [(e["kind"], e["code"]) for e in events]
