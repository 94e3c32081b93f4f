# The one command table of itpump: every command a host can send, defined once.
#
# Built from this table: the device dispatcher (pumpcore.dispatch: roles, argument checks, which
# facade method runs), the state machine's command events (pumpcore.statemachine), the host client
# (pumphost.client: one call per row), the CLI (pumphost.cli: one subcommand per row, options in the
# human unit) and the scenario runner's pump actions (pumphil.scenario / pumphil.simulate).
# Adding a command = one row here + one method on the Pump facade (docs/protocol.md).
#
# Per row: the wire name, the roles that may send it, whether it changes state (its counter is
# persisted before it runs), its arguments, the facade method that runs it (None: the dispatcher
# answers it itself: hello, log, review paging, chunked staging) and one line of help.
# Per argument: the wire name (unit-suffixed, wire units), its kind, required or its default,
# bounds (inclusive, wire units; for STR the maximum length), and how people enter it: `shown` is
# the name in the human unit (CLI option --volume-ul, scenario key volume_ul) and `scale` the
# factor from the human unit to the wire unit (volume_nl = volume_ul * 1000).
# Plain data and tiny classes only: this module runs on the Pico (~12 KB of RAM with its code,
# measured under MicroPython; frozen into the firmware image it would stay in flash).

from pumpcore import reasons
from pumpcore.clock import MS_PER_DAY, MS_PER_MIN

# argument kinds
INT = "int"
INT_OR_NULL = "int_or_null"   # an optional number whose absence means "not asked for"
BOOL = "bool"
STR = "str"
STR_OR_NULL = "str_or_null"
OBJ = "obj"

C = "clinician"
P = "patient"
R = "readonly"

# limits of command arguments the Pump facade enforces too (pumpcore.pump imports them from here)
MAX_SUSPEND_MIN = 1440                # a timed suspend lasts at most 24 h
CLINICIAN_BOLUS_MAX_NL = 1_000_000    # 1 mL; the drug library's max bolus amount applies too
CLINICIAN_BOLUS_MAX_MS = MS_PER_DAY
PRIME_MAX_NL = 1_000_000              # a catheter holds well under 1 mL; the pump bounds it tighter
RESERVOIR_MAX_NL = 40_000_000         # the larger reservoir (40 mL)
MAX_DAY = 1_000_000                   # wall-clock day (day 0 = 2000-01-01): year ~4700
MAX_CHUNKS = 16                       # chunked staging: at most 16 pieces ...
MAX_TEXT = 2048                       # ... of at most one line each
MAX_LOG_ENTRIES = 1024
MAX_SEQ = 0x3FFFFFFF


class Arg:
    def __init__(self, name, kind, required=False, default=None, lo=None, hi=None, shown=None,
                 scale=1, help=""):
        self.name = name
        self.kind = kind
        self.required = required
        self.default = default
        self.lo = lo
        self.hi = hi
        self.shown = shown if shown is not None else name
        self.scale = scale
        self.help = help


class Command:
    def __init__(self, name, roles, changes, args, method, help):
        self.name = name
        self.roles = roles
        self.changes = changes
        self.args = args
        self.method = method
        self.help = help

    def arg(self, name):
        for a in self.args:
            if a.name == name:
                return a
        return None


# wire names (the state machine's command events use the same strings)
HELLO = "hello"
STATUS = "status"
LOG = "log"
LOG_STORED = "log_stored"
REVIEW = "review"
STAGE = "stage"
STAGE_CHUNK = "stage_chunk"
COMMIT = "commit"
START = "start"
STOP = "stop"
SUSPEND = "suspend"
RESUME = "resume"
PRIME = "prime"
REFILL = "refill"
CLINICIAN_BOLUS = "clinician_bolus"
PATIENT_BOLUS = "patient_bolus"
ACK = "ack"
SILENCE = "silence"
SET_CLOCK = "set_clock"
SHOW_PROGRAM = "show_program"
LIBRARY_STAGE = "library_stage"
LIBRARY_CHUNK = "library_chunk"
LIBRARY_COMMIT = "library_commit"
LIBRARY_SHOW = "library_show"

COMMANDS = (
    Command(HELLO, (), False, (
        Arg("nonce", STR, lo=32, hi=32, help="32 lowercase hex digits, fresh per hello"),
        Arg("role", STR, help="the role key that tags the reply"),
    ), None, "protocol version, device id, counters, key ids (no key needed)"),
    Command(STATUS, (C, P, R), False, (), "status",
            "state, reservoir, rates, alarms, counters"),
    Command(LOG, (C, R), False, (
        Arg("since", INT, default=0, lo=0, hi=MAX_SEQ, help="entries after this sequence number"),
        Arg("limit", INT, default=MAX_LOG_ENTRIES, lo=1, hi=MAX_LOG_ENTRIES),
    ), None, "the pump's event log (RAM ring)"),
    Command(LOG_STORED, (C, R), False, (
        Arg("seq", INT, default=0, lo=0, hi=MAX_SEQ,
            help="entries after the position (seq, skip): seq, a pump event's sequence number"),
        Arg("skip", INT, default=0, lo=0, hi=MAX_SEQ,
            help="...and skip, the entries without a sequence number after it"),
        Arg("limit", INT, default=MAX_LOG_ENTRIES, lo=1, hi=MAX_LOG_ENTRIES),
    ), None, "the event log stored on flash (every entry kept, across resets), paged"),
    Command(REVIEW, (C,), False, (
        Arg("changes_offset", INT, default=0, lo=0, hi=MAX_SEQ),
    ), None, "the staged program's review"),
    Command(STAGE, (C,), True, (
        Arg("rx", OBJ, required=True, help="the prescription (docs/architecture.md)"),
    ), "stage", "stage a prescription; the pump answers with its review"),
    Command(STAGE_CHUNK, (C,), True, (
        Arg("index", INT, required=True, lo=0, hi=MAX_CHUNKS - 1),
        Arg("count", INT, required=True, lo=1, hi=MAX_CHUNKS),
        Arg("text", STR, required=True, lo=0, hi=MAX_TEXT),
    ), None, "one piece of a program too long for one line"),
    Command(COMMIT, (C,), True, (
        Arg("checksum", STR, required=True, lo=1, hi=64, help="the reviewed program's checksum"),
        Arg("confirm_soft", BOOL, default=False, help="accept a dose above a soft limit"),
        Arg("bridge", BOOL, default=False, help="deliver the proposed bridge bolus"),
        Arg("continuing", BOOL, default=False,
            help="a first program above a start rule is the patient's continuing therapy"),
        Arg("refill_nl", INT_OR_NULL, default=None, lo=0, hi=RESERVOIR_MAX_NL, shown="refill_ml",
            scale=1_000_000, help="record this refill with the new admixture in the same step"),
    ), "commit", "commit the staged program"),
    Command(START, (C,), True, (), "start", "start therapy (catheter primed)"),
    Command(STOP, (C,), True, (), "stop", "stop therapy (motor off)"),
    Command(SUSPEND, (C,), True, (
        Arg("minutes", INT, required=True, lo=1, hi=MAX_SUSPEND_MIN),
    ), "suspend", "suspend delivery for N minutes"),
    Command(RESUME, (C,), True, (), "resume", "resume delivery after a suspend"),
    Command(PRIME, (C,), True, (
        Arg("volume_nl", INT, required=True, lo=1, hi=PRIME_MAX_NL, shown="volume_ul",
            scale=1000),
    ), "prime", "prime the catheter"),
    Command(REFILL, (C,), True, (
        Arg("fill_nl", INT, required=True, lo=0, hi=RESERVOIR_MAX_NL, shown="fill_ml",
            scale=1_000_000),
        Arg("new_admixture", BOOL, default=False, help="a new drug mix: a new program is needed"),
    ), "refill", "record a refill of the reservoir"),
    Command(CLINICIAN_BOLUS, (C,), True, (
        Arg("volume_nl", INT, required=True, lo=1, hi=CLINICIAN_BOLUS_MAX_NL, shown="volume_ul",
            scale=1000),
        Arg("duration_ms", INT, required=True, lo=MS_PER_MIN, hi=CLINICIAN_BOLUS_MAX_MS,
            shown="duration_min", scale=MS_PER_MIN),
    ), "clinician_bolus", "clinician bolus on top of the basal rate (drug limits apply)"),
    Command(PATIENT_BOLUS, (C, P), True, (), "patient_bolus",
            "the patient's bolus (lockout, max per 24 h and dose limits apply)"),
    Command(ACK, (C,), True, (
        Arg("alarm", STR_OR_NULL, default=None, lo=1, hi=32, help="alarm code; none: all"),
    ), "ack", "acknowledge an alarm"),
    Command(SILENCE, (C, P), True, (), "silence",
            "mute the alarm tones for at most 2 minutes (alarms stay active)"),
    Command(SET_CLOCK, (C,), True, (
        Arg("day", INT, required=True, lo=0, hi=MAX_DAY, help="days since 2000-01-01"),
        Arg("ms_of_day", INT, required=True, lo=0, hi=MS_PER_DAY - 1),
    ), "set_clock", "set the pump's wall clock"),
    Command(SHOW_PROGRAM, (C, R), False, (), "show_program",
            "the committed program and its daily doses and limits"),
    Command(LIBRARY_SHOW, (C, R), False, (), "library_show",
            "the drug library the pump enforces, with its version and checksum"),
    Command(LIBRARY_STAGE, (C,), True, (
        Arg("library", OBJ, required=True, help="the library record (docs/prescription.md)"),
    ), "library_stage", "stage a drug library; the pump answers with its review"),
    Command(LIBRARY_CHUNK, (C,), True, (
        Arg("index", INT, required=True, lo=0, hi=MAX_CHUNKS - 1),
        Arg("count", INT, required=True, lo=1, hi=MAX_CHUNKS),
        Arg("text", STR, required=True, lo=0, hi=MAX_TEXT),
    ), None, "one piece of a library too long for one line"),
    Command(LIBRARY_COMMIT, (C,), True, (
        Arg("checksum", STR, required=True, lo=1, hi=64, help="the reviewed library's checksum"),
        Arg("confirm_loosening", BOOL, default=False,
            help="accept a library that allows more than the current one"),
    ), "library_commit", "make the staged library the one the pump enforces"),
)


def find(name, table=None):
    """The row of command `name`, or None. `table` defaults to COMMANDS (read at call time)."""
    for c in (table if table is not None else COMMANDS):
        if c.name == name:
            return c
    return None


def names(table=None):
    return tuple(c.name for c in (table if table is not None else COMMANDS))


def _kind_ok(v, kind):
    if kind == INT:
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == INT_OR_NULL:
        return v is None or (isinstance(v, int) and not isinstance(v, bool))
    if kind == BOOL:
        return v is True or v is False
    if kind == STR:
        return isinstance(v, str)
    if kind == STR_OR_NULL:
        return v is None or isinstance(v, str)
    if kind == OBJ:
        return isinstance(v, dict)
    return False


def check_args(cmd, args):
    """-> None when `args` (dict) fit the row `cmd`, else (reason, message, details): BAD_ARGS for
    unknown or missing names and wrong kinds, BAD_VALUE for a value outside its bounds. Names the
    argument (details: "arg", and for bounds "value", "min", "max" in wire units); changes
    nothing."""
    for k in args:
        if cmd.arg(k) is None:
            return reasons.BAD_ARGS, "unknown argument %s" % k, {"arg": k}
    for a in cmd.args:
        if a.name not in args:
            if a.required:
                return reasons.BAD_ARGS, "missing argument %s" % a.name, {"arg": a.name}
            continue
        v = args[a.name]
        if not _kind_ok(v, a.kind):
            return reasons.BAD_ARGS, "argument %s must be %s" % (a.name, a.kind), \
                {"arg": a.name, "kind": a.kind}
        n = v
        if v is None:
            continue                 # the *_OR_NULL kinds: absent
        if a.kind in (STR, STR_OR_NULL):
            n = len(v)
        if (a.lo is not None and n < a.lo) or (a.hi is not None and n > a.hi):
            d = {"arg": a.name, "value": n, "min": a.lo, "max": a.hi}
            if a.kind in (INT, INT_OR_NULL):
                return reasons.BAD_VALUE, "%s must be %d..%d" % (a.name, a.lo, a.hi), d
            d["unit"] = "characters"
            return reasons.BAD_VALUE, "%s must be %d..%d characters" % (a.name, a.lo, a.hi), d
    return None


def call_args(cmd, args):
    """The facade method's positional arguments: each argument in table order, its default when
    absent."""
    out = []
    for a in cmd.args:
        out.append(args[a.name] if a.name in args else a.default)
    return out

