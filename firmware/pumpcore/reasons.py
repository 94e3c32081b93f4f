# Every reason code, state name and command result code of itpump, defined once.
# The strings are the wire format: lowercase words, sent verbatim by the protocol and shown by the
# host. Add new codes here (and to docs/therapy.md / docs/protocol.md); never reuse a code for a
# different meaning.

OK = "ok"

# --- command refusals (state machine / facade) -------------------------------------------------
NOT_ALLOWED = "not_allowed"          # the event has no row for the current state
NOTHING_STAGED = "nothing_staged"    # commit/review without a staged program
CHECKSUM_MISMATCH = "checksum_mismatch"  # commit's checksum is not the staged program's
SOFT_LIMIT_UNCONFIRMED = "soft_limit_unconfirmed"  # commit of a soft-limit breach without confirm
NO_PROGRAM = "no_program"            # start/bolus without a committed program
PROGRAM_REQUIRED = "program_required"  # refill with a new admixture: a new program must be committed
NOT_PRIMED = "not_primed"            # start with an unprimed (empty) catheter
CLOCK_NOT_SET = "clock_not_set"      # schedule needs the wall clock
BAD_VALUE = "bad_value"              # argument malformed or out of range
RESERVOIR_EMPTY = "reservoir_empty"  # nothing left to deliver
ALARM_ACTIVE = "alarm_active"        # command refused while a medium/high alarm is active
UNKNOWN_ALARM = "unknown_alarm"      # ack of an alarm code that is not active/known
START_DOSE_UNCONFIRMED = "start_dose_unconfirmed"  # first program above a start rule, not confirmed
                                                   # as continuing therapy (commit --continuing)

# --- patient bolus gate (checked in this order) -------------------------------------------------
NOT_RUNNING = "not_running"
ALARM = "alarm"
BOLUS_ACTIVE = "bolus_active"
LOCKOUT = "lockout"
MAX_PER_24H = "max_per_24h"
DOSE_LIMIT = "dose_limit"
PATIENT_BOLUS_DENIALS = (NOT_RUNNING, ALARM, BOLUS_ACTIVE, LOCKOUT, MAX_PER_24H, DOSE_LIMIT)

# --- prescription validation (each problem is [reason, field]) ---------------------------------
INVALID = "invalid"                  # wrong type / missing / malformed field
NO_DRUGS = "no_drugs"
TOO_MANY_DRUGS = "too_many_drugs"
DUPLICATE_DRUG = "duplicate_drug"
UNKNOWN_DRUG_NEEDS_LIMITS = "unknown_drug_needs_limits"  # no library entry and no explicit limits
LIMIT_LOOSENS_LIBRARY = "limit_loosens_library"          # explicit limit above the library's
CONCENTRATION_RANGE = "concentration_range"
RESERVOIR_CAPACITY = "reservoir_capacity"   # capacity not 20 or 40 mL
FILL_RANGE = "fill_range"
ALERT_RANGE = "alert_range"                 # low/empty thresholds inconsistent
CATHETER_RANGE = "catheter_range"
TOO_MANY_STEPS = "too_many_steps"
STEP_ORDER = "step_order"
RATE_RANGE = "rate_range"
BOLUS_RANGE = "bolus_range"
BOLUS_AMOUNT = "bolus_amount"               # a bolus exceeds the library's max bolus amount
HARD_LIMIT = "hard_limit"                   # projected daily dose above the hard limit: refused
SOFT_LIMIT = "soft_limit"                   # projected daily dose above the soft limit: confirm
TITRATION_STEP = "titration_step"           # increase above the library's max step
TITRATION_INTERVAL = "titration_interval"   # increase sooner than the library allows
START_DOSE = "start_dose"                   # first program above the library's starting dose

# --- drug library (pumpcore.library; docs/prescription.md "Drug library") -----------------------
NO_LIBRARY = "no_library"                   # no drug library loaded: every program is refused
LIBRARY_RANGE = "library_range"             # a library value outside its bounds / inconsistent
LIBRARY_CONFLICT = "library_conflict"       # the committed program breaks the new library's limits
LOOSENING_UNCONFIRMED = "loosening_unconfirmed"  # library change loosens limits, not confirmed
# the validation problems that depend on the library (the rest is the program's own shape)
LIBRARY_PROBLEMS = (CONCENTRATION_RANGE, LIMIT_LOOSENS_LIBRARY, UNKNOWN_DRUG_NEEDS_LIMITS,
                    BOLUS_AMOUNT, HARD_LIMIT, TITRATION_STEP, TITRATION_INTERVAL, START_DOSE)

# --- protocol / security (used by pumpcore.wire / auth / dispatch; docs/protocol.md) ----------
BAD_CRC = "bad_crc"                  # line CRC missing or wrong (garbled, dropped bytes): resend
LINE_TOO_LONG = "line_too_long"      # more than wire.MAX_LINE bytes before the LF
BAD_CHAR = "bad_char"                # a byte outside printable ASCII 0x20..0x7E in the line
BAD_FRAME = "bad_frame"              # line structure wrong (fields, id, counter, tag format)
BAD_ARGS = "bad_args"                # arguments not a valid value / wrong names or types
UNKNOWN_COMMAND = "unknown_command"  # no such command
UNKNOWN_ROLE = "unknown_role"        # role field not clinician/patient/readonly
AUTH_REQUIRED = "auth_required"      # command needs a role, counter and HMAC tag
NO_KEY = "no_key"                    # the pump has no key provisioned for the claimed role
BAD_TAG = "bad_tag"                  # HMAC tag does not verify (wrong key, tampered request)
STALE_COUNTER = "stale_counter"      # counter not greater than the last accepted one (replay)
COUNTER_JUMP = "counter_jump"        # counter more than 2**24 above the last accepted one
LOCKED = "locked"                    # security state lost or damaged: only hello until re-provisioned
THROTTLED = "throttled"              # too many refused requests on this link: retry after retry_ms
ROLE_FORBIDDEN = "role_forbidden"    # the authenticated role may not use this command
ID_REUSED = "id_reused"              # request id seen recently with a different request body
STORAGE_ERROR = "storage_error"      # the counter could not be persisted: command not executed
INTERNAL_ERROR = "internal_error"    # unexpected exception in the pump while executing

# --- states (lowercase words; docs/state-machine.md) --------------------------------------------
BOOTING = "booting"
STOPPED = "stopped"
PRIMING = "priming"
RUNNING = "running"
SUSPENDED = "suspended"
ALARM_STOP = "alarm_stop"
SAFE_STATE = "safe_state"

# --- delivery / boluses (helper B: pumpcore.bolus, docs/delivery.md) ----------------------------
BOLUS_QUEUED = "bolus_queued"        # a periodic bolus fell due during another bolus: starts after it
BOLUS_SKIPPED = "bolus_skipped"      # a periodic bolus fell due with the deferral queue full: not given
TOO_SOON = "too_soon"                # a periodic start less than 23 h (monotonic) after its last start

# --- detector alarm codes (helper E: pumpcore.detect_*, docs/detectors.md) ----------------------
# Raised/cleared by the detectors through Pump.raise_alarm / clear_condition; priorities are the
# alarm manager's (pumpcore.alarms). The detector modules define the same strings as CODE/EV_*.
OCCLUSION = "occlusion"              # line does not empty / pressure accumulates (high)
DISLODGEMENT = "dislodgement"        # tip out of the intrathecal space: pulsation lost, low baseline
LEAK = "leak"                        # line open near the pump: baseline ~0, strokes invisible
MOTOR_STALL = "motor_stall"          # commanded stroke without feedback, after one retry (high)
OVER_INFUSION = "over_infusion"      # feedback > 110 % of command over 15 min
UNDER_INFUSION = "under_infusion"    # feedback < 90 % of command over 15 min
BATTERY_ERI = "battery_eri"          # elective replacement: <= 90 days of usage left (medium)
BATTERY_EOS = "battery_eos"          # end of service (high, flow stops)
DOSE_LIMIT_HOLD = "dose_limit_hold"  # the continuous guard is holding strokes at a hard limit (medium)
UNEXPECTED_RESET = "unexpected_reset"  # a power cut, brown-out or software reset (low)
WATCHDOG_RESET = "watchdog_reset"    # the main loop stopped feeding the watchdog (medium)
RESET_LOOP = "reset_loop"            # RESET_LOOP_N unexpected resets within the window (high, safe)

# --- facade (lead: pumpcore.pump) ---------------------------------------------------------------
NOT_CONFIGURED = "not_configured"    # patient bolus requested but the program has none
STATE_CORRUPT = "state_corrupt"      # persisted snapshot malformed/inconsistent: safe state
