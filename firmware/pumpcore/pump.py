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
from pumpcore import prescription as RX
from pumpcore import reasons as R
from pumpcore import schedule
from pumpcore import statemachine as SM
from pumpcore.bolus import CLINICIAN, PATIENT, PERIODIC, PRIME, BolusArbiter
from pumpcore.catheter import Catheter, bridge_proposal
from pumpcore.clock import MS_PER_DAY, MS_PER_MIN, Clock, diff_ms, weekday
from pumpcore.commands import CLINICIAN_BOLUS_MAX_MS, CLINICIAN_BOLUS_MAX_NL, MAX_SUSPEND_MIN
from pumpcore.delivery import DeliveryEngine
from pumpcore.ledger import Ledger, PatientHistory
from pumpcore.library import default_library
from pumpcore.reservoir import Reservoir

MAX_SLOTS = 4
PRIME_RATE_NL_PER_H = 1_000_000       # priming bolus rate: 1 mL/h, the pump's maximum
MAX_PENDING_EVENTS = 256
SNAPSHOT_VERSION = 1
_FAR = 536_870_911                    # "no event" horizon (< 2**29 ms)

NOT_CONFIGURED = R.NOT_CONFIGURED


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


class Pump:
    def __init__(self, stroke_nl=250, library=None):
        self.stroke_nl = stroke_nl
        self.library = library if library is not None else default_library()
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
        self._commit_args = (None, False, False)
        self._last_periodic = None     # (wall day, minute) of the last periodic start: never twice
        self._res_level = None         # reservoir level last acted on ("ok"/"low"/"empty")

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
            self._stroke()
            n -= 1

    def _stroke(self):
        # One stroke of the pump: reservoir -> catheter -> patient (ledger). Allocation-free.
        res = self.reservoir
        drawn = res.draw(self.stroke_nl)
        self.strokes_total += 1
        self.delivered_nl_total += drawn
        self._strokes_out += 1
        cat = self.catheter
        cat.push(drawn, self._concs)
        out = cat.out_ng
        for d in range(MAX_SLOTS):
            if out[d]:
                self.ledger.add(d, out[d])
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
            return self._fire(SM.RESTORE_RUNNING)
        code = self._fire(SM.SELF_TEST_PASSED)
        # alarms restored from the snapshot decide where a reset pump comes back up
        if self.alarms.safe_latched():
            return self._fire(SM.FATAL)
        if self.alarms.stopping_latched():
            return self._fire(SM.STOP_ALARM)
        return code

    def set_clock(self, day, ms_of_day):
        if not (_is_int(day) and _is_int(ms_of_day)) or day < 0 or day > 1_000_000 \
                or not (0 <= ms_of_day < MS_PER_DAY):
            return self._refuse("set_clock", R.BAD_VALUE)
        code, nxt = SM.decide(self.state, SM.SET_CLOCK, self._guard)
        if code != R.OK:
            return self._refuse("set_clock", code)
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
            return self._refuse("stage", code)
        problems, review = RX.validate(rx, self.library, self.rx, self._increase_ages(rx),
                                       self.stroke_nl)
        if not problems:
            problems = self._slot_problems(rx)
        if problems:
            self._log("refused", "stage", {"problems": problems})
            return problems[0][0], {"problems": problems, "review": review}
        nrx = RX.normalize(rx)
        review["bridge"] = self._bridge_offer(nrx)
        self.staged = nrx
        self.staged_review = review
        self._log("staged", None, {"checksum": review["checksum"]})
        return R.OK, review

    def review(self):
        if self.staged is None:
            return R.NOTHING_STAGED, None
        return R.OK, self.staged_review

    def commit(self, checksum, confirm_soft=False, bridge=False):
        self._commit_args = (checksum, confirm_soft, bridge)
        code, nxt = SM.decide(self.state, SM.COMMIT, self._guard)
        if code != R.OK:
            return self._refuse("commit", code)
        rx, review = self.staged, self.staged_review
        self.staged = None
        self.staged_review = None
        self._assign_slots(rx)
        first = self.rx is None
        self._record_increases(rx, review)
        self._setup_hardware_models(rx, first)
        self.history.mark_lockout(self.mono.day, self.mono.ms)  # every commit restarts lockout
        self.needs_program = False
        self._log("committed", None, {"checksum": review["checksum"], "bridge": bool(bridge)})
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

    def start(self):
        return self._command(SM.START, "start")

    def stop(self):
        return self._command(SM.STOP, "stop")

    def suspend(self, minutes):
        if not _is_int(minutes) or not (1 <= minutes <= MAX_SUSPEND_MIN):
            return self._refuse("suspend", R.BAD_VALUE)
        code, data = self._command(SM.SUSPEND, "suspend")
        if code == R.OK:
            self._to_suspend_end_ms = minutes * MS_PER_MIN
        return code, data

    def resume(self):
        return self._command(SM.RESUME, "resume")

    def prime(self, volume_nl):
        if self.catheter is not None and (not _is_int(volume_nl) or volume_nl < 1
                                          or volume_nl > 2 * self.catheter.volume_nl + 100_000):
            return self._refuse("prime", R.BAD_VALUE)
        if not _is_int(volume_nl) or volume_nl < 1:
            return self._refuse("prime", R.BAD_VALUE)
        code, nxt = SM.decide(self.state, SM.PRIME, self._guard)
        if code != R.OK:
            return self._refuse("prime", code)
        duration_ms = (volume_nl * 36 + 9) // 10   # ceil(volume at PRIME_RATE_NL_PER_H = 1 mL/h)
        code, bolus = self.arbiter.request(PRIME, volume_nl, duration_ms)
        if code != R.OK:
            return self._refuse("prime", code)
        self._log("bolus_start", PRIME, {"volume_nl": volume_nl, "duration_ms": duration_ms})
        self._enter(nxt)
        return R.OK, {"duration_ms": bolus.ms_to_end()}

    def refill(self, fill_nl, new_admixture=False):
        if self.reservoir is None:
            return self._refuse("refill", R.NO_PROGRAM)
        if not _is_int(fill_nl) or not (0 <= fill_nl <= self.reservoir.capacity_nl):
            return self._refuse("refill", R.BAD_VALUE)
        code, nxt = SM.decide(self.state, SM.REFILL, self._guard)
        if code != R.OK:
            return self._refuse("refill", code)
        self.reservoir.refill(fill_nl)
        self.history.mark_lockout(self.mono.day, self.mono.ms)  # every refill restarts lockout
        if new_admixture:
            self.needs_program = True
            for d in range(MAX_SLOTS):
                self._concs[d] = 0   # unknown until the new program commits (pump cannot start)
        self._log("refilled", None, {"fill_nl": fill_nl, "new_admixture": bool(new_admixture)})
        self._reservoir_check()
        self._update_rate()
        return R.OK, None

    def clinician_bolus(self, volume_nl, duration_ms):
        if not (_is_int(volume_nl) and _is_int(duration_ms)) \
                or not (1 <= volume_nl <= CLINICIAN_BOLUS_MAX_NL) \
                or not (MS_PER_MIN <= duration_ms <= CLINICIAN_BOLUS_MAX_MS):
            return self._refuse("clinician_bolus", R.BAD_VALUE)
        code, nxt = SM.decide(self.state, SM.CLINICIAN_BOLUS, self._guard)
        if code != R.OK:
            return self._refuse("clinician_bolus", code)
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
            return self._refuse("patient_bolus", code)
        p = self.rx["patient"]
        code, data = self._start_bolus(PATIENT, p["volume_nl"], p["duration_ms"])
        if code == R.OK:
            self.pb_delivered += 1
            self.history.record_start(self.mono.day, self.mono.ms)
        return code, data

    def ack(self, alarm_code=None):
        if alarm_code is not None and A.priority_of(alarm_code) == 0:
            return self._refuse("ack", R.UNKNOWN_ALARM)
        code = self.alarms.ack(alarm_code, self.now_s())
        if code != R.OK:
            return self._refuse("ack", code)
        self._drain_alarm_events()
        code, nxt = SM.decide(self.state, SM.ACK, self._guard)
        if code == R.OK and nxt != self.state:
            self._enter(nxt)
        return R.OK, None

    def silence(self):
        code = self.alarms.silence(self.now_s())
        self._drain_alarm_events()
        if code != R.OK:
            return self._refuse("silence", code)
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
            if prio >= A.MEDIUM and self.arbiter.active is not None:
                b = self.arbiter.cancel()
                self._log("bolus_cancelled", b.kind, {"delivered_nl": b.delivered_nl, "alarm": code})
                self._update_rate()
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
            "sounding": self.alarms.sounding(self.now_s()),
            "patient_bolus": {"requested": self.pb_requested, "delivered": self.pb_delivered,
                              "denied": dict(self.pb_denied)},
            "lockout_remaining_ms": self._lockout_remaining(),
        }

    def pop_events(self):
        """Log entries since the last call, oldest first: dicts {"seq", "up_s", "day", "ms",
        "kind", "code", "data"} (day/ms = wall clock, -1 when never set). Every one of them must be
        persisted (event log) and reported (protocol event lines) by the shell."""
        ev = self._events
        self._events = []
        return ev

    def motor_enabled(self):
        return self.motor_on

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
        }

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

    def was_running(self):
        return getattr(self, "_restored_state", None) in (SM.RUNNING, SM.SUSPENDED)

    def _restore(self, snap):
        if snap["v"] != SNAPSHOT_VERSION:
            raise ValueError("version")
        rx, review = snap["rx"], snap["rx_review"]
        if rx is not None:
            problems, check = RX.validate(rx, self.library, None, None, self.stroke_nl)
            if [p for p in problems if p[0] not in (R.START_DOSE, R.TITRATION_STEP,
                                                      R.TITRATION_INTERVAL)]:
                raise ValueError("stored program invalid")
            if check["checksum"] != review["checksum"]:
                raise ValueError("stored program checksum")
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
            self.catheter = Catheter(snap["catheter"][0], MAX_SLOTS)
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
        self._restored_state = snap["state"]
        self.engine.set_rate(0)
        self._reschedule()

    # ============================================================================================
    # Internals
    # ============================================================================================
    def _command(self, event, name):
        code, nxt = SM.decide(self.state, event, self._guard)
        if code != R.OK:
            return self._refuse(name, code)
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
            checksum, confirm_soft, bridge = self._commit_args
            if self.staged is None:
                return R.NOTHING_STAGED
            if checksum != self.staged_review["checksum"]:
                return R.CHECKSUM_MISMATCH
            if self.staged_review["soft_breaches"] and not confirm_soft:
                return R.SOFT_LIMIT_UNCONFIRMED
            if bridge and self.staged_review.get("bridge") is None:
                return R.BAD_VALUE
            return None
        if name == "no_stopping_alarm":
            return R.ALARM_ACTIVE if self.alarms.stopping_latched() else None
        if name == "restorable":
            return None if self.rx is not None else R.NO_PROGRAM
        return R.NOT_ALLOWED

    def _refuse(self, what, code):
        self._log("refused", what, {"reason": code})
        return code, None

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
        if self.catheter is not None:
            for vol, concs in self.catheter.segments():
                if vol and concs[d]:
                    return True
        return False

    def _assign_slots(self, rx):
        names = [d["name"] for d in rx["drugs"]]
        for n in names:
            if n in self.slot_names:
                continue
            for d in range(MAX_SLOTS):
                cur = self.slot_names[d]
                if cur is None or (cur not in names and not self._slot_busy(d)):
                    self.slot_names[d] = n
                    break

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
            self.catheter = Catheter(v, MAX_SLOTS)
        if first:
            self._set_reservoir_concs(rx)

    def _apply_program(self, rx, review):
        self.rx = rx
        self.rx_review = review
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
        if k < 0 or self.wall.ms % MS_PER_MIN != 0 or self._last_periodic == (self.wall.day, minute):
            return
        self._last_periodic = (self.wall.day, minute)
        e = self.rx["periodic"][k]
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
            for vol, concs in self.catheter.segments():
                if vol and concs[d] > c:
                    c = concs[d]
        return c

    def _dose_limit_check(self, volume_nl):
        limits = self.rx_review["limits"]
        for name in limits:
            hard = limits[name][1]
            d = self._slot_of(name)
            if hard is None or d < 0:
                continue
            amount = volume_nl * self._bolus_conc(d) // 1000
            if self.ledger.total(d) + amount > hard:
                return R.DOSE_LIMIT
        return R.OK

    def _bolus_amount_check(self, volume_nl):
        for drug in self.rx["drugs"]:
            entry = self.library.entry(drug["name"])
            if entry is None or entry.max_bolus_ng is None:
                continue
            d = self._slot_of(drug["name"])
            if volume_nl * self._bolus_conc(d) // 1000 > entry.max_bolus_ng:
                return R.BOLUS_AMOUNT
        return self._dose_limit_check(volume_nl)

    def _start_bolus(self, kind, volume_nl, duration_ms):
        code, b = self.arbiter.request(kind, volume_nl, duration_ms)
        if code != R.OK:
            return self._refuse(kind + "_bolus", code)
        self._log("bolus_start", kind, {"volume_nl": volume_nl, "duration_ms": duration_ms})
        self._after_bolus_start()
        return R.OK, {"rate_nl_per_h": b.rate_nl_per_h, "ms_to_end": b.ms_to_end()}

    def _after_bolus_start(self):
        self._update_rate()
        self._recompute_times()   # reservoir times at the start of every bolus (GIP)

