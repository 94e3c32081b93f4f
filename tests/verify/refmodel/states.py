"""The pump's states and transitions as the DOCUMENTATION states them, built with `transitions`.

Written from the prose of docs/therapy.md, docs/safety.md and docs/simulate.md, NOT from the
firmware's table (pumpcore.statemachine) or docs/state-machine.md (which is generated from that
table): this is the independent side that tests compare the firmware against. Event names are the
wire vocabulary (commands, docs/protocol.md) and the firmware's names for internal events, which
are the only shared interface; guards are named after what the docs say must hold.

Every row carries the sentence it comes from. Where the docs say nothing about an event in a
state, the pair is listed in UNSPECIFIED with the question it leaves open: tests do not judge the
firmware there (they follow it and count the occurrences), and the open questions are reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transitions import Machine, MachineError

BOOTING = "booting"
STOPPED = "stopped"
PRIMING = "priming"
RUNNING = "running"
SUSPENDED = "suspended"
ALARM_STOP = "alarm_stop"
SAFE_STATE = "safe_state"
STATES = (BOOTING, STOPPED, PRIMING, RUNNING, SUSPENDED, ALARM_STOP, SAFE_STATE)
AFTER_BOOT = (STOPPED, PRIMING, RUNNING, SUSPENDED, ALARM_STOP, SAFE_STATE)

# therapy.md "Delivery": "The motor may run only in `running` and `priming`".
MOTOR_STATES = (RUNNING, PRIMING)

COMMANDS = ("set_clock", "stage", "commit", "start", "stop", "suspend", "resume", "prime",
            "refill", "clinician_bolus", "patient_bolus", "ack", "silence", "library_stage",
            "library_commit")
INTERNAL = ("self_test_passed", "self_test_failed", "restore_running", "suspend_expired",
            "prime_done", "stop_alarm", "fatal")
EVENTS = COMMANDS + INTERNAL

# Guards: what the docs say must hold for a transition.
PROGRAM_VERIFIED = "program_verified"  # commit quotes the staged checksum, the program validates
CAN_RUN = "can_run"                    # a program to run, reservoir content known, catheter primed
CAN_PRIME = "can_prime"                # a program committed and the reservoir content known
RECORD_RUNNING = "record_running"      # boot: an intact record of a pump that was running
NO_STOP_ALARM = "no_stop_alarm"        # no flow-stopping alarm latched
GUARDS = (PROGRAM_VERIFIED, CAN_RUN, CAN_PRIME, RECORD_RUNNING, NO_STOP_ALARM)

INTERNAL_MOVE = "="   # accepted, state unchanged


@dataclass(frozen=True)
class Row:
    source: str
    event: str
    dest: str                 # a state, or INTERNAL_MOVE
    guard: str | None
    doc: str


def _rows() -> list[Row]:
    rows: list[Row] = []

    def add(sources: tuple[str, ...] | str, events: tuple[str, ...] | str, dest: str,
            guard: str | None, doc: str) -> None:
        for s in (sources,) if isinstance(sources, str) else sources:
            for e in (events,) if isinstance(events, str) else events:
                rows.append(Row(s, e, dest, guard, doc))

    # --- boot (safety.md "Reset and restart") ---------------------------------------------------
    add(BOOTING, "restore_running", RUNNING, RECORD_RUNNING,
        "safety.md: restarts the last committed prescription only when the persisted state is "
        "present and intact ... Then therapy resumes")
    add(BOOTING, "self_test_passed", STOPPED, None,
        "safety.md boot policy: a factory record (first boot) or an intact record of a stopped pump")
    add(BOOTING, ("self_test_failed", "fatal"), SAFE_STATE, None,
        "safety.md: failed self-test, lost or corrupt state, no keys -> the safe state")
    # --- alarms that stop flow and faults ----------------------------------------------------------
    add((STOPPED, PRIMING, RUNNING, SUSPENDED), "stop_alarm", ALARM_STOP, None,
        "therapy.md Alarms: occlusion, motor_stall, over_infusion, reservoir_empty, battery_eos: "
        "stop at once -> alarm_stop")
    add(ALARM_STOP, "stop_alarm", INTERNAL_MOVE, None, "therapy.md Alarms (already stopped)")
    add(SAFE_STATE, "stop_alarm", INTERNAL_MOVE, None,
        "safety.md: only a clinician's freshly committed program leaves the safe state")
    add(AFTER_BOOT[:-1], "fatal", SAFE_STATE, None,
        "safety.md: unexpected exception / self_test / state_lost -> safe state; therapy.md "
        "Alarms: self_test, state_lost, fault, reset_loop -> safe_state")
    add(SAFE_STATE, "fatal", INTERNAL_MOVE, None, "safety.md: the safe state persists")
    # --- alarms are handled in every state (therapy.md Alarms: latch until acknowledged; silence)
    add(AFTER_BOOT, "silence", INTERNAL_MOVE, None,
        "therapy.md Alarms: silence mutes tones for at most 2 min (protocol.md: refused "
        "unknown_alarm when none is active: a reason, not a state)")
    add(ALARM_STOP, "ack", STOPPED, NO_STOP_ALARM,
        "therapy.md Alarms: alarm_stop is left (to stopped, never directly to running) only when "
        "no flow-stopping alarm is latched")
    add(AFTER_BOOT, "ack", INTERNAL_MOVE, None, "therapy.md Alarms: alarms latch until acknowledged")
    # --- programming (therapy.md "Programming is a transaction") ------------------------------
    add(AFTER_BOOT, "stage", INTERNAL_MOVE, None,
        "therapy.md: stage validates and returns the review (a safe state is left by committing "
        "a staged program, so staging works there too)")
    add((STOPPED, RUNNING), "commit", INTERNAL_MOVE, PROGRAM_VERIFIED,
        "therapy.md: while running, a committed program takes effect at the next stroke boundary; "
        "when stopped, at once")
    add(SAFE_STATE, "commit", STOPPED, PROGRAM_VERIFIED,
        "safety.md: only a clinician's freshly committed program leaves this state; therapy.md "
        "Alarms: a clinician must commit a verified program")
    for ev in ("library_stage", "library_commit"):
        add((STOPPED, RUNNING, SUSPENDED, ALARM_STOP, SAFE_STATE), ev, INTERNAL_MOVE, None,
            "prescription.md Drug library: staged and committed like a program, in every state "
            "after boot but priming; the state does not change")
    add((STOPPED, RUNNING, SUSPENDED, ALARM_STOP, SAFE_STATE), "set_clock", INTERNAL_MOVE, None,
        "therapy.md Time base: the wall clock is set by a clinician with set_clock (and must be "
        "set after a reset to clear clock_suspect, whatever the state)")
    # --- delivery (therapy.md "Delivery") --------------------------------------------------------
    add(STOPPED, "start", RUNNING, CAN_RUN,
        "therapy.md: start is refused not_primed / program_required; alarm_stop -> stopped, a "
        "clinician then starts again")
    add(STOPPED, "prime", PRIMING, CAN_PRIME,
        "therapy.md: a priming bolus fills an empty catheter; prime refused program_required")
    add(PRIMING, ("prime_done", "stop"), STOPPED, None,
        "therapy.md: user stop completes the current stroke; any stop cancels the active bolus "
        "(the priming bolus); the prime ends when its volume is given")
    add(RUNNING, "stop", STOPPED, None, "therapy.md: user stop/suspend completes the current stroke")
    add(SUSPENDED, "stop", STOPPED, None, "therapy.md: any stop")
    add(RUNNING, "suspend", SUSPENDED, None,
        "therapy.md: suspend(minutes) lasts 1..1440 min and resumes by itself when it expires")
    add(SUSPENDED, "resume", RUNNING, CAN_RUN, "therapy.md: suspend ... resume")
    add(SUSPENDED, "suspend_expired", RUNNING, CAN_RUN,
        "therapy.md: resumes by itself when it expires ...")
    add(SUSPENDED, "suspend_expired", STOPPED, None, "therapy.md: ... (or stops if the pump cannot run then)")
    add(RUNNING, ("patient_bolus", "clinician_bolus"), INTERNAL_MOVE, None,
        "therapy.md patient gate: only in running; a clinician bolus is refused on the same "
        "principles (the gates are reason codes, not states)")
    # --- refill (simulate.md: a refill only works while the pump is stopped, suspended or in alarm)
    add((STOPPED, SUSPENDED, ALARM_STOP), "refill", INTERNAL_MOVE, None,
        "simulate.md: a refill only works while the pump is stopped, suspended or in alarm")
    return rows


ROWS: tuple[Row, ...] = tuple(_rows())

# (state, event) pairs about which the docs say nothing, with the question each leaves open.
UNSPECIFIED: dict[tuple[str, str], str] = {}


def _unspecified() -> None:
    q = UNSPECIFIED
    for e in COMMANDS:
        q[(BOOTING, e)] = "commands before boot has finished (never reach the core)"
    for s in STATES:
        if s != BOOTING:
            for e in ("self_test_passed", "self_test_failed", "restore_running"):
                q[(s, e)] = "boot events after boot (cannot occur)"
        if s != SUSPENDED:
            q[(s, "suspend_expired")] = "a suspend timer outside suspended (cannot occur)"
        if s != PRIMING:
            q[(s, "prime_done")] = "a priming end outside priming (cannot occur)"
    q.update({
        (PRIMING, "set_clock"): "may the clock be set while priming?",
        (PRIMING, "stage"): "may a program be staged while priming?",
        (PRIMING, "commit"): "may a program be committed while priming (and does it end the prime)?",
        (SUSPENDED, "commit"): "may a program be committed while suspended (at once, or at resume)?",
        (ALARM_STOP, "commit"): "may a program be committed in alarm_stop?",
        (SAFE_STATE, "refill"): "is the safe state 'in alarm' for simulate.md's refill rule?",
        (RUNNING, "prime"): "prime while running?",
        (SUSPENDED, "prime"): "prime while suspended?",
        (STOPPED, "stop"): "stop when already stopped: refused or accepted?",
        (STOPPED, "suspend"): "suspend when stopped?",
        (STOPPED, "resume"): "resume when stopped?",
        (PRIMING, "start"): "start while priming?",
        (PRIMING, "suspend"): "suspend while priming?",
        (PRIMING, "resume"): "resume while priming?",
        (RUNNING, "start"): "start when already running: refused or accepted?",
        (RUNNING, "resume"): "resume when running?",
        (SUSPENDED, "start"): "start when suspended (instead of resume)?",
        (SUSPENDED, "suspend"): "suspend when suspended (a new timer?)",
    })


_unspecified()

# A guard that fails where the docs give no fallback: refused, or something else?
GUARD_FAILS_UNSPECIFIED: dict[tuple[str, str], str] = {
    (SUSPENDED, "resume"): "resume when the pump cannot run: refused, or stopped as at expiry?",
}

# alarm_stop has one exit (to stopped, when no flow-stopping alarm is latched) and the safe state
# one (a committed program): a command that would leave them for another state, or run the motor,
# is refused there (therapy.md Alarms, safety.md).
REFUSED_BY_ONE_EXIT = {
    ALARM_STOP: ("start", "resume", "prime", "suspend", "patient_bolus", "clinician_bolus"),
    SAFE_STATE: ("start", "resume", "prime", "suspend", "stop", "patient_bolus",
                 "clinician_bolus"),
}
# `stop` in alarm_stop: refused while a flow-stopping alarm is latched (one exit, above); with
# none latched the docs do not say whether `stop` may do what `ack` does.
GUARD_PASSES_UNSPECIFIED = {(ALARM_STOP, "stop"): "stop in alarm_stop with no flow-stopping "
                            "alarm latched: accepted (to stopped) or refused (ack is the way)?"}


class DocStates:
    """A `transitions` model of the documented states. ``guard(name) -> bool`` decides guards."""

    def __init__(self, guard: Callable[[str], bool], initial: str = BOOTING) -> None:
        self._guard = guard
        self.state: str = initial
        for g in GUARDS:
            setattr(self, "is_" + g, (lambda g=g: self._guard(g)))
        self.machine = Machine(model=self, states=list(STATES), initial=initial,
                               auto_transitions=False, ignore_invalid_triggers=False)
        for r in ROWS:
            self.machine.add_transition(
                r.event, r.source, None if r.dest == INTERNAL_MOVE else r.dest,
                conditions=["is_" + r.guard] if r.guard else None)

    def fire(self, event: str) -> Verdict:
        """Decide ``event`` in the current state; moves the model when the docs accept it."""
        return decide(self, event)


@dataclass(frozen=True)
class Verdict:
    """accepted: True/False, or None when the docs leave it open; state: the documented state
    after the event (None when open)."""

    accepted: bool | None
    state: str | None
    why: str = ""


def decide(model: DocStates, event: str) -> Verdict:
    state = model.state
    if (state, event) in UNSPECIFIED:
        return Verdict(None, None, UNSPECIFIED[(state, event)])
    if event in REFUSED_BY_ONE_EXIT.get(state, ()):
        return Verdict(False, state, f"{state} has one documented exit")
    if (state, event) in GUARD_PASSES_UNSPECIFIED:
        if not model._guard(NO_STOP_ALARM):
            return Verdict(False, state, "a flow-stopping alarm is latched")
        return Verdict(None, None, GUARD_PASSES_UNSPECIFIED[(state, event)])
    try:
        moved = getattr(model, event)()
    except MachineError:
        return Verdict(False, state, "no documented transition")
    except AttributeError:
        return Verdict(False, state, "no documented transition")
    if moved:
        return Verdict(True, model.state)
    if (state, event) in GUARD_FAILS_UNSPECIFIED:
        return Verdict(None, None, GUARD_FAILS_UNSPECIFIED[(state, event)])
    return Verdict(False, state, "guard refused")


def open_questions() -> list[str]:
    """The questions the docs leave open about states (for reports), without the impossible ones."""
    out = []
    for (s, e), q in sorted(UNSPECIFIED.items()):
        if q and "cannot occur" not in q and "never reach" not in q:
            out.append(f"{s}/{e}: {q}")
    for (s, e), q in sorted(GUARD_FAILS_UNSPECIFIED.items()):
        out.append(f"{s}/{e}: {q}")
    for (s, e), q in sorted(GUARD_PASSES_UNSPECIFIED.items()):
        out.append(f"{s}/{e}: {q}")
    return out
