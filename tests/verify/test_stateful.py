"""Model-based verification of dose safety (issue 10, item 7).

A hypothesis ``RuleBasedStateMachine`` drives the real firmware (``pumphil.inproc``: the unchanged
App on a virtual board, real littlefs, plant, watchdog, in virtual time) and the reference model
written from the docs (``refmodel``) with the same random sequences: programs near and over the
limits, every command, wall-clock changes, time advances from seconds to days, power cuts (at
random moments and right before a state record is written or put in place), watchdog resets,
firmware hangs and plant faults. After every step the harness checks the invariants listed in
harness.py (hard limit from the plant's truth, lockout and max-per-24h, counters, resets, causes
of alarms, agreement with the model).

Budgets: ``ITPUMP_VERIFY_SEQUENCES`` sequences of ``ITPUMP_VERIFY_STEPS`` steps (make test: a
short run; make verify: >= 10,000 sequences of 50 steps, with the counts printed).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Harness, Stats  # noqa: E402
from refmodel.rx import MS_PER_DAY, MS_PER_H, MS_PER_MIN  # noqa: E402
from strategies import Setup, admixtures, programs, setups  # noqa: E402

SEQUENCES = int(os.environ.get("ITPUMP_VERIFY_SEQUENCES", "50"))
STEPS = int(os.environ.get("ITPUMP_VERIFY_STEPS", "50"))
SEED = os.environ.get("ITPUMP_VERIFY_SEED")    # set (e.g. "random"): not derandomized
# Checks that the firmware does not meet yet, each with the behaviour it lacks (the docs it breaks):
# their violations are counted and shown (test_known_gaps), not raised, and the model then takes
# the firmware's footing so that every other check goes on. Remove an entry once the firmware
# meets it: test_known_gaps then reports the group as unobserved.
KNOWN_GAPS: dict[str, str] = {}
for _g in filter(None, os.environ.get("ITPUMP_VERIFY_GAPS", "").split(",")):
    KNOWN_GAPS.setdefault(_g, "declared by ITPUMP_VERIFY_GAPS")
for _g in filter(None, os.environ.get("ITPUMP_VERIFY_ENFORCE", "").split(",")):
    KNOWN_GAPS.pop(_g, None)     # check a known gap as the firmware is fixed

STATS = Stats()

short_ms = st.one_of(st.integers(1_000, 10 * MS_PER_MIN), st.integers(10 * MS_PER_MIN, 3 * MS_PER_H))
long_ms = st.integers(3 * MS_PER_H, MS_PER_DAY + 6 * MS_PER_H)


class PumpSequences(RuleBasedStateMachine):
    """One sequence: a fresh provisioned board, a first program, then random steps."""

    def __init__(self) -> None:
        super().__init__()
        self.h: Harness | None = None
        self.setup: Setup | None = None
        self.admixture: tuple[tuple[str, int], ...] = ()

    # -- set-up --------------------------------------------------------------------------------------
    @initialize(setup=setups(), data=st.data())
    def start(self, setup: Setup, data: Any) -> None:
        STATS.add("sequences")
        self.setup = setup
        self.admixture = setup.drugs
        self.h = h = Harness(STATS, seed=setup.seed, xfail=frozenset(KNOWN_GAPS),
                             bias_pct=setup.bias_pct)
        STATS.add(f"sequences with the mechanism at +{setup.bias_pct} %")
        day, ms = divmod(setup.start_wall_ms, MS_PER_DAY)
        h.command("set_clock", {"day": day, "ms_of_day": ms})
        self._program(self._first_program(data))
        h.rig.plant.refill(setup.fill_nl, t_ms=h.now())
        h.truth.concs = dict(self.admixture)
        h.command("refill", {"fill_nl": setup.fill_nl, "new_admixture": False})
        if data.draw(st.integers(0, 4)) > 0:
            h.command("prime", {"volume_nl": setup.catheter_nl})
            h.advance(-(-setup.catheter_nl * 3600 // 1000) + 2_000)
            h.command("start", {})

    def _first_program(self, data: Any) -> dict[str, Any]:
        """A program the pump accepts as a first one (the start rules of ziconotide/baclofen
        refuse many): a few draws, else the lowest basal."""
        assert self.h is not None and self.setup is not None
        rx: dict[str, Any] = {}
        for _ in range(3):
            rx = data.draw(programs(self.setup, near=False))
            if not self.h.model.stage_prediction(rx)[0]:
                return rx
        for rate in (2_000, 0):
            rx["basal"] = {"steps": [[0, rate]], "days": None}
            rx["periodic"], rx["patient"] = [], None
            if not self.h.model.stage_prediction(rx)[0]:
                break
        return rx

    def teardown(self) -> None:
        if self.h is not None:
            self.h.close()

    def _program(self, rx: dict[str, Any], confirm: bool = True) -> None:
        h = self.h
        assert h is not None
        code, review = h.command("stage", {"rx": rx})
        if code != "ok":
            return
        # a first program above a start rule is confirmed as continuing therapy (a pump
        # replacement); later programs are not first programs
        h.command("commit", {"checksum": review["checksum"], "confirm_soft": confirm,
                             "bridge": False, "continuing": h.model.program is None})

    # -- steps ---------------------------------------------------------------------------------------
    @rule(ms=short_ms, restart=st.booleans(), data=st.data())
    def advance(self, ms: int, restart: bool, data: Any) -> None:
        STATS.add("steps advance")
        assert self.h is not None
        if restart:
            self._restart(data)
        self.h.advance(ms)

    @rule(ms=long_ms, restart=st.booleans(), data=st.data())
    def advance_long(self, ms: int, restart: bool, data: Any) -> None:
        STATS.add("steps advance long")
        assert self.h is not None
        if restart:
            self._restart(data)
        self.h.advance(ms)

    def _restart(self, data: Any) -> None:
        """The clinic gets therapy going again, as a clinician would: acknowledge, program if
        needed, prime if needed, start or resume (so that time passes with therapy running)."""
        h, s = self.h, self.setup
        assert h is not None and s is not None
        if not h.powered():
            h.restore_power()
        m = h.model
        if m.state == "running":
            return
        STATS.add("restarts")
        if m.alarms:
            h.command("ack", {"alarm": None})
        if m.state == "suspended":
            h.command("resume", {})
            return
        if m.state == "safe_state" or m.needs_program or m.program is None:
            self._program(data.draw(programs(s, self.admixture)))
        if m.state == "stopped" and m.catheter is not None and not m.catheter.is_primed():
            h.command("prime", {"volume_nl": s.catheter_nl})
            h.advance(-(-s.catheter_nl * 3600 // 1000) + 2_000)
        if m.state == "stopped":
            h.command("start", {})

    @rule(data=st.data(), confirm=st.booleans())
    def program(self, data: Any, confirm: bool) -> None:
        STATS.add("steps program")
        assert self.setup is not None
        self._program(data.draw(programs(self.setup, self.admixture)), confirm)

    @rule(name=st.sampled_from(("start", "stop", "resume")))
    def simple(self, name: str) -> None:
        STATS.add(f"steps {name}")
        assert self.h is not None
        self.h.command(name, {})

    @rule(minutes=st.sampled_from((1, 5, 30, 120, 1440)))
    def suspend(self, minutes: int) -> None:
        STATS.add("steps suspend")
        assert self.h is not None
        self.h.command("suspend", {"minutes": minutes})

    @rule(extra=st.sampled_from((0, 250, 10_000)))
    def prime(self, extra: int) -> None:
        STATS.add("steps prime")
        assert self.h is not None and self.setup is not None
        self.h.command("prime", {"volume_nl": self.setup.catheter_nl + extra})

    @rule(low=st.booleans(), new=st.booleans(), data=st.data())
    def refill(self, low: bool, new: bool, data: Any) -> None:
        STATS.add("steps refill")
        h, s = self.h, self.setup
        assert h is not None and s is not None
        fill = s.low_alert_nl + 20_000 if low else s.fill_nl
        mix = data.draw(admixtures(tuple(d for d, _ in self.admixture))) if new else self.admixture
        code, _ = h.command("refill", {"fill_nl": fill, "new_admixture": new})
        if code == "ok":
            h.rig.plant.refill(fill, t_ms=h.now())
            h.truth.concs = dict(mix)
            if new:
                self.admixture = mix
                self._program(data.draw(programs(s, mix)))

    @rule(data=st.data())
    def clinician_bolus(self, data: Any) -> None:
        STATS.add("steps clinician_bolus")
        h = self.h
        assert h is not None
        vol = data.draw(st.sampled_from((250, 2_500, 10_000, 50_000)))
        mins = data.draw(st.sampled_from((1, 5, 30)))
        dur = max(mins * MS_PER_MIN, -(-vol * MS_PER_H // 1_000_000))
        h.command("clinician_bolus", {"volume_nl": vol, "duration_ms": dur})

    @rule(over=st.sampled_from((-1, 0, 0, 1)))
    def clinician_bolus_to_limit(self, over: int) -> None:
        """A clinician bolus sized to bring the tightest drug's rolling 24 h to its hard limit
        (give or take a stroke): the gate's edge, then basal and periodic delivery meet the
        guard."""
        STATS.add("steps clinician_bolus_to_limit")
        h = self.h
        assert h is not None
        m = h.model
        concs = m.max_concs()
        room = None
        for d, hard in m.hard_limits("tight").items():
            c = concs.get(d, 0)
            if c:
                nl = (hard - m.ledger.total(d, m.mono)) * 1000 / c
                room = nl if room is None else min(room, nl)
        if room is None:
            return
        vol = max(250, min(200_000, (int(room) // 250 + over) * 250))
        h.command("clinician_bolus", {"volume_nl": vol,
                                      "duration_ms": max(MS_PER_MIN, -(-vol * MS_PER_H // 1_000_000))})

    @rule()
    def patient_bolus(self) -> None:
        STATS.add("steps patient_bolus")
        assert self.h is not None
        self.h.command("patient_bolus", {})

    @rule(which=st.sampled_from((None, None, "first", "silence")))
    def ack(self, which: str | None) -> None:
        STATS.add(f"steps ack {which}")
        h = self.h
        assert h is not None
        if which == "silence":
            h.command("silence", {})
            return
        alarm = None
        if which == "first" and h.model.alarms:
            alarm = sorted(h.model.alarms)[0]
        h.command("ack", {"alarm": alarm})

    @rule(how=st.sampled_from(("dst_back", "dst_forward", "west", "east", "before_periodic",
                               "random")), data=st.data())
    def set_clock(self, how: str, data: Any) -> None:
        STATS.add(f"steps set_clock {how}")
        h = self.h
        assert h is not None
        wall = h.model.wall
        if how == "dst_back":
            wall -= MS_PER_H
        elif how == "dst_forward":
            wall += MS_PER_H
        elif how == "west":
            wall -= data.draw(st.integers(2, 12)) * MS_PER_H
        elif how == "east":
            wall += data.draw(st.integers(2, 12)) * MS_PER_H
        elif how == "before_periodic":
            p = h.model.program
            times = sorted(p.periodic_times()) if p is not None else []
            if times:
                minute = data.draw(st.sampled_from(times))
                day = wall // MS_PER_DAY
                wall = day * MS_PER_DAY + (minute - 1) * MS_PER_MIN
        else:
            wall += data.draw(st.integers(-2 * MS_PER_DAY, 2 * MS_PER_DAY))
        wall = max(0, wall)
        h.command("set_clock", {"day": wall // MS_PER_DAY, "ms_of_day": wall % MS_PER_DAY})

    @rule(kind=st.sampled_from(("power_cut", "power_cut", "watchdog_reset", "hang", "plant_fault",
                                "plant_fault")), data=st.data())
    def disturb(self, kind: str, data: Any) -> None:
        """Power cuts, watchdog resets, hangs and plant faults: one rule, so that they are a
        disturbance of therapy rather than most of it."""
        if kind == "power_cut":
            self.power_cut(data.draw(st.sampled_from(("now", "later", "before_write",
                                                       "before_rename"))),
                           data.draw(st.integers(0, 2 * MS_PER_H)), data.draw(st.integers(0, 4)),
                           data.draw(st.sampled_from((1_000, 60_000, MS_PER_H, 10 * MS_PER_H))))
        elif kind == "watchdog_reset":
            self.watchdog_reset()
        elif kind == "hang":
            self.hang(data.draw(st.sampled_from((2, 6, 9, 30))),
                      data.draw(st.sampled_from((1, 1, 1, 4))))
        else:
            self.plant_fault(data.draw(st.sampled_from((
                "occlude_partial", "occlude_complete", "clear_occlusion", "dislodge", "reseat",
                "leak", "clear_leak"))))

    def power_cut(self, mode: str, delay: int, records: int, off: int) -> None:
        STATS.add(f"steps power_cut {mode}")
        h = self.h
        assert h is not None
        if not h.powered():
            h.restore_power()
            return
        if mode == "now":
            h.cut_now()
        elif mode == "later":
            h.advance(delay)
            if h.powered():
                h.cut_now()
        else:
            h.obs.cut_after_records = records
            h.obs.cut_at = "write" if mode == "before_write" else "rename"
            h.advance(delay)
            h.obs.cut_after_records = None
        if not h.powered():
            h.advance(off)
            h.restore_power()

    def watchdog_reset(self) -> None:
        STATS.add("steps watchdog_reset")
        h = self.h
        assert h is not None
        if h.powered():
            h.settle()
            if h.powered():
                h._drive(h.rig.board.reset, "watchdog")
                h.flush_model()

    def hang(self, seconds: int, boots: int) -> None:
        STATS.add("steps hang")
        h = self.h
        assert h is not None
        if h.powered():
            h.settle()
            board = h.rig.board
            board.hang(seconds * 1000, every_boot=boots > 1)
            h.advance(2 * MS_PER_MIN if boots == 1 else boots * 12_000)
            if boots > 1:
                board.hang(0, every_boot=True)      # the hang at every boot ends
                h.advance(MS_PER_MIN)

    def plant_fault(self, action: str) -> None:
        STATS.add(f"steps plant {action}")
        assert self.h is not None
        self.h.fault(action)

    @invariant()
    def checks(self) -> None:
        if self.h is not None:
            STATS.add("steps")
            self.h.check()


def _settings(sequences: int) -> settings:
    return settings(max_examples=sequences, stateful_step_count=STEPS, deadline=None,
                    derandomize=SEED is None, database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate]
                    + ([] if os.environ.get("ITPUMP_VERIFY_SHRINK") == "0" else [Phase.shrink]),
                    print_blob=True)


@pytest.fixture(scope="module")
def stateful_run() -> BaseException | None:
    """The random sequences, run once per test process (the tests below share them; under
    pytest-xdist a worker that gets only the gap reports runs them too). Returns the failure."""
    t0 = time.monotonic()
    try:
        run_state_machine_as_test(PumpSequences, settings=_settings(SEQUENCES))
        return None
    except Exception as e:          # noqa: BLE001 - re-raised by the test below
        return e
    finally:
        print(f"\nstateful verification: {SEQUENCES} sequences x {STEPS} steps requested, "
              f"{time.monotonic() - t0:.1f} s\n{STATS.report()}")


def test_firmware_and_documented_model_agree_on_random_sequences(
        stateful_run: BaseException | None) -> None:
    if stateful_run is not None:
        raise stateful_run


@pytest.mark.parametrize("group", sorted(KNOWN_GAPS))
def test_known_gaps(group: str, stateful_run: BaseException | None) -> None:
    """One result per known gap, from the same sequences: xfail with the first violation while
    the firmware still shows it; skipped when these sequences did not meet it."""
    n = STATS.c[f"violations {group}"]
    if n:
        pytest.xfail(f"{KNOWN_GAPS[group]} -- {n} violations in {STATS.c['sequences']} "
                     f"sequences, first: {STATS.examples.get(group, '')}")
    pytest.skip(f"not met in these {STATS.c['sequences']} sequences (fixed? then remove it "
                "from KNOWN_GAPS and run make verify)")
