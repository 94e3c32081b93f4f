"""The host's transitions model and the docs diagram come from the firmware's one table."""

from __future__ import annotations

import random
from pathlib import Path

from pumpcore import reasons as R
from pumpcore import statemachine as SM
from pumphost.statemodel import build_model, render_markdown
from transitions import MachineError

ROOT = Path(__file__).resolve().parents[1]


def test_docs_state_machine_is_generated_from_the_table() -> None:
    committed = (ROOT / "docs" / "state-machine.md").read_text()
    assert committed == render_markdown(), "run: python -m pumphost.statemodel > docs/state-machine.md"
    for state, event, nxt, _ in SM.TABLE:
        assert f"| {state} | {event} | {nxt} |" in committed


def test_transitions_model_agrees_with_core_decisions_on_random_walks() -> None:
    rng = random.Random(7)
    events = list(SM.COMMANDS + SM.INTERNAL)
    guard_names = sorted({g for *_, g in SM.TABLE if g})
    for _ in range(300):
        verdicts = {g: rng.random() < 0.6 for g in guard_names}
        model, _machine = build_model({g: (lambda g=g, v=verdicts: v[g]) for g in guard_names})
        state = SM.BOOTING
        for _ in range(40):
            event = rng.choice(events)
            reason, nxt = SM.decide(state, event,
                                    lambda g, v=verdicts: None if v[g] else R.NOT_ALLOWED)
            try:
                accepted = getattr(model, event)()
            except MachineError:
                accepted = False
            if reason == R.OK:
                assert accepted, (state, event)
                state = nxt
            else:
                assert not accepted, (state, event)
            assert model.state == state
