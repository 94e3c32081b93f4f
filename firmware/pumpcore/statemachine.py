# The pump's state machine as ONE table of plain data.
#
# Each row is (state, event, next_state, guard). `guard` is None or the name of a check the Pump
# facade implements (`Pump._guard_<name>()`), returning None when the transition may happen or a
# reason code when it may not. Rows are tried in table order; the first row whose state and event
# match and whose guard passes is taken. When rows exist but every guard refuses, the first
# guard's reason is returned. An event with no row at all for the current state is refused with
# reasons.NOT_ALLOWED (reasons.NOT_RUNNING for a patient bolus: the bolus gate's first check).
#
# The host builds a `transitions` model and the diagram in docs/state-machine.md from this same
# table (pumphost.statemodel), so the documentation cannot drift from the firmware.
#
# Events are either commands (from the protocol) or internal (raised by the core itself).
# A self-transition (state == next_state) is a command that is accepted without changing state.

from pumpcore import commands as C
from pumpcore import reasons as R

BOOTING = R.BOOTING
STOPPED = R.STOPPED
PRIMING = R.PRIMING
RUNNING = R.RUNNING
SUSPENDED = R.SUSPENDED
ALARM_STOP = R.ALARM_STOP
SAFE_STATE = R.SAFE_STATE

STATES = (BOOTING, STOPPED, PRIMING, RUNNING, SUSPENDED, ALARM_STOP, SAFE_STATE)

# Commands (sent by a host): their wire names, defined once in the command table ------------------
SET_CLOCK = C.SET_CLOCK
STAGE = C.STAGE
COMMIT = C.COMMIT
START = C.START
STOP = C.STOP
SUSPEND = C.SUSPEND
RESUME = C.RESUME
PRIME = C.PRIME
REFILL = C.REFILL
CLINICIAN_BOLUS = C.CLINICIAN_BOLUS
PATIENT_BOLUS = C.PATIENT_BOLUS
ACK = C.ACK
SILENCE = C.SILENCE
LIBRARY_STAGE = C.LIBRARY_STAGE
LIBRARY_COMMIT = C.LIBRARY_COMMIT
# Internal events (raised by the core) ------------------------------------------------------------
SELF_TEST_PASSED = "self_test_passed"
SELF_TEST_FAILED = "self_test_failed"
RESTORE_RUNNING = "restore_running"    # reset while running, persisted state intact
SUSPEND_EXPIRED = "suspend_expired"
PRIME_DONE = "prime_done"
STOP_ALARM = "stop_alarm"              # a flow-stopping alarm was raised
FATAL = "fatal"                        # corrupt state, failed self-test, unexpected exception

COMMANDS = (SET_CLOCK, STAGE, COMMIT, START, STOP, SUSPEND, RESUME, PRIME, REFILL,
            CLINICIAN_BOLUS, PATIENT_BOLUS, ACK, SILENCE, LIBRARY_STAGE, LIBRARY_COMMIT)
INTERNAL = (SELF_TEST_PASSED, SELF_TEST_FAILED, RESTORE_RUNNING, SUSPEND_EXPIRED, PRIME_DONE,
            STOP_ALARM, FATAL)

_ACTIVE = (STOPPED, PRIMING, RUNNING, SUSPENDED, ALARM_STOP)

TABLE = (
    # boot
    (BOOTING, SELF_TEST_PASSED, STOPPED, None),
    (BOOTING, RESTORE_RUNNING, RUNNING, "restorable"),
    (BOOTING, SELF_TEST_FAILED, SAFE_STATE, None),
    (BOOTING, FATAL, SAFE_STATE, None),
    # clock, programming (stage/review/commit is a transaction; commit takes effect at a stroke
    # boundary while running)
    (STOPPED, SET_CLOCK, STOPPED, None),
    (RUNNING, SET_CLOCK, RUNNING, None),
    (SUSPENDED, SET_CLOCK, SUSPENDED, None),
    (ALARM_STOP, SET_CLOCK, ALARM_STOP, None),
    (SAFE_STATE, SET_CLOCK, SAFE_STATE, None),
    (STOPPED, STAGE, STOPPED, None),
    (RUNNING, STAGE, RUNNING, None),
    (SUSPENDED, STAGE, SUSPENDED, None),
    (ALARM_STOP, STAGE, ALARM_STOP, None),
    (SAFE_STATE, STAGE, SAFE_STATE, None),
    (STOPPED, COMMIT, STOPPED, "commit_ok"),
    (RUNNING, COMMIT, RUNNING, "commit_ok"),
    (SUSPENDED, COMMIT, SUSPENDED, "commit_ok"),
    (ALARM_STOP, COMMIT, ALARM_STOP, "commit_ok"),
    # a clinician re-establishes a verified program to leave the safe state
    (SAFE_STATE, COMMIT, STOPPED, "commit_ok"),
    # the drug library: staged and committed like a program, in the same states (it never
    # loosens what the committed program's limits hold; pumpcore.pump.library_commit)
    (STOPPED, LIBRARY_STAGE, STOPPED, None),
    (RUNNING, LIBRARY_STAGE, RUNNING, None),
    (SUSPENDED, LIBRARY_STAGE, SUSPENDED, None),
    (ALARM_STOP, LIBRARY_STAGE, ALARM_STOP, None),
    (SAFE_STATE, LIBRARY_STAGE, SAFE_STATE, None),
    (STOPPED, LIBRARY_COMMIT, STOPPED, None),
    (RUNNING, LIBRARY_COMMIT, RUNNING, None),
    (SUSPENDED, LIBRARY_COMMIT, SUSPENDED, None),
    (ALARM_STOP, LIBRARY_COMMIT, ALARM_STOP, None),
    (SAFE_STATE, LIBRARY_COMMIT, SAFE_STATE, None),
    # therapy
    (STOPPED, START, RUNNING, "startable"),
    (RUNNING, STOP, STOPPED, None),
    (SUSPENDED, STOP, STOPPED, None),
    (PRIMING, STOP, STOPPED, None),
    (RUNNING, SUSPEND, SUSPENDED, None),
    (SUSPENDED, RESUME, RUNNING, "startable"),
    (SUSPENDED, SUSPEND_EXPIRED, RUNNING, "startable"),
    (SUSPENDED, SUSPEND_EXPIRED, STOPPED, None),
    (STOPPED, PRIME, PRIMING, "primable"),
    (PRIMING, PRIME_DONE, STOPPED, None),
    (STOPPED, REFILL, STOPPED, None),
    (SUSPENDED, REFILL, SUSPENDED, None),
    (ALARM_STOP, REFILL, ALARM_STOP, None),
    (SAFE_STATE, REFILL, SAFE_STATE, None),
    (RUNNING, CLINICIAN_BOLUS, RUNNING, None),
    (RUNNING, PATIENT_BOLUS, RUNNING, None),
    # alarms: acknowledging is possible everywhere; it leaves alarm_stop only when no flow-stopping
    # alarm is latched any more
    (STOPPED, ACK, STOPPED, None),
    (PRIMING, ACK, PRIMING, None),
    (RUNNING, ACK, RUNNING, None),
    (SUSPENDED, ACK, SUSPENDED, None),
    (ALARM_STOP, ACK, STOPPED, "no_stopping_alarm"),
    (ALARM_STOP, ACK, ALARM_STOP, None),
    (SAFE_STATE, ACK, SAFE_STATE, None),
    (STOPPED, SILENCE, STOPPED, None),
    (PRIMING, SILENCE, PRIMING, None),
    (RUNNING, SILENCE, RUNNING, None),
    (SUSPENDED, SILENCE, SUSPENDED, None),
    (ALARM_STOP, SILENCE, ALARM_STOP, None),
    (SAFE_STATE, SILENCE, SAFE_STATE, None),
    # faults: a flow-stopping alarm stops at once (mid-stroke); fatal goes to the safe state
    (STOPPED, STOP_ALARM, ALARM_STOP, None),
    (PRIMING, STOP_ALARM, ALARM_STOP, None),
    (RUNNING, STOP_ALARM, ALARM_STOP, None),
    (SUSPENDED, STOP_ALARM, ALARM_STOP, None),
    (ALARM_STOP, STOP_ALARM, ALARM_STOP, None),
    (SAFE_STATE, STOP_ALARM, SAFE_STATE, None),
    (STOPPED, FATAL, SAFE_STATE, None),
    (PRIMING, FATAL, SAFE_STATE, None),
    (RUNNING, FATAL, SAFE_STATE, None),
    (SUSPENDED, FATAL, SAFE_STATE, None),
    (ALARM_STOP, FATAL, SAFE_STATE, None),
    (SAFE_STATE, FATAL, SAFE_STATE, None),
)

# States in which the motor may run. Every other state forces the motor off (Pump._apply_state).
MOTOR_STATES = (RUNNING, PRIMING)


def rows_for(state, event):
    """The rows matching (state, event), in table order (a tuple; empty when none)."""
    return tuple(row for row in TABLE if row[0] == state and row[1] == event)


def decide(state, event, guard):
    """Pick the transition for `event` in `state`.

    `guard(name)` evaluates a guard by name and returns None (pass) or a reason code.
    Returns (reason, next_state): reason is reasons.OK with the next state, or a refusal reason
    with next_state None.
    """
    rows = rows_for(state, event)
    if not rows:
        if event == PATIENT_BOLUS:
            return R.NOT_RUNNING, None
        return R.NOT_ALLOWED, None
    first_refusal = None
    for row in rows:
        if row[3] is None:
            return R.OK, row[2]
        refusal = guard(row[3])
        if refusal is None:
            return R.OK, row[2]
        if first_refusal is None:
            first_refusal = refusal
    return first_refusal, None
