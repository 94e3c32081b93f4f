"""The firmware's state table against the states the DOCUMENTATION describes.

`pumphost.statemodel` builds its `transitions` model and docs/state-machine.md from the firmware's
own table, so comparing the firmware with that model would compare the table with itself. The
reference here is tests/verify/refmodel/states.py: a `transitions` model written from the prose of
docs/therapy.md, docs/safety.md and docs/simulate.md. Where the docs say nothing about an event in
a state, no verdict is given (the walk follows the firmware and counts those steps).
"""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

from pumpcore import reasons as R
from pumpcore import statemachine as SM
from pumphost.statemodel import render_markdown

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "verify"))
from refmodel import states as S  # noqa: E402  (tests/verify is not a package on the path)

# The firmware's guard names (pumpcore.statemachine) and the documented conditions they stand for.
GUARD_OF = {
    "commit_ok": S.PROGRAM_VERIFIED,
    "startable": S.CAN_RUN,
    "primable": S.CAN_PRIME,
    "restorable": S.RECORD_RUNNING,
    "no_stopping_alarm": S.NO_STOP_ALARM,
}


def test_docs_state_machine_is_generated_from_the_table() -> None:
    committed = (ROOT / "docs" / "state-machine.md").read_text()
    assert committed == render_markdown(), "run: python -m pumphost.statemodel > docs/state-machine.md"
    for state, event, nxt, _ in SM.TABLE:
        assert f"| {state} | {event} | {nxt} |" in committed


def _firmware(state: str, event: str, verdicts: dict[str, bool]) -> tuple[bool, str]:
    reason, nxt = SM.decide(state, event,
                            lambda g: None if verdicts[GUARD_OF[g]] else R.NOT_ALLOWED)
    return (True, nxt) if reason == R.OK else (False, state)


def test_the_vocabularies_match() -> None:
    assert set(SM.STATES) == set(S.STATES)
    assert set(SM.COMMANDS) | set(SM.INTERNAL) == set(S.EVENTS)
    assert {g for *_, g in SM.TABLE if g} <= set(GUARD_OF), "a firmware guard the docs do not name"
    assert set(SM.MOTOR_STATES) == set(S.MOTOR_STATES)


def test_transitions_model_agrees_with_core_decisions_on_random_walks() -> None:
    rng = random.Random(7)
    events = list(S.EVENTS)
    judged = 0
    for _ in range(300):
        verdicts = {g: rng.random() < 0.6 for g in S.GUARDS}
        docs = S.DocStates(lambda g, v=verdicts: v[g])
        state = S.BOOTING
        for _ in range(40):
            event = rng.choice(events)
            fw_ok, fw_state = _firmware(state, event, verdicts)
            v = docs.fire(event)
            if v.accepted is not None:
                judged += 1
                assert (fw_ok, fw_state) == (v.accepted, v.state), \
                    (state, event, verdicts, "firmware", fw_ok, fw_state, "docs", v)
            docs.state = fw_state       # where the docs are silent, follow the firmware
            state = fw_state
    assert judged > 5000


def test_every_documented_decision_in_every_state_under_every_guard_verdict() -> None:
    for bits in itertools.product((False, True), repeat=len(S.GUARDS)):
        verdicts = dict(zip(S.GUARDS, bits, strict=True))
        docs = S.DocStates(lambda g, v=verdicts: v[g])
        for state, event in itertools.product(S.STATES, S.EVENTS):
            docs.state = state
            v = docs.fire(event)
            if v.accepted is None:
                continue
            assert _firmware(state, event, verdicts) == (v.accepted, v.state), \
                (state, event, verdicts, v)
