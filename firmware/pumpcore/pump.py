# The Pump facade: the one object the device shell, the protocol dispatcher and the tests drive.
#
# Functional core: the Pump never reads a clock, a pin or a file. The shell calls
# `advance(elapsed_ms)` with elapsed time (from ticks_diff) and performs the strokes it returns;
# it sleeps for `next_wake_ms()`. Commands return `(code, data)`: code is reasons.OK or a reason
# code; a refused command changes nothing but the counters and log entries recording the refusal.
#
# Every state change goes through `_fire(event)` -> the one table in statemachine.py, and every
# entry into a state goes through `_enter()`, the one place where the motor is forced off.
#
# Units: nL, ms, ng, µg/mL, nL/h (docs/architecture.md). Time: two (day, ms) clocks — monotonic
# (lockout, 24-h windows, suspend) and wall (schedule) — so no value reaches 2**30.
#
# Drug slots: the catheter and the dose ledger track up to MAX_SLOTS drugs by slot index. A slot
# keeps its drug name while that drug is in the program, still in the catheter, or still in the
# rolling 24-h ledger; a new admixture takes free slots (stage refuses TOO_MANY_DRUGS otherwise).

from pumpcore import alarms as A
from pumpcore import library as LIB
from pumpcore import prescription as RX
from pumpcore import reasons as R
from pumpcore import schedule
from pumpcore import statemachine as SM
from pumpcore.bolus import CLINICIAN, PATIENT, PERIODIC, PRIME, BolusArbiter
from pumpcore.catheter import Catheter, bridge_proposal
from pumpcore.clock import MS_PER_DAY, MS_PER_HOUR, MS_PER_MIN, Clock, diff_ms, weekday
from pumpcore.commands import CLINICIAN_BOLUS_MAX_MS, CLINICIAN_BOLUS_MAX_NL, MAX_SUSPEND_MIN
from pumpcore.delivery import DeliveryEngine, mul_div
from pumpcore.ledger import Ledger, PatientHistory
from pumpcore.reservoir import Reservoir

MAX_SLOTS = 4
PRIME_RATE_NL_PER_H = 1_000_000       # priming bolus rate: 1 mL/h, the pump's maximum
MAX_PENDING_EVENTS = 256
SNAPSHOT_VERSION = 2                  # 1: before the reservation, resets and periodic spacing
_FAR = 536_870_911                    # "no event" horizon (< 2**29 ms)
# Periodic spacing (docs/therapy.md "Time base"): a periodic start time starts again only when
# this much MONOTONIC time has passed since it last started (its 24-h interval minus 1 h for DST
# and clock corrections), whatever the wall clock says.
PERIODIC_MIN_SPACING_MS = 23 * 3_600_000
# Write-ahead reservation defaults (the shell passes its board's figures): docs/therapy.md
# "Resets and accounting".
RESERVE_NL = 10_000
RESERVE_MS = 1_800_000
# The mechanism's volumetric accuracy (the board's documented limit, docs/hardware.md): the 24-h
# ledger and every dose-limit check count a stroke's drug at the top of it, so a hard limit holds
# for any pump within its accuracy, not only for the nominal stroke volume.
STROKE_TOLERANCE_PCT = 5
# Reset loop: this many unexpected resets within the window (monotonic) is a loop (safe state).
RESET_LOOP_N = 3
RESET_LOOP_WINDOW_MS = 3_600_000
RESET_HISTORY = 8                     # resets kept in the record (time, cause)
RESET_CAUSES = ("power_on", "watchdog", "soft", "unknown")

NOT_CONFIGURED = R.NOT_CONFIGURED


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _min_limit(a, b):
    # the stricter of two limits (None = no limit)
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


class Pump:
    def __init__(self, stroke_nl=250, library=None, reserve_nl=RESERVE_NL, reserve_ms=RESERVE_MS,
                 tolerance_pct=STROKE_TOLERANCE_PCT):
        self.stroke_nl = stroke_nl
        self.reserve_nl = reserve_nl
        self.reserve_ms = reserve_ms
        self.tolerance_pct = tolerance_pct
        # the drug library (pumpcore.library.Library), loaded by the shell from its record; None:
        # no library, every program is refused NO_LIBRARY until one is committed
        self.library = library
        self.library_changed = False   # the shell must persist library.record() (then False)
        self.staged_library = None     # (Library, review) waiting for library_commit
        self.state = SM.BOOTING
        self.mono = Clock()
        self.wall = Clock()
        self.clock_set = False
        self.clock_suspect = False     # True after a restore: the wall clock stood still while off
        # program
        self.rx = None                 # committed, normalized rx dict (None: never programmed)
        self.rx_review = None          # the review it was committed with (checksum, limits...)
        self.staged = None
        self.staged_review = None
        self._pending = None           # (rx, review) committed, waiting for a stroke boundary
        self._bridge = None            # (rx, review) waiting for the old admixture to leave
        self._restored_state = None    # the state in the record this pump was restored from
        self.needs_program = False     # refilled with a new admixture: a new program must commit
        self.slot_names = [None] * MAX_SLOTS
        self._concs = [0] * MAX_SLOTS  # reservoir admixture by slot (µg/mL), updated in place
        self._last_increase = {}       # drug name -> (mono day, ms) of its last dose increase
        # delivery
        self.engine = DeliveryEngine(stroke_nl)
        self.arbiter = BolusArbiter()
        self.reservoir = None
        self.catheter = None
        self.ledger = Ledger(MAX_SLOTS)
        self.history = PatientHistory()
        self.alarms = A.AlarmManager()
        self.basal_rate_nl_per_h = 0
        self._to_boundary_ms = _FAR    # ms to the next basal schedule boundary
        self._to_periodic_ms = _FAR    # ms to the next periodic bolus start
        self._to_suspend_end_ms = _FAR
        self.ms_to_low = None          # recomputed at every rate change and bolus start
        self.ms_to_empty = None
        self.motor_on = False
        self.stop_mode = "finish_stroke"  # how the shell stops: "finish_stroke" | "immediate"
        # counters (clinician reports: myPTM-style)
        self.strokes_total = 0
        self.delivered_nl_total = 0    # nL that left the pump (can exceed 2**30 after years: event use)
        # cumulative amount per slot that left the catheter tip: whole µg + ng remainder (< 1000),
        # so the counters stay small ints for any realistic service life
        self.delivered_ug = [0] * MAX_SLOTS
        self._delivered_ng = [0] * MAX_SLOTS
        self.pb_requested = 0
        self.pb_delivered = 0
        self.pb_denied = {}
        for code in R.PATIENT_BOLUS_DENIALS:
            self.pb_denied[code] = 0
        self.pb_denied[NOT_CONFIGURED] = 0
        # log
        self._events = []
        self._seq = 0
        self.events_dropped = 0
        self._strokes_out = 0
        self._ended = None             # the bolus that ended in the last step (event handling)
        self._commit_args = (None, False, False, False)
        self._limit_detail = None      # which drug and amounts the last dose/bolus check refused
        self._res_level = None         # reservoir level last acted on ("ok"/"low"/"empty")
        # continuous dose guard: hard limit per slot (ng/24 h; None = no limit), what the next
        # stroke would emit (preallocated), strokes refused since the program was applied
        self._hard_ng = [None] * MAX_SLOTS
        self._emit = [0] * MAX_SLOTS
        self._margin_rem = [0] * MAX_SLOTS   # ng*pct of the ledger's accuracy margin, < 100
        self.holding = False
        self.held_strokes = 0
        self._max_basal = 0            # the program's highest basal step (nL/h), for the reservation
        # periodic spacing: start minute -> monotonic (day, ms) it last fell due (given or skipped)
        self._periodic_last = {}
        # write-ahead reservation (strokes the last record covers beyond its counters) and the
        # strokes counted since that record was written
        self.reserve_strokes = 0
        self.strokes_since_record = 0
        # strokes, nL and ng per slot counted as delivered after resets (could not be proven)
        self.presumed_strokes = 0
        self.presumed_nl = 0
        self.presumed_ng = [0] * MAX_SLOTS
        # resets: [mono day, mono ms, cause] of the last RESET_HISTORY, total count, and what the
        # restored record held that the boot reports (reservation, interrupted bolus)
        self._resets = []
        self.reset_count = 0
        self.last_reset = None
        self._restored_reserve = 0
        self._restored_bolus = None

    # ============================================================================================
    # Time (the shell's steady-state calls)
    # ============================================================================================
    def advance(self, elapsed_ms):
        """Move both clocks on by elapsed_ms (0 <= elapsed_ms < 2**29) and run everything that fell
        due. Returns the number of strokes the shell must make now. Allocation-free while no event
        (schedule boundary, bolus end, alarm, state change) happens."""
        self._strokes_out = 0
        left = elapsed_ms
        while left > 0:
            dt = self._ms_to_event()
            if dt > left:
                dt = left
            self._step(dt)
            left -= dt
            self._due_events()
        self.alarms.tick(self.now_s())
        if self.alarms.events:
            self._drain_alarm_events()
        return self._strokes_out

    def next_wake_ms(self):
        """ms until the core next needs the shell (a stroke, a boundary, a bolus end, the end of a
        suspend), or None when nothing is scheduled (stopped and idle)."""
        best = self._ms_to_event()
        if self.motor_on:
            s = self.engine.ms_to_next_stroke()
            if s is not None and s < best:
                best = s
        if best >= _FAR:
            return None
        return best

    def ms_to_alarm_change(self):
        """ms until the alarm tones can next change by themselves (silence end, escalation), or
        None: the start of that monotonic second, so the shell is never late by a fraction."""
        s = self.alarms.s_to_next_change(self.now_s())
        if s is None:
            return None
        ms = s * 1000 - self.mono.ms % 1000
        return ms if ms > 0 else 0

    def wall_now(self):
        """(day, ms of day) of the wall clock, or (-1, -1) while it was never set."""
        if not self.clock_set:
            return -1, -1
        return self.wall.day, self.wall.ms

    def now_s(self):
        """Monotonic seconds since the core started (< 2**30 for 34 years)."""
        return self.mono.day * 86400 + self.mono.ms // 1000

    def _ms_to_event(self):
        best = _FAR
        if self.state == SM.RUNNING:
            if self._to_boundary_ms < best:
                best = self._to_boundary_ms
            if self._to_periodic_ms < best:
                best = self._to_periodic_ms
        if self.state == SM.SUSPENDED and self._to_suspend_end_ms < best:
            best = self._to_suspend_end_ms
        if self.motor_on:
            b = self.arbiter.ms_to_end()
            if b is not None and b < best:
                best = b
        if best < 1:
            best = 1
        return best

    def _step(self, dt):
        self.mono.advance(dt)
        self.wall.advance(dt)
        self.ledger.advance(dt)
        # countdowns only run where they matter, so none drifts towards big ints while idle
        state = self.state
        if state == SM.RUNNING:
            self._to_boundary_ms -= dt
            self._to_periodic_ms -= dt
        elif state == SM.SUSPENDED:
            self._to_suspend_end_ms -= dt
        if not self.motor_on:
            return
        n = self.engine.advance(dt)
        self._ended = self.arbiter.advance(dt)
        while n > 0 and self.motor_on:
            if self._admit():
                self._stroke()
            n -= 1

    def _admit(self):
        """The continuous dose guard (docs/therapy.md): True when, for every slot with a hard
        limit, the ledger plus what this stroke would push out of the tip stays within it.
        A refused stroke is dropped (never owed). Allocation-free while the verdict is unchanged."""
        emit = self._emit
        self.catheter.would_emit(self.stroke_nl, self._concs, emit)
        hard = self._hard_ng
        ledger = self.ledger
        tol = self.tolerance_pct
        for d in range(MAX_SLOTS):
            h = hard[d]
            e = emit[d]
            if h is not None and e and \
                    ledger.total(d) + e + (e * tol + self._margin_rem[d] + 99) // 100 > h:
                self.held_strokes += 1
                if not self.holding:
                    self._hold_starts(d)
                elif self.arbiter.active is not None:
                    self._cancel_bolus(A.DOSE_LIMIT_HOLD)
                return False
        if self.holding:
            self._hold_ends()
        return True

    def _hold_starts(self, d):
        # Event time: the first refused stroke of a hold.
        self.holding = True
        self._log("dose_hold", self.slot_names[d], {"rolling_24h_ng": self.ledger.total(d),
                                                    "hard_limit_ng": self._hard_ng[d]})
        self.raise_alarm(A.DOSE_LIMIT_HOLD)
        if self.arbiter.active is not None:   # cancelled even when the alarm was already latched
            self._cancel_bolus(A.DOSE_LIMIT_HOLD)

    def _hold_ends(self):
        self.holding = False
        self._log("dose_hold_end", None, {"held_strokes": self.held_strokes})
        self.alarms.condition_gone(A.DOSE_LIMIT_HOLD, self.now_s())
        self._drain_alarm_events()

    def _cancel_bolus(self, why, end_prime=True):
        """Cancel the active bolus because of alarm `why` (what it delivered is kept). A cancelled
        priming bolus ends the priming (end_prime; not when the alarm itself changes the state)."""
        b = self.arbiter.cancel()
        if b is None:
            return
        self._log("bolus_cancelled", b.kind, {"delivered_nl": b.delivered_nl, "alarm": why})
        if end_prime and b.kind == PRIME and self.state == SM.PRIMING:
            self._fire(SM.PRIME_DONE)
        self._update_rate()

    def _stroke(self):
        # One stroke of the pump: reservoir -> catheter -> patient (ledger). Allocation-free.
        res = self.reservoir
        drawn = res.draw(self.stroke_nl)
        self.strokes_total += 1
        self.strokes_since_record += 1
        self.delivered_nl_total += drawn
        self._strokes_out += 1
        cat = self.catheter
        cat.push(drawn, self._concs)
        out = cat.out_ng                  # nominal: the delivered counters
        counted = cat.guard_ng            # the catheter's uncertainty band: the dose limits
        tol = self.tolerance_pct
        rem = self._margin_rem
        for d in range(MAX_SLOTS):
            g = counted[d]
            if g:
                m = g * tol + rem[d]                # the accuracy margin, remainder carried
                rem[d] = m % 100
                self.ledger.add(d, g + m // 100)
            if out[d]:
                ng = self._delivered_ng[d] + out[d]
                if ng >= 1000:
                    self.delivered_ug[d] += ng // 1000
                    ng = ng % 1000
                self._delivered_ng[d] = ng
        if res.level() != self._res_level:
            self._reservoir_check()
        if self._pending is not None or self._bridge is not None:
            self._stroke_boundary()

    def _due_events(self):
        # Event time: everything here may allocate (log entries, new boluses).
        ended = self._ended
        if ended is not None:
            self._ended = None
            self._log("bolus_end", ended.kind, {"delivered_nl": ended.delivered_nl})
            if self.state == SM.PRIMING and ended.kind == PRIME:
                self._fire(SM.PRIME_DONE)
            if self.arbiter.active is not None:
                self._log("bolus_start", self.arbiter.active.kind,
                          {"volume_nl": self.arbiter.active.volume_nl})
            self._update_rate()
        if self.state == SM.RUNNING and self._to_boundary_ms <= 0:
            self._reschedule()
            self._update_rate()
        if self.state == SM.RUNNING and self._to_periodic_ms <= 0:
            self._start_periodic()
        if self.state == SM.SUSPENDED and self._to_suspend_end_ms <= 0:
            self._to_suspend_end_ms = _FAR
            self._log("suspend_expired", None, None)
            self._fire(SM.SUSPEND_EXPIRED)
        if self.alarms.events:
            self._drain_alarm_events()

    # ============================================================================================
    # Commands
    # ============================================================================================
    def boot(self, self_test_ok=True, resume=False):
        """The shell's self-test result after power-up. resume=True: persisted state was restored
        intact and the pump was running before the reset (see docs/safety.md)."""
        if not self_test_ok:
            self.alarms.raise_(A.SELF_TEST, self.now_s())
            return self._fire(SM.SELF_TEST_FAILED)
        if resume and not self.alarms.stopping_latched():
            code = self._fire(SM.RESTORE_RUNNING)
            if code[0] == R.OK:
                return code
            # not restorable (a new admixture without its program): comes up stopped
        code = self._fire(SM.SELF_TEST_PASSED)
        # alarms restored from the snapshot decide where a reset pump comes back up; the safe
        # state is left only by committing a program, never by a reset
        if self.alarms.safe_latched() or self._restored_state == SM.SAFE_STATE:
            return self._fire(SM.FATAL)
        if self.alarms.stopping_latched():
            return self._fire(SM.STOP_ALARM)
        return code

    def set_clock(self, day, ms_of_day):
        if not (_is_int(day) and _is_int(ms_of_day)) or day < 0 or day > 1_000_000 \
                or not (0 <= ms_of_day < MS_PER_DAY):
            return self._refuse("set_clock", R.BAD_VALUE, {"arg": "day, ms_of_day"})
        code, nxt = SM.decide(self.state, SM.SET_CLOCK, self._guard)
        if code != R.OK:
            return self._refuse_sm("set_clock", SM.SET_CLOCK, code)
        self.wall.set(day, ms_of_day)
        self.clock_set = True
        self.clock_suspect = False
        self._log("clock_set", None, {"day": day, "ms": ms_of_day})
        self._reschedule()
        self._update_rate()
        return R.OK, None

    def stage(self, rx):
        code, nxt = SM.decide(self.state, SM.STAGE, self._guard)
        if code != R.OK:
            return self._refuse_sm("stage", SM.STAGE, code)
        if self.library is None:
            return self._refuse("stage", R.NO_LIBRARY)
        problems, review = RX.validate(rx, self.library, self.rx, self._increase_ages(rx),
                                       self.stroke_nl)
        # A FIRST program above a start rule (a pump replacement or a transfer: the pump cannot
        # know the patient's history) is not refused: the clinician must confirm it as
        # continuing therapy at commit (start_dose_unconfirmed otherwise), and it is logged.
        starts = []
        if self.rx is None:
            keep = []
            for p in problems:
                if p[0] == R.START_DOSE:
                    starts.append(p[2])
                else:
                    keep.append(p)
            problems = keep
        review["start_breaches"] = starts
        if not problems:
            problems = self._slot_problems(rx)
        if problems:
            self._log("refused", "stage", {"problems": [[p[0], p[1]] for p in problems]})
            short = {}
            for k in review:
                if k != "changes":      # the refusal names what to fix; the diff is not needed
                    short[k] = review[k]
            return problems[0][0], {"problems": problems, "review": short,
                                    "now": list(self.wall_now())}
        nrx = RX.normalize(rx)
        review["bridge"] = self._bridge_offer(nrx)
        self.staged = nrx
        self.staged_review = review
        self._log("staged", None, {"checksum": review["checksum"]})
        return R.OK, review

    def review(self):
        if self.staged is None:
            return R.NOTHING_STAGED, {"staged": None}
        return R.OK, self.staged_review

    def show_program(self):
        """The committed program (normalized rx) with its review's figures (no change list), and
        the ms since each drug's last dose increase (for titration planning; None: never)."""
        if self.rx is None:
            return R.NO_PROGRAM, {}
        rv = {}
        for k in self.rx_review:
            if k != "changes":
                rv[k] = self.rx_review[k]
        ages = self._increase_ages(self.rx)
        return R.OK, {"rx": self.rx, "review": rv, "increase_age_ms": ages,
                      "pending": self._pending is not None, "bridging": self._bridge is not None}

    # --- the drug library (pumpcore.library; docs/prescription.md "Drug library") ---------------
    def library_show(self):
        """The library the pump enforces: its record and checksum."""
        if self.library is None:
            return R.NO_LIBRARY, {}
        out = self.library.record()
        out["checksum"] = self.library.checksum
        return R.OK, out

    def library_stage(self, record):
        """Validate a library record as strictly as a prescription, and check that the committed
        program (and one waiting to apply) keeps within it. Returns its review; nothing changes
        until library_commit quotes the review's checksum. A refused library changes nothing."""
        code, nxt = SM.decide(self.state, SM.LIBRARY_STAGE, self._guard)
        if code != R.OK:
            return self._refuse_sm("library_stage", SM.LIBRARY_STAGE, code)
        problems, lib = LIB.validate_record(record)
        if not problems:
            problems = self._library_conflicts(lib)[0]
        if problems:
            self._log("refused", "library_stage", {"problems": [[p[0], p[1]] for p in problems]})
            return problems[0][0], {"problems": problems}
        review = LIB.compare(self.library, lib)
        review["checksum"] = lib.checksum
        review["name"] = lib.name
        review["version"] = lib.version
        review["drugs"] = len(lib.names())
        review["current"] = None if self.library is None else self.library.identity()
        self.staged_library = (lib, review)
        self._log("library_staged", None, {"checksum": lib.checksum})
        return R.OK, review

    def library_commit(self, checksum, confirm_loosening=False):
        """Make the staged library the one the pump enforces (quoting its checksum). A library
        that loosens any drug's limits needs confirm_loosening. It never loosens what a committed
        program's hard limits hold: the continuous guard's per-drug limits may only tighten until
        a new program is committed. The staged program, reviewed under the old library, is
        discarded."""
        code, nxt = SM.decide(self.state, SM.LIBRARY_COMMIT, self._guard)
        if code != R.OK:
            return self._refuse_sm("library_commit", SM.LIBRARY_COMMIT, code)
        if self.staged_library is None:
            return self._refuse("library_commit", R.NOTHING_STAGED, {"staged": None})
        lib, review = self.staged_library
        if checksum != lib.checksum:
            return self._refuse("library_commit", R.CHECKSUM_MISMATCH, {"staged": lib.checksum})
        if review["loosens"] and not confirm_loosening:
            return self._refuse("library_commit", R.LOOSENING_UNCONFIRMED,
                                {"drugs": review["loosens"]})
        problems, limits = self._library_conflicts(lib)
        if problems:        # the program changed since the library was staged
            return self._refuse("library_commit", R.LIBRARY_CONFLICT, {"problems": problems})
        old = self.library
        self.library = lib
        self.library_changed = True
        self.staged_library = None
        for rv, new in limits:
            # every program the pump holds keeps the stricter of its limits and the new
            # library's, so applying a pending or bridged program later never loosens either
            for name in new:
                if name in rv["limits"]:
                    o = rv["limits"][name]
                    n = new[name]
                    rv["limits"][name] = [_min_limit(o[0], n[0]), _min_limit(o[1], n[1])]
        if self.rx_review is not None:
            self._set_hard_limits(self.rx_review, tighten_only=True)
        if self.staged is not None:
            self.staged = None
            self.staged_review = None
            self._log("staged_discarded", None, {"why": "library changed"})
        self._log("library_loaded", None, {
            "name": lib.name, "version": lib.version, "checksum": lib.checksum,
            "previous": None if old is None else old.checksum, "loosens": review["loosens"]})
        return R.OK, lib.identity()

    def _library_conflicts(self, lib):
        """([problems], [(review, limits under lib)]) for the committed program and any program
        waiting to apply (pending at a stroke boundary, or behind a bridge bolus)."""
        problems = []
        limits = []
        held = []
        if self.rx is not None:
            held.append(("program", self.rx, self.rx_review))
        if self._pending is not None:
            held.append(("pending", self._pending[0], self._pending[1]))
        if self._bridge is not None:
            held.append(("bridging", self._bridge[0], self._bridge[1]))
        for what, rx, rv in held:
            found, check = RX.library_conflicts(rx, lib, self.stroke_nl)
            for p in found:
                d = p[2]
                d["conflict"] = p[0]          # the validation rule the program would break
                d["program"] = what
                d["checksum"] = rv["checksum"]
                problems.append([R.LIBRARY_CONFLICT, p[1], d])
            limits.append((rv, check["limits"]))
        return problems, limits

    def commit(self, checksum, confirm_soft=False, bridge=False, continuing=False,
               refill_nl=None):
        """Commit the staged program (quoting its checksum). continuing: the clinician confirms a
        first program above a start rule as the patient's continuing therapy. refill_nl: a refill
        of the reservoir with the new admixture, recorded in the same step, and only if the commit
        is accepted (all-or-nothing; the refill rules of `refill` apply)."""
        self._commit_args = (checksum, confirm_soft, bridge, continuing)
        code, nxt = SM.decide(self.state, SM.COMMIT, self._guard)
        if code != R.OK:
            return self._refuse_sm("commit", SM.COMMIT, code)
        if refill_nl is not None:
            code = self._refill_problem(refill_nl, self.staged["reservoir"]["capacity_nl"])
            if code is not None:
                return code
        rx, review = self.staged, self.staged_review
        self.staged = None
        self.staged_review = None
        if review.get("start_breaches"):
            self._log("continuing_therapy", None, {"drugs": review["start_breaches"],
                                                   "checksum": review["checksum"]})
        self._supersede_waiting(review["checksum"])
        self._assign_slots(rx)
        self._set_hard_limits(review, tighten_only=True)   # until it applies: the stricter one
        first = self.rx is None
        self._record_increases(rx, review)
        self._setup_hardware_models(rx, first)
        if refill_nl is not None:
            self._do_refill(refill_nl, True)   # the new admixture: its concentrations come below
        self.history.mark_lockout(self.mono.day, self.mono.ms)  # every commit restarts lockout
        self.needs_program = False
        self._log("committed", None, {"checksum": review["checksum"], "bridge": bool(bridge),
                                      "continuing": bool(review.get("start_breaches"))})
        if bridge:
            self._set_reservoir_concs(rx)
            self._bridge = (rx, review)
        elif self.state == SM.RUNNING and self.engine.rate_nl_per_h > 0 and not first:
            self._pending = (rx, review)             # takes effect at the next stroke boundary
        else:
            self._apply_program(rx, review)
        if nxt != self.state:
            self._enter(nxt)
        return R.OK, {"checksum": review["checksum"]}

    def _supersede_waiting(self, checksum):
        """A commit supersedes any earlier program still waiting to apply (pending at a stroke
        boundary, or behind a bridge bolus): only the latest acknowledged program may ever take
        effect. The guard's limits go back to the program in effect (the superseded one's
        stricter limits no longer apply; the new one tightens them again until it applies)."""
        for what, waiting in (("pending", self._pending), ("bridging", self._bridge)):
            if waiting is not None:
                self._log("program_superseded", None, {"checksum": waiting[1]["checksum"],
                                                       "was": what, "by": checksum})
        if self._pending is None and self._bridge is None:
            return
        self._pending = None
        self._bridge = None
        if self.rx_review is not None:
            self._set_hard_limits(self.rx_review, tighten_only=False)

    def start(self):
        return self._command(SM.START, "start")

    def stop(self):
        return self._command(SM.STOP, "stop")

    def suspend(self, minutes):
        if not _is_int(minutes) or not (1 <= minutes <= MAX_SUSPEND_MIN):
            return self._refuse("suspend", R.BAD_VALUE, {"arg": "minutes", "value": minutes,
                                                         "min": 1, "max": MAX_SUSPEND_MIN,
                                                         "unit": "min"})
        code, data = self._command(SM.SUSPEND, "suspend")
        if code == R.OK:
            self._to_suspend_end_ms = minutes * MS_PER_MIN
        return code, data

    def resume(self):
        return self._command(SM.RESUME, "resume")

    def prime(self, volume_nl):
        if self.catheter is not None and (not _is_int(volume_nl) or volume_nl < 1
                                          or volume_nl > 2 * self.catheter.volume_nl + 100_000):
            return self._refuse("prime", R.BAD_VALUE, {
                "arg": "volume_nl", "value": volume_nl, "min": 1, "unit": "nL",
                "max": 2 * self.catheter.volume_nl + 100_000,
                "catheter_nl": self.catheter.volume_nl})
        if not _is_int(volume_nl) or volume_nl < 1:
            return self._refuse("prime", R.BAD_VALUE, {"arg": "volume_nl", "value": volume_nl,
                                                       "min": 1, "unit": "nL"})
        code, nxt = SM.decide(self.state, SM.PRIME, self._guard)
        if code != R.OK:
            return self._refuse_sm("prime", SM.PRIME, code)
        duration_ms = (volume_nl * 36 + 9) // 10   # ceil(volume at PRIME_RATE_NL_PER_H = 1 mL/h)
        code, bolus = self.arbiter.request(PRIME, volume_nl, duration_ms)
        if code != R.OK:
            return self._refuse("prime", code)
        self._log("bolus_start", PRIME, {"volume_nl": volume_nl, "duration_ms": duration_ms})
        self._enter(nxt)
        return R.OK, {"duration_ms": bolus.ms_to_end()}

    def refill(self, fill_nl, new_admixture=False):
        code = self._refill_problem(fill_nl, None)
        if code is not None:
            return code
        self._do_refill(fill_nl, new_admixture)
        return R.OK, None

    def _refill_problem(self, fill_nl, capacity_nl):
        """None when a refill of fill_nl may be recorded now (capacity_nl: the reservoir after a
        commit that comes with it; None: the current one), else the refusal (code, details)."""
        if self.reservoir is None:
            return self._refuse("refill", R.NO_PROGRAM)
        cap = capacity_nl if capacity_nl is not None else self.reservoir.capacity_nl
        if not _is_int(fill_nl) or not (0 <= fill_nl <= cap):
            return self._refuse("refill", R.BAD_VALUE, {"arg": "fill_nl", "value": fill_nl,
                                                        "min": 0, "max": cap, "unit": "nL"})
        code, nxt = SM.decide(self.state, SM.REFILL, self._guard)
        if code != R.OK:
            return self._refuse_sm("refill", SM.REFILL, code)
        return None

    def _do_refill(self, fill_nl, new_admixture):
        self.reservoir.refill(fill_nl)
        self.history.mark_lockout(self.mono.day, self.mono.ms)  # every refill restarts lockout
        if new_admixture:
            self.needs_program = True
            for d in range(MAX_SLOTS):
                self._concs[d] = 0   # unknown until the new program commits (pump cannot start)
        self._log("refilled", None, {"fill_nl": fill_nl, "new_admixture": bool(new_admixture)})
        self._reservoir_check()
        self._update_rate()

    def clinician_bolus(self, volume_nl, duration_ms):
        if not (_is_int(volume_nl) and _is_int(duration_ms)) \
                or not (1 <= volume_nl <= CLINICIAN_BOLUS_MAX_NL) \
                or not (MS_PER_MIN <= duration_ms <= CLINICIAN_BOLUS_MAX_MS):
            return self._refuse("clinician_bolus", R.BAD_VALUE, {"arg": "volume_nl, duration_ms"})
        code, nxt = SM.decide(self.state, SM.CLINICIAN_BOLUS, self._guard)
        if code != R.OK:
            return self._refuse_sm("clinician_bolus", SM.CLINICIAN_BOLUS, code)
        if self.alarms.blocks_bolus():
            return self._refuse("clinician_bolus", R.ALARM)
        if self.arbiter.active is not None:
            return self._refuse("clinician_bolus", R.BOLUS_ACTIVE)
        code = self._bolus_amount_check(volume_nl)
        if code != R.OK:
            return self._refuse("clinician_bolus", code)
        return self._start_bolus(CLINICIAN, volume_nl, duration_ms)

    def patient_bolus(self):
        """The patient's bolus request, through the gate in the order of docs/therapy.md."""
        self.pb_requested += 1
        code = self._patient_gate()
        if code != R.OK:
            self.pb_denied[code] = self.pb_denied.get(code, 0) + 1
            return self._refuse("patient_bolus", code, None, SM.PATIENT_BOLUS)
        p = self.rx["patient"]
        code, data = self._start_bolus(PATIENT, p["volume_nl"], p["duration_ms"])
        if code == R.OK:
            self.pb_delivered += 1
            self.history.record_start(self.mono.day, self.mono.ms)
        return code, data

    def ack(self, alarm_code=None):
        if alarm_code is not None and A.priority_of(alarm_code) == 0:
            return self._refuse("ack", R.UNKNOWN_ALARM, {
                "alarm": alarm_code, "active": self._active_alarm_codes(), "known": list(A.CODES)})
        code = self.alarms.ack(alarm_code, self.now_s())
        # alarm_stop whose stop alarms all cleared (an acknowledged empty reservoir refilled) is
        # left by an ack even when no alarm is left to acknowledge
        leaving = alarm_code is None and self.state == SM.ALARM_STOP \
            and not self.alarms.stopping_latched()
        if code != R.OK and not leaving:
            return self._refuse("ack", code, {"alarm": alarm_code,
                                              "active": self._active_alarm_codes()})
        self._drain_alarm_events()
        code, nxt = SM.decide(self.state, SM.ACK, self._guard)
        if code == R.OK and nxt != self.state:
            self._enter(nxt)
        return R.OK, None

    def silence(self):
        code = self.alarms.silence(self.now_s())
        self._drain_alarm_events()
        if code != R.OK:
            return self._refuse("silence", code, {"active": []})
        return R.OK, {"until_s": self.alarms.silenced_until_s}

    # --- alarm seam: detectors in the shell/core call these -------------------------------------
    def raise_alarm(self, code):
        """A detector reports condition `code` present. Applies the catalogue's action: stop flow
        at once (alarm_stop), go to the safe state, or continue; any medium/high alarm cancels an
        active bolus (GIP)."""
        prio = A.priority_of(code)
        if prio == 0:
            return R.UNKNOWN_ALARM, None
        new = self.alarms.raise_(code, self.now_s())
        if new:
            action = A.action_of(code)
            if prio >= A.MEDIUM:
                self._cancel_bolus(code, action == A.CONTINUE)
            if action == A.STOP:
                self._fire(SM.STOP_ALARM)
            elif action == A.SAFE:
                self._fire(SM.FATAL)
        self._drain_alarm_events()
        return R.OK, None

    def clear_condition(self, code):
        self.alarms.condition_gone(code, self.now_s())
        self._drain_alarm_events()
        if self.state == SM.ALARM_STOP:
            code2, nxt = SM.decide(self.state, SM.ACK, self._guard)
            if code2 == R.OK and nxt != self.state:
                self._enter(nxt)
        return R.OK, None

    def fail_safe(self, what):
        """The shell's one fail-safe handler calls this on any unexpected exception: motor off at
        once, high alarm, safe state, logged."""
        self._log("fault", "exception", {"what": what})
        self.alarms.raise_(A.FAULT, self.now_s())
        self._fire(SM.FATAL)
        self._drain_alarm_events()

    # ============================================================================================
    # Queries
    # ============================================================================================
    def status(self):
        res = self.reservoir
        ledger = {}
        delivered = {}
        for d in range(MAX_SLOTS):
            if self.slot_names[d] is not None:
                ledger[self.slot_names[d]] = self.ledger.total(d)
                delivered[self.slot_names[d]] = [self.delivered_ug[d], self._delivered_ng[d]]
        active = self.arbiter.active
        return {
            "state": self.state,
            "clock": [self.wall.day, self.wall.ms] if self.clock_set else None,
            "clock_suspect": self.clock_suspect,
            "uptime_s": self.now_s(),
            "motor": "on" if self.motor_on else "off",
            "stop_mode": self.stop_mode,
            "program": None if self.rx_review is None else self.rx_review["checksum"],
            "pending_program": self._pending is not None,
            "bridging": self._bridge is not None,
            "needs_program": self.needs_program,
            "staged": None if self.staged_review is None else self.staged_review["checksum"],
            "basal_rate_nl_per_h": self.basal_rate_nl_per_h,
            "rate_nl_per_h": self.engine.rate_nl_per_h,
            "bolus": None if active is None else active.as_dict(),
            "reservoir_nl": None if res is None else res.remaining_nl,
            "reservoir_level": None if res is None else res.level(),
            "ms_to_low": self.ms_to_low,
            "ms_to_empty": self.ms_to_empty,
            "catheter_primed": self.catheter is not None and self.catheter.is_primed(),
            "catheter_fill_nl": None if self.catheter is None else self.catheter.fill_nl,
            "strokes": self.strokes_total,
            "delivered_nl": self.delivered_nl_total,
            "rolling_24h_ng": ledger,
            "delivered_drug": delivered,     # {name: [µg, ng remainder]} cumulative at the tip
            "alarms": self.alarms.active(),
            "library": None if self.library is None else self.library.identity(),
            "units": {} if self.rx_review is None else self.rx_review.get("units") or {},
            "sounding": self.alarms.sounding(self.now_s()),
            "patient_bolus": {"requested": self.pb_requested, "delivered": self.pb_delivered,
                              "denied": dict(self.pb_denied)},
            "lockout_remaining_ms": self._lockout_remaining(),
            "dose_guard": {"holding": self.holding, "held_strokes": self.held_strokes},
            "presumed": {"strokes": self.presumed_strokes, "nl": self.presumed_nl,
                         "drug_ng": self._by_name(self.presumed_ng)},
            "resets": self.reset_count,
            "last_reset": self.last_reset,
        }

    def _by_name(self, per_slot):
        out = {}
        for d in range(MAX_SLOTS):
            if self.slot_names[d] is not None:
                out[self.slot_names[d]] = per_slot[d]
        return out

    def pop_events(self):
        """Log entries since the last call, oldest first: dicts {"seq", "up_s", "day", "ms",
        "kind", "code", "data"} (day/ms = wall clock, -1 when never set). Every one of them must be
        persisted (event log) and reported (protocol event lines) by the shell."""
        ev = self._events
        self._events = []
        return ev

    def motor_enabled(self):
        return self.motor_on

    def ms_to_next_stroke(self):
        """ms until the delivery engine's next stroke at the current rate (None: rate 0)."""
        return self.engine.ms_to_next_stroke()

    def has_events(self):
        """True when log entries wait for pop_events() (the shell persists and reports them)."""
        return len(self._events) > 0

    def log_event(self, kind, code, data):
        """A log entry from the shell (boot report, self-test result), timestamped like the core's."""
        self._log(kind, code, data)

    # ============================================================================================
    # Persistence seam
    # ============================================================================================
    def snapshot(self):
        """Plain data (JSON-able) that must survive power-off, written by the shell after every
        state-changing command and periodically while running."""
        return {
            "v": SNAPSHOT_VERSION,
            "state": self.state,
            "seq": self._seq,
            "mono": [self.mono.day, self.mono.ms],
            "wall": [self.wall.day, self.wall.ms] if self.clock_set else None,
            "rx": self.rx,
            "rx_review": self.rx_review,
            "needs_program": self.needs_program,
            "slots": list(self.slot_names),
            "concs": list(self._concs),
            "last_increase": dict((k, [v[0], v[1]]) for k, v in self._last_increase.items()),
            "engine": self.engine.snapshot(),
            "reservoir": None if self.reservoir is None else [
                self.reservoir.capacity_nl, self.reservoir.low_alert_nl, self.reservoir.empty_nl,
                self.reservoir.remaining_nl],
            "catheter": None if self.catheter is None else [self.catheter.volume_nl,
                                                            self.catheter.snapshot()],
            "ledger": self.ledger.snapshot(),
            "history": self.history.snapshot(self.mono.day, self.mono.ms),
            "alarms": self.alarms.snapshot(),
            "counters": [self.strokes_total, self.delivered_nl_total, self.pb_requested,
                         self.pb_delivered, dict(self.pb_denied), list(self.delivered_ug),
                         list(self._delivered_ng)],
            "reserve": self._reservation(),
            "bolus": None if self.arbiter.active is None else self.arbiter.active.as_dict(),
            "hard_ng": list(self._hard_ng),
            "held_strokes": self.held_strokes,
            "periodic_last": self._periodic_snapshot(),
            "presumed": [self.presumed_strokes, self.presumed_nl, list(self.presumed_ng)],
            "resets": [list(r) for r in self._resets],
            "reset_count": self.reset_count,
            # an acknowledged program still waiting to apply: ["pending"|"bridging", rx, review]
            "waiting": self._waiting_snapshot(),
        }

    def _waiting_snapshot(self):
        if self._pending is not None:
            return ["pending", self._pending[0], self._pending[1]]
        if self._bridge is not None:
            return ["bridging", self._bridge[0], self._bridge[1]]
        return None

    def record_written(self, snap):
        """The shell has written `snap` (a snapshot() of now) to flash: its reservation is the
        budget of strokes from here to the next record."""
        self.reserve_strokes = snap["reserve"]
        self.strokes_since_record = 0

    def record_due(self):
        """True when strokes counted since the last record exceed its reservation: the shell must
        write a record BEFORE making them (docs/therapy.md, write-ahead reservation)."""
        return self.strokes_since_record > self.reserve_strokes

    def _reservation(self):
        """Strokes a record covers beyond its counters: while the motor may run,
        min(reserve_nl / stroke, strokes at the highest possible rate within reserve_ms + 1)."""
        if self.state not in SM.MOTOR_STATES:
            return 0
        rate = self.arbiter.rate_nl_per_h()
        if self.state == SM.RUNNING:
            rate += self._max_basal
        cap = self.reserve_nl // self.stroke_nl
        by_time = mul_div(rate, self.reserve_ms, MS_PER_HOUR) // self.stroke_nl + 1
        return by_time if by_time < cap else cap

    def _periodic_snapshot(self):
        # only starts that can still matter (within the spacing)
        out = []
        mono = self.mono
        for minute in self._periodic_last:
            day, ms = self._periodic_last[minute]
            if diff_ms(day, ms, mono.day, mono.ms, PERIODIC_MIN_SPACING_MS) < PERIODIC_MIN_SPACING_MS:
                out.append([minute, day, ms])
        return out

    def restore(self, snap):
        """Load a snapshot into a fresh Pump (state booting). Returns reasons.OK, or
        "state_corrupt" when the snapshot is malformed or inconsistent (nothing is kept then; the
        shell enters the safe state with an alarm — docs/safety.md)."""
        if self.state != SM.BOOTING or self.rx is not None:
            return R.NOT_ALLOWED
        try:
            self._restore(snap)
        except Exception:  # any malformed snapshot: refuse as a whole
            self.__init__(self.stroke_nl, self.library)
            return R.STATE_CORRUPT
        return R.OK

    def continue_log_after(self, seq):
        """The stored log already holds entries numbered up to seq (a cut can fall between the
        log's append and the state record that carries the counter): numbering continues after
        it, so no two stored entries share a number. Called by the shell at boot."""
        if _is_int(seq) and seq > self._seq:
            self._seq = seq

    def was_running(self):
        return self._restored_state in (SM.RUNNING, SM.SUSPENDED)

    def _restore(self, snap):
        if snap["v"] not in (1, SNAPSHOT_VERSION):
            raise ValueError("version")
        rx, review = snap["rx"], snap["rx_review"]
        if rx is not None:
            self._check_stored_program(rx, review)
        self.mono.set(snap["mono"][0], snap["mono"][1])
        if snap["wall"] is not None:
            # The Pico has no battery-backed clock: the wall clock resumes where it was saved and
            # is flagged until a host sets it again (schedule times may be late by the downtime).
            self.wall.set(snap["wall"][0], snap["wall"][1])
            self.clock_set = True
            self.clock_suspect = True
        self._seq = snap["seq"]             # log sequence numbers continue across resets
        for d in range(MAX_SLOTS):
            self.slot_names[d] = snap["slots"][d]
            self._concs[d] = snap["concs"][d]
        self._last_increase = dict((k, (v[0], v[1])) for k, v in snap["last_increase"].items())
        self.engine.restore(snap["engine"])
        if snap["reservoir"] is not None:
            cap, low, empty, remaining = snap["reservoir"]
            self.reservoir = Reservoir(cap, low, empty, remaining)
        if snap["catheter"] is not None:
            self.catheter = Catheter(snap["catheter"][0], MAX_SLOTS,
                                     tol_pct=self.tolerance_pct)
            self.catheter.restore(snap["catheter"][1])
        self.ledger.restore(snap["ledger"])
        self.history.restore(snap["history"])
        self.alarms.restore(snap["alarms"], self.now_s())
        c = snap["counters"]
        self.strokes_total, self.delivered_nl_total, self.pb_requested, self.pb_delivered = c[:4]
        for k in c[4]:
            self.pb_denied[k] = c[4][k]
        for d in range(MAX_SLOTS):
            self.delivered_ug[d] = c[5][d]
            self._delivered_ng[d] = c[6][d]
        self.needs_program = bool(snap["needs_program"])
        self.rx = rx
        self.rx_review = review
        if rx is not None:
            self._max_basal = schedule.max_rate(rx["basal"])
        if snap["v"] >= 2:
            self._restore_v2(snap)
        elif review is not None:
            self._set_hard_limits(review, tighten_only=False)
            self._restored_reserve = RESERVE_NL // self.stroke_nl \
                if snap["state"] in SM.MOTOR_STATES else 0
        self._restored_state = snap["state"]
        self.engine.set_rate(0)
        self._reschedule()

    def _check_stored_program(self, rx, review):
        """The program's own shape is re-checked; what depends on the library is not: the library
        may have changed since the commit (its limits are kept in the record)."""
        problems, check = RX.validate(rx, self.library, None, None, self.stroke_nl)
        if [p for p in problems if p[0] not in R.LIBRARY_PROBLEMS]:
            raise ValueError("stored program invalid")
        if check["checksum"] != review["checksum"]:
            raise ValueError("stored program checksum")

    def _restore_v2(self, snap):
        reserve = snap["reserve"]
        if not _is_int(reserve) or not 0 <= reserve <= self.reserve_nl // self.stroke_nl:
            raise ValueError("reserve")
        self._restored_reserve = reserve
        b = snap["bolus"]
        if b is not None and not (_is_int(b["volume_nl"]) and _is_int(b["delivered_nl"])):
            raise ValueError("bolus")
        self._restored_bolus = b
        for d in range(MAX_SLOTS):
            h = snap["hard_ng"][d]
            if h is not None and not _is_int(h):
                raise ValueError("hard_ng")
            self._hard_ng[d] = h
        self.held_strokes = snap["held_strokes"]
        for minute, day, ms in snap["periodic_last"]:
            self._periodic_last[minute] = (day, ms)
        p = snap["presumed"]
        self.presumed_strokes, self.presumed_nl = p[0], p[1]
        for d in range(MAX_SLOTS):
            self.presumed_ng[d] = p[2][d]
        resets = snap["resets"]
        if len(resets) > RESET_HISTORY:
            raise ValueError("resets")
        for day, ms, cause in resets:
            self._resets.append([day, ms, cause])
        self.reset_count = snap["reset_count"]
        waiting = snap.get("waiting")        # absent in records written before it existed
        if waiting is not None:
            what, wrx, wrv = waiting
            self._check_stored_program(wrx, wrv)
            if what == "pending":
                self._pending = (wrx, wrv)
            elif what == "bridging":
                self._bridge = (wrx, wrv)
            else:
                raise ValueError("waiting")

    # ============================================================================================
    # Resets (the shell calls note_reset once, after a restore, before boot)
    # ============================================================================================
    def note_reset(self, cause):
        """An unexpected reset restored this pump (docs/therapy.md "Resets and accounting"):
        count what the record's reservation may have hidden as delivered, report an interrupted
        bolus, record the reset with its cause and raise its alarm (reset_loop when it is the
        RESET_LOOP_N-th within RESET_LOOP_WINDOW_MS). boot() then applies the alarms' actions."""
        if cause not in RESET_CAUSES:
            cause = "unknown"
        presumed = self._restored_reserve
        self._restored_reserve = 0
        if presumed:
            self._presume_strokes(presumed)
        bolus = self._restored_bolus
        self._restored_bolus = None
        if bolus is not None:
            self._log("bolus_interrupted", bolus.get("kind"),
                      {"volume_nl": bolus["volume_nl"], "delivered_nl": bolus["delivered_nl"]})
        mono = self.mono
        self._resets.append([mono.day, mono.ms, cause])
        if len(self._resets) > RESET_HISTORY:
            self._resets.pop(0)
        self.reset_count += 1
        recent = 0
        for day, ms, c in self._resets:
            if diff_ms(day, ms, mono.day, mono.ms, RESET_LOOP_WINDOW_MS) < RESET_LOOP_WINDOW_MS:
                recent += 1
        loop = recent >= RESET_LOOP_N
        self.last_reset = {"cause": cause, "up_s": self.now_s(), "count": self.reset_count,
                           "recent": recent, "presumed_strokes": presumed,
                           "interrupted_bolus": bolus}
        self._log("reset", cause, {"count": self.reset_count, "recent": recent,
                                   "presumed_strokes": presumed})
        code = A.RESET_LOOP if loop else (A.WATCHDOG_RESET if cause == "watchdog"
                                          else A.UNEXPECTED_RESET)
        # an event alarm: the condition is over as soon as it is raised; it latches until acked
        now = self.now_s()
        self.alarms.raise_(code, now)
        self.alarms.condition_gone(code, now)
        self._drain_alarm_events()

    def _presume_strokes(self, n):
        """Count n strokes the record reserved as delivered: ledger and per-drug counters at the
        highest concentration each drug has in the catheter or the reservoir, the reservoir and
        the stroke/volume counters by n strokes, and the catheter model widened so its later
        output never falls below the truth."""
        vol = n * self.stroke_nl
        for d in range(MAX_SLOTS):
            if self.slot_names[d] is None:
                continue
            ng = (vol * self._bolus_conc(d) + 999) // 1000
            if ng:
                self.ledger.add(d, ng + (ng * self.tolerance_pct + 99) // 100)
                self.presumed_ng[d] += ng
                total = self._delivered_ng[d] + ng
                self.delivered_ug[d] += total // 1000
                self._delivered_ng[d] = total % 1000
        if self.reservoir is not None:
            self.reservoir.draw(vol)
        if self.catheter is not None:
            self.catheter.presume_hidden_pushes(vol, self._concs)
        self.strokes_total += n
        self.delivered_nl_total += vol
        self.presumed_strokes += n
        self.presumed_nl += vol
        self._log("presumed_delivery", None, {"strokes": n, "volume_nl": vol})
        self._reservoir_check()

    # ============================================================================================
    # Internals
    # ============================================================================================
    def _command(self, event, name):
        code, nxt = SM.decide(self.state, event, self._guard)
        if code != R.OK:
            return self._refuse_sm(name, event, code)
        self._log("command", name, None)
        self._enter(nxt)
        return R.OK, None

    def _fire(self, event):
        code, nxt = SM.decide(self.state, event, self._guard)
        if code != R.OK:
            return code, None
        if nxt != self.state:
            self._enter(nxt, immediate=event in (SM.STOP_ALARM, SM.FATAL))
        return R.OK, None

    def _enter(self, new_state, immediate=False):
        """The one place a state is entered; forces the motor off outside MOTOR_STATES."""
        old = self.state
        self.state = new_state
        if new_state in SM.MOTOR_STATES:
            self.motor_on = True
        else:
            self.motor_on = False
            self.stop_mode = "immediate" if immediate else "finish_stroke"
            b = self.arbiter.cancel()
            if b is not None:
                self._log("bolus_cancelled", b.kind, {"delivered_nl": b.delivered_nl})
            if self.arbiter.clear_pending():
                self._log("periodic_dropped", None, None)
            if self.holding:             # nothing is held while the motor is off
                self._hold_ends()
        if new_state == SM.RUNNING:
            self._reschedule()
        if new_state != SM.SUSPENDED:
            self._to_suspend_end_ms = _FAR
        self._update_rate()
        self._log("state", new_state, {"from": old})

    def _guard(self, name):
        if name == "startable":
            if self.rx is None:
                return R.NO_PROGRAM
            if self.needs_program:
                return R.PROGRAM_REQUIRED
            if not self.clock_set:
                return R.CLOCK_NOT_SET
            if self.catheter is None or not self.catheter.is_primed():
                return R.NOT_PRIMED
            if self.reservoir is None or self.reservoir.is_empty():
                return R.RESERVOIR_EMPTY
            if self.alarms.stopping_latched():
                return R.ALARM_ACTIVE
            return None
        if name == "primable":
            if self.rx is None:
                return R.NO_PROGRAM
            if self.needs_program:
                return R.PROGRAM_REQUIRED
            if self.reservoir is None or self.reservoir.is_empty():
                return R.RESERVOIR_EMPTY
            return None
        if name == "commit_ok":
            checksum, confirm_soft, bridge, continuing = self._commit_args
            if self.staged is None:
                return R.NOTHING_STAGED
            if checksum != self.staged_review["checksum"]:
                return R.CHECKSUM_MISMATCH
            if (self.staged_review["soft_breaches"] or self.staged_review.get("soft_raised")) \
                    and not confirm_soft:
                return R.SOFT_LIMIT_UNCONFIRMED
            if self.staged_review.get("start_breaches") and not continuing:
                return R.START_DOSE_UNCONFIRMED
            if bridge and self.staged_review.get("bridge") is None:
                return R.BAD_VALUE
            return None
        if name == "no_stopping_alarm":
            return R.ALARM_ACTIVE if self.alarms.stopping_latched() else None
        if name == "restorable":
            if self.rx is None:
                return R.NO_PROGRAM
            # a new admixture's content is unknown until its program is committed
            return R.PROGRAM_REQUIRED if self.needs_program else None
        return R.NOT_ALLOWED

    def _refuse(self, what, code, details=None, event=None):
        """A refused command: logged, nothing else changes. Returns (code, details): what people
        need to act on it (docs/therapy.md "Refusals"); details None: derived from the code."""
        self._log("refused", what, {"reason": code})
        return code, details if details is not None else self._details_for(code, event)

    def _refuse_sm(self, what, event, code):
        # a refusal by the state table or one of its guards
        return self._refuse(what, code, None, event)

    def _active_alarm_codes(self):
        return [a[0] for a in self.alarms.active()]

    def _details_for(self, code, event):
        """Structured details of a refusal by its code (wire units; the host words them)."""
        d = {}
        if code == R.NOT_ALLOWED or code == R.NOT_RUNNING:
            d["state"] = self.state
            if event is not None:
                states = []
                for row in SM.TABLE:
                    if row[1] == event and row[0] not in states:
                        states.append(row[0])
                d["allowed_in"] = states
        elif code == R.NOT_PRIMED and self.catheter is not None:
            d["catheter_nl"] = self.catheter.volume_nl
            d["catheter_fill_nl"] = self.catheter.fill_nl
        elif code == R.RESERVOIR_EMPTY and self.reservoir is not None:
            d["reservoir_nl"] = self.reservoir.remaining_nl
            d["empty_nl"] = self.reservoir.empty_nl
        elif code == R.ALARM_ACTIVE or code == R.ALARM:
            d["alarms"] = self._active_alarm_codes()
        elif code == R.LOCKOUT:
            d["remaining_ms"] = self._lockout_remaining()
            d["lockout_ms"] = self.rx["patient"]["lockout_ms"]
        elif code == R.MAX_PER_24H:
            mx = self.rx["patient"]["max_per_24h"]
            n = self.history.count_in_24h(self.mono.day, self.mono.ms)
            d["count"] = n
            d["max"] = mx
            d["wait_ms"] = self.history.ms_to_expiry(self.mono.day, self.mono.ms, n - mx + 1)
        elif code == R.BOLUS_ACTIVE and self.arbiter.active is not None:
            d["kind"] = self.arbiter.active.kind
            d["ms_to_end"] = self.arbiter.active.ms_to_end()
        if code == R.LOCKOUT or code == R.MAX_PER_24H or code == R.BOLUS_ACTIVE:
            d["now"] = list(self.wall_now())   # the pump's local time the waits count from
        elif (code == R.DOSE_LIMIT or code == R.BOLUS_AMOUNT) and self._limit_detail:
            d = self._limit_detail
        elif code == R.NOTHING_STAGED or code == R.CHECKSUM_MISMATCH:
            d["staged"] = None if self.staged_review is None else self.staged_review["checksum"]
        elif code == R.SOFT_LIMIT_UNCONFIRMED:
            rv = self.staged_review
            d["drugs"] = rv["soft_breaches"]
            d["raised"] = rv.get("soft_raised") or []
            d["daily_ng"] = rv["daily_ng"]
            d["limits"] = rv["limits"]
            d["units"] = rv.get("units") or {}
        elif code == R.START_DOSE_UNCONFIRMED:
            d["drugs"] = self.staged_review["start_breaches"]
        elif code == R.BAD_VALUE and event == SM.COMMIT:
            d["arg"] = "bridge"
            d["bridge"] = None     # the review offered no bridge bolus
        return d

    def _log(self, kind, code, data):
        self._seq += 1
        if len(self._events) >= MAX_PENDING_EVENTS:
            self._events.pop(0)
            self.events_dropped += 1
        self._events.append({
            "seq": self._seq, "up_s": self.now_s(),
            "day": self.wall.day if self.clock_set else -1,
            "ms": self.wall.ms if self.clock_set else -1,
            "kind": kind, "code": code, "data": data})

    def _drain_alarm_events(self):
        evs = self.alarms.events
        if not evs:
            return
        self.alarms.events = []
        for kind, code, prio in evs:
            self._log(kind, code, {"priority": prio})

    # --- program application ---------------------------------------------------------------------
    def _increase_ages(self, rx):
        ages = {}
        for name in self._last_increase:
            d, m = self._last_increase[name]
            ages[name] = diff_ms(d, m, self.mono.day, self.mono.ms, 7 * MS_PER_DAY)
        return ages

    def _record_increases(self, rx, review):
        old = {} if self.rx_review is None else self.rx_review["daily_ng"]
        for name in review["daily_ng"]:
            if review["daily_ng"][name] > old.get(name, 0):
                self._last_increase[name] = (self.mono.day, self.mono.ms)

    def _slot_problems(self, rx):
        try:
            names = [d["name"] for d in rx["drugs"]]
        except Exception:
            return [[R.INVALID, "drugs"]]
        free = 0
        for d in range(MAX_SLOTS):
            n = self.slot_names[d]
            if n is None or n in names or not self._slot_busy(d):
                free += 1
        needed = 0
        for n in names:
            if n not in self.slot_names:
                needed += 1
        taken_by_new = 0
        for d in range(MAX_SLOTS):
            if self.slot_names[d] in names:
                taken_by_new += 1
        if needed > free - taken_by_new:
            return [[R.TOO_MANY_DRUGS, "drugs"]]
        return []

    def _slot_busy(self, d):
        if self.ledger.total(d) > 0:
            return True
        return self.catheter is not None and self.catheter.max_conc(d) > 0

    def _assign_slots(self, rx):
        names = [d["name"] for d in rx["drugs"]]
        for n in names:
            if n in self.slot_names:
                continue
            for d in range(MAX_SLOTS):
                cur = self.slot_names[d]
                if cur is None or (cur not in names and not self._slot_busy(d)):
                    self.slot_names[d] = n
                    self._hard_ng[d] = None
                    break

    def _set_hard_limits(self, review, tighten_only):
        """The guard's hard limit per slot from a program's review (ng/24 h). A slot whose drug
        has left the program keeps its last limit while it is still in the catheter or the
        ledger. tighten_only: a committed program not yet applied may only make limits stricter."""
        limits = review["limits"]
        for name in limits:
            d = self._slot_of(name)
            hard = limits[name][1]
            if d < 0 or hard is None:
                continue
            cur = self._hard_ng[d]
            if tighten_only and cur is not None and cur < hard:
                continue
            self._hard_ng[d] = hard

    def _slot_of(self, name):
        for d in range(MAX_SLOTS):
            if self.slot_names[d] == name:
                return d
        return -1

    def _concs_for(self, rx):
        concs = [0] * MAX_SLOTS
        for drug in rx["drugs"]:
            d = self._slot_of(drug["name"])
            if d >= 0:
                concs[d] = drug["conc_ug_per_ml"]
        return concs

    def _set_reservoir_concs(self, rx):
        concs = self._concs_for(rx)
        for d in range(MAX_SLOTS):
            self._concs[d] = concs[d]

    def _bridge_offer(self, nrx):
        if self.rx is None or self.catheter is None:
            return None
        # concentrations of the staged admixture in slot order (names not yet in a slot: none of
        # the catheter's fluid can be of them, so any catheter fluid counts as old)
        concs = [0] * MAX_SLOTS
        free = [d for d in range(MAX_SLOTS) if self.slot_names[d] is None]
        for drug in nrx["drugs"]:
            d = self._slot_of(drug["name"])
            if d < 0:
                if not free:
                    continue
                d = free.pop(0)
            concs[d] = drug["conc_ug_per_ml"]
        if concs == list(self._concs) and not self.needs_program:
            return None
        offer = bridge_proposal(self.catheter, concs, self._old_basal_rate())
        if offer is None:
            return None
        return {"volume_nl": offer[0], "duration_ms": offer[1]}

    def _old_basal_rate(self):
        if self.rx is None or not self.clock_set:
            return self.basal_rate_nl_per_h
        steps = schedule.profile_for(self.rx["basal"], weekday(self.wall.day))
        return schedule.rate_at(steps, self.wall.ms // MS_PER_MIN)

    def _setup_hardware_models(self, rx, first):
        r = rx["reservoir"]
        if self.reservoir is None or self.reservoir.capacity_nl != r["capacity_nl"]:
            remaining = r["fill_nl"] if self.reservoir is None else min(
                self.reservoir.remaining_nl, r["capacity_nl"])
            self.reservoir = Reservoir(r["capacity_nl"], r["low_alert_nl"], r["empty_nl"], remaining)
        else:
            self.reservoir.set_thresholds(r["low_alert_nl"], r["empty_nl"])
        v = rx["catheter"]["volume_nl"]
        if self.catheter is None or self.catheter.volume_nl != v:
            # a new catheter (or a revised one) starts empty: it must be primed
            self.catheter = Catheter(v, MAX_SLOTS, tol_pct=self.tolerance_pct)
        if first:
            self._set_reservoir_concs(rx)

    def _apply_program(self, rx, review):
        self.rx = rx
        self.rx_review = review
        self._set_hard_limits(review, tighten_only=False)
        self._max_basal = schedule.max_rate(rx["basal"])
        self._set_reservoir_concs(rx)
        self._log("program_active", None, {"checksum": review["checksum"]})
        self._reschedule()
        self._update_rate()
        self._reservoir_check()

    def _stroke_boundary(self):
        if self._pending is not None:
            rx, review = self._pending
            self._pending = None
            self._apply_program(rx, review)
        if self._bridge is not None and self.catheter.volume_holding_old(self._concs) == 0:
            rx, review = self._bridge
            self._bridge = None
            self._log("bridge_done", None, None)
            self._apply_program(rx, review)

    # --- schedule and rates -----------------------------------------------------------------------
    def _reschedule(self):
        """Recompute the basal rate and the ms to the next boundary / periodic start (event time)."""
        if self.rx is None or not self.clock_set:
            self.basal_rate_nl_per_h = 0
            self._to_boundary_ms = _FAR
            self._to_periodic_ms = _FAR
            return
        minute = self.wall.ms // MS_PER_MIN
        steps = schedule.profile_for(self.rx["basal"], weekday(self.wall.day))
        self.basal_rate_nl_per_h = schedule.rate_at(steps, minute)
        nxt = schedule.next_boundary_min(steps, minute)
        self._to_boundary_ms = nxt * MS_PER_MIN - self.wall.ms
        # a start at exactly this ms is due now (hence "strictly after the minute before")
        basis = minute - 1 if self.wall.ms % MS_PER_MIN == 0 else minute
        p = schedule.periodic_next_min(self.rx["periodic"], basis)
        self._to_periodic_ms = _FAR if p < 0 else p * MS_PER_MIN - self.wall.ms

    def _start_periodic(self):
        minute = self.wall.ms // MS_PER_MIN
        k = schedule.periodic_at(self.rx["periodic"], minute)
        # next start from here (strictly later)
        p = schedule.periodic_next_min(self.rx["periodic"], minute)
        self._to_periodic_ms = _FAR if p < 0 else p * MS_PER_MIN - self.wall.ms
        if k < 0 or self.wall.ms % MS_PER_MIN != 0:
            return
        # spacing on the monotonic clock: never due twice within 23 h, whatever the wall clock did
        last = self._periodic_last.get(minute)
        mono = self.mono
        if last is not None and diff_ms(last[0], last[1], mono.day, mono.ms,
                                        PERIODIC_MIN_SPACING_MS) < PERIODIC_MIN_SPACING_MS:
            self._log("periodic_skipped", R.TOO_SOON, {"minute": minute})
            return
        self._periodic_last[minute] = (mono.day, mono.ms)
        e = self.rx["periodic"][k]
        code = self._dose_limit_check(e["volume_nl"])
        if code != R.OK:
            self._log("periodic_skipped", code, {"minute": minute})
            return
        code, b = self.arbiter.due_periodic(e["volume_nl"], e["duration_ms"])
        if code == R.OK:
            self._log("bolus_start", PERIODIC, {"volume_nl": e["volume_nl"],
                                                "duration_ms": e["duration_ms"]})
            self._after_bolus_start()
        else:
            self._log("periodic_" + ("queued" if code == R.BOLUS_QUEUED else "skipped"), code, None)

    def _update_rate(self):
        basal = self.basal_rate_nl_per_h if self.state == SM.RUNNING else 0
        total = basal + self.arbiter.rate_nl_per_h() if self.motor_on else 0
        if total != self.engine.rate_nl_per_h:
            self.engine.set_rate(total)
            self._recompute_times()

    def _recompute_times(self):
        res = self.reservoir
        if res is None:
            self.ms_to_low = None
            self.ms_to_empty = None
            return
        r = self.engine.rate_nl_per_h
        self.ms_to_low = res.ms_to_low(r)
        self.ms_to_empty = res.ms_to_empty(r)

    def _reservoir_check(self):
        res = self.reservoir
        if res is None:
            return
        now = self.now_s()
        self._res_level = res.level()
        if res.is_empty():
            self.raise_alarm(A.RESERVOIR_EMPTY)
        else:
            self.alarms.condition_gone(A.RESERVOIR_EMPTY, now)
        if res.is_low():
            self.raise_alarm(A.RESERVOIR_LOW)
        else:
            self.alarms.condition_gone(A.RESERVOIR_LOW, now)
        self._drain_alarm_events()

    # --- boluses ---------------------------------------------------------------------------------
    def _patient_gate(self):
        code, nxt = SM.decide(self.state, SM.PATIENT_BOLUS, self._guard)
        if code != R.OK:
            return code
        p = self.rx["patient"] if self.rx is not None else None
        if p is None:
            return NOT_CONFIGURED
        if self.alarms.blocks_bolus():
            return R.ALARM
        if self.arbiter.active is not None:
            return R.BOLUS_ACTIVE
        if self._lockout_remaining() > 0:
            return R.LOCKOUT
        if self.history.count_in_24h(self.mono.day, self.mono.ms) >= p["max_per_24h"]:
            return R.MAX_PER_24H
        return self._dose_limit_check(p["volume_nl"])

    def _lockout_remaining(self):
        if self.rx is None or self.rx["patient"] is None:
            return 0
        return self.history.lockout_remaining_ms(self.mono.day, self.mono.ms,
                                                 self.rx["patient"]["lockout_ms"])

    def _bolus_conc(self, d):
        """Highest concentration of slot d that a bolus could push out of the tip now
        (catheter content or reservoir): conservative for dose limits."""
        c = self._concs[d]
        if self.catheter is not None:
            top = self.catheter.max_conc(d)
            if top > c:
                c = top
        return c

    def _dose_limit_check(self, volume_nl):
        """A bolus of volume_nl would take a slot's rolling-24-h amount over its hard limit
        (at the highest concentration it could push out: conservative)."""
        for d in range(MAX_SLOTS):
            hard = self._hard_ng[d]
            if hard is None:
                continue
            amount = volume_nl * self._bolus_conc(d) * (100 + self.tolerance_pct) // 100000
            if self.ledger.total(d) + amount > hard:
                self._limit_detail = {"drug": self.slot_names[d], "rolling_24h_ng":
                                      self.ledger.total(d), "bolus_ng": amount, "limit": hard,
                                      "unit": "ng/day"}
                return R.DOSE_LIMIT
        return R.OK

    def _bolus_amount_check(self, volume_nl):
        for drug in self.rx["drugs"]:
            entry = self.library.entry(drug["name"]) if self.library is not None else None
            if entry is None or entry.max_bolus_ng is None:
                continue
            d = self._slot_of(drug["name"])
            amount = volume_nl * self._bolus_conc(d) // 1000
            if amount > entry.max_bolus_ng:
                self._limit_detail = {"drug": drug["name"], "value": amount,
                                      "limit": entry.max_bolus_ng, "unit": "ng",
                                      "volume_nl": volume_nl}
                return R.BOLUS_AMOUNT
        return self._dose_limit_check(volume_nl)

    def _start_bolus(self, kind, volume_nl, duration_ms):
        code, b = self.arbiter.request(kind, volume_nl, duration_ms)
        if code != R.OK:
            return self._refuse(kind + "_bolus", code, None, SM.CLINICIAN_BOLUS)
        self._log("bolus_start", kind, {"volume_nl": volume_nl, "duration_ms": duration_ms})
        self._after_bolus_start()
        return R.OK, {"rate_nl_per_h": b.rate_nl_per_h, "ms_to_end": b.ms_to_end()}

    def _after_bolus_start(self):
        self._update_rate()
        self._recompute_times()   # reservoir times at the start of every bolus (GIP)

