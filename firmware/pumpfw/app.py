# The device application: boot policy, the main loop step, persistence, the one fail-safe handler.
#
# The HAL it drives (self.hal) is pumpfw.hal's contract: every call with its units, timing and
# errors (pumpfw.hal_rp2 on the Pico, pumphil.board in the emulator).
#
# Boot policy (docs/safety.md): the last committed program restarts after a reset ONLY when the
# persisted pump state and counters are present and intact; otherwise the pump enters the safe
# state with a high alarm. Missing state is never treated as a first boot (provisioning writes a
# factory record). Every boot that restores a non-factory record is an unexpected reset: counted,
# alarmed and written back before therapy resumes (docs/therapy.md "Resets and accounting").
# A missing or damaged security record (keys, counters) also locks the protocol: only an
# unauthenticated hello is answered until the pump is re-keyed over the physical channel
# (pumpfw.storage.rekey / provision; docs/protocol.md), so a damaged record never re-opens replay.
#
# Write-ahead (docs/therapy.md): no stroke is made that is neither counted in the last state
# record nor within its reservation, and the record of a command's effect is written before its
# reply is sent, so a power cut can neither hide delivery nor undo an acknowledged command.

from pumpcore import alarms as A
from pumpcore import reasons as R
from pumpcore.auth import Auth
from pumpcore.dispatch import Dispatcher
from pumpcore.library import validate_record
from pumpcore.pump import Pump

from pumpfw import board
from pumpfw.storage import CORRUPT, LIBRARY, MISSING, OK, SECURITY, STATE, Storage, device_identity
from pumpfw.supervisor import Supervisor

_WDT_FEED_MS = board.WDT_FEED_MS


class App:
    def __init__(self, hal):
        self.hal = hal
        self.identity = device_identity(hal.fs)      # (device_id, device key) or None
        self.storage = Storage(hal.fs, self.identity[1] if self.identity else None)
        self.library_state, library = self._load_library()
        self.pump = Pump(stroke_nl=board.STROKE_NL, library=library,
                         reserve_nl=board.SNAPSHOT_EVERY_NL, reserve_ms=board.SNAPSHOT_EVERY_MS)
        self.auth = Auth()
        # the board identifies itself: a HAL may name it (the emulator says "emulator")
        self.info = {"firmware": board.FIRMWARE_VERSION,
                     "board": getattr(hal, "board_name", board.BOARD),
                     "device_id": self.identity[0] if self.identity else "unprovisioned"}
        self.dispatcher = Dispatcher(self.pump, self.auth, self.info, persist=self._persist_auth,
                                     stored_log=self.storage.log_page)
        self.supervisor = Supervisor(self.pump, hal)
        self.last = 0
        self.to_snapshot_ms = board.SNAPSHOT_EVERY_MS
        self.to_self_test_ms = board.SELF_TEST_EVERY_MS
        self.due_ms = 0              # ms after `last` when the next full step is needed
        self.own_ms = 0              # ms after `last` of the next wake-up the pump itself planned
        self.button = False          # a button press seen on a fast-path wake-up
        self.halted = False          # set by fail_safe(): the loop no longer runs nor feeds
        self.sounding = None
        self.boot_report = None

    # -- boot ----------------------------------------------------------------------------------
    def boot(self):
        hal = self.hal
        pump = self.pump
        self.last = hal.ticks_ms()
        failure = hal.self_test()
        if self.identity is None:
            failure = failure or "no keys provisioned"
        locked = self._restore_security()
        code_s, snap = self.storage.load(STATE)
        problem = None
        cause = hal.reset_cause()
        logged = self.storage.last_logged_seq()
        if locked or code_s != OK:
            problem = locked or "state " + code_s
        else:
            if not snap.get("factory"):
                if pump.restore(snap.get("pump")) != R.OK:
                    problem = "state corrupt"
                else:
                    pump.continue_log_after(logged)
                    pump.note_reset(cause)
                    if snap.get("supervisor"):
                        try:
                            self.supervisor.load(snap["supervisor"])
                        except Exception:
                            problem = "supervisor state corrupt"
        pump.continue_log_after(logged)
        if failure:
            pump.boot(self_test_ok=False)
        elif problem:
            pump.boot()
            pump.raise_alarm(A.STATE_LOST)
        else:
            pump.boot(resume=pump.was_running())
        self.boot_report = {"self_test": failure, "state": problem, "state_file": code_s,
                            "reset_cause": cause, "security": locked or OK,
                            "library": self.library_state}
        pump.log_event("boot", None, self.boot_report)
        self._after_change()

    def _load_library(self):
        # (OK | MISSING | CORRUPT, Library or None). A pump without a valid library record keeps
        # running its committed program (whose limits are in the state record) and refuses every
        # new program (no_library) until a clinician loads one: never a built-in default.
        if self.identity is None:
            return MISSING, None
        code, rec = self.storage.load(LIBRARY)
        if code != OK:
            return code, None
        problems, library = validate_record(rec)
        if problems:
            return CORRUPT, None
        return OK, library

    def _restore_security(self):
        # The security record -> Auth, and this boot's number persisted before any event line.
        # -> None, or why the protocol is locked.
        if self.identity is None:
            why = "not provisioned"
        else:
            code, sec = self.storage.load(SECURITY)
            if code == OK and self.auth.restore(sec) == R.OK:
                self.auth.next_boot()
                try:
                    self._persist_auth(self.auth.snapshot())
                    return None
                except OSError:
                    why = "security record not writable"
            else:
                why = "security record " + (code if code != OK else CORRUPT)
        self.dispatcher.lock(why)
        return why

    # -- one loop iteration (the device sleeps for the returned ms) ------------------------------
    def step(self):
        hal = self.hal
        now = hal.ticks_ms()
        elapsed = hal.ticks_diff(now, self.last)
        if elapsed < 0:
            elapsed = 0
        data = hal.serial_read()     # (link, bytes) or None
        # Fast path: a wake-up that only feeds the watchdog. Nothing is due before `due_ms`
        # (computed by the last full step, relative to `last`), so the elapsed time is left to
        # accumulate and handed to the core in one piece at the next full step: the core's
        # arithmetic is exact for any split of time, so this changes no result.
        if data is None and elapsed < self.due_ms:
            if not hal.button_pressed():
                hal.wdt_feed()
                self.supervisor.note_wakeup()
                left = self.due_ms - elapsed
                left = left if left < _WDT_FEED_MS else _WDT_FEED_MS
                self.own_ms = elapsed + left
                return left
            self.button = True          # handled by the full step below
        host_only = data is not None and elapsed < self.due_ms and not self.button
        sleep = self._full_step(now, elapsed, data)
        # The pump's own wake-ups keep their schedule whatever the host does: a wake-up that only
        # host input caused goes back to sleep until the wake-up planned before it (unless the
        # command made something due sooner), as a low-power timer keeps its alarm through an
        # interrupt. So traffic changes neither when the pump wakes nor what the cell pays.
        spent = hal.ticks_diff(hal.ticks_ms(), now)   # sleep counts from the end of the step
        planned = self.own_ms - elapsed - spent       # the planned wake, from the end of the step
        if host_only and 0 < planned < sleep:
            sleep = planned
        self.own_ms = spent + sleep              # relative to the new `last` (= now)
        return sleep

    def _full_step(self, now, elapsed, data):
        hal = self.hal
        pump = self.pump
        sup = self.supervisor
        # The cell pays for the pump's own wake-ups; one caused only by host input is powered by
        # the host link (USB VBUS on the reference board; an implant's telemetry field), so no
        # amount of traffic drains the battery model (docs/detectors.md, "Battery").
        if data is None or elapsed >= self.due_ms:
            sup.note_wakeup()
        self.last = now
        # Fed on waking: the loop is alive, and the blocking work below (a stroke with its
        # capture, up to ~2.3 s) must not add to the <= WDT_FEED_MS the board has just slept.
        hal.wdt_feed()
        if elapsed:
            self.dispatcher.advance(elapsed)
            n = pump.advance(elapsed)
            if pump.record_due():
                self._save_state()   # write-ahead: the record covers these strokes before they are made
            sup.advance(elapsed)
            self.to_snapshot_ms -= elapsed
            self.to_self_test_ms -= elapsed
            blind = n > 1    # catching up: back-to-back strokes are not captured (see stroke())
            # Every stroke the core counted (ledger, reservoir, catheter) is made, even when the
            # same advance then left a motor-on state (the prime's last stroke ends priming; a
            # stroke that empties the reservoir): a counted stroke not made would be a dose the
            # pump believes delivered and was not. Only what the strokes' own supervision finds
            # (a stall, an occlusion alarm: the motor disabled during this loop) stops the rest;
            # those stay counted, which errs towards "delivered" for the dose limits.
            enabled = pump.motor_enabled()
            while n > 0:
                if enabled and not pump.motor_enabled():
                    break
                n -= 1
                nxt = 0
                if not blind:
                    nxt = pump.ms_to_next_stroke()
                    if nxt is not None:   # relative to the core's time, which is `now`
                        nxt -= hal.ticks_diff(hal.ticks_ms(), now)
                        if nxt < 1:
                            nxt = 0
                sup.stroke(nxt)
        if not pump.motor_enabled():
            hal.motor_off()
        replies = None                 # [(link, line)]: each reply goes to the link that asked
        while data is not None:        # (allocated only when there is input: the steady step
            if replies is None:        # allocates nothing)
                replies = []
            for line in self.dispatcher.feed(data[1], data[0]):
                replies.append((data[0], line))
            data = hal.serial_read()
        if self.button or hal.button_pressed():
            self.button = False
            pump.patient_bolus()       # the patient's own button: same gate, logged as a request
        if sup.window_due():
            hal.wdt_feed()             # the 4-s window must not eat into the watchdog margin
            sup.sense()
        if self.to_self_test_ms <= 0:
            self._periodic_self_test()
        if pump.has_events() or self.dispatcher.has_pending():
            self._after_change()       # before the replies: an acknowledged command is on flash
        elif self.to_snapshot_ms <= 0 or pump.record_due():
            self._save_state()
        if replies is not None:
            for link, line in replies:
                hal.serial_write(line.encode() + b"\n", link)   # the reply to the asker only
        alarms = pump.alarms
        sounding = alarms.sounding(pump.now_s()) if alarms.n_latched else None
        if sounding != self.sounding:
            self.sounding = sounding
            hal.indicate(sounding)
        hal.wdt_feed()
        # the next time anything is due (relative to `last`, set above)
        due = self.to_snapshot_ms
        if self.to_self_test_ms < due:
            due = self.to_self_test_ms
        w = pump.next_wake_ms()
        if w is not None and w < due:
            due = w
        w = sup.next_wake_ms()
        if w < due:
            due = w
        if alarms.n_latched:
            w = pump.ms_to_alarm_change()   # a silence ending or an escalation: wake right then
            if w is not None and w < due:
                due = w
        # the clock read above plus the work done since (strokes, captures) already used time
        spent = hal.ticks_diff(hal.ticks_ms(), now)
        due -= spent
        if due < 1:
            due = 1
        self.due_ms = due + spent      # relative to `last`
        return due if due < board.WDT_FEED_MS else board.WDT_FEED_MS

    def _periodic_self_test(self):
        """Daily: the HAL's sensor/driver checks and a flash read-back of the last state record.
        A failure raises the self_test alarm (high, safe state): the pump no longer trusts its
        hardware or its memory."""
        self.to_self_test_ms = board.SELF_TEST_EVERY_MS
        failure = self.hal.self_test()
        if failure is None and self.storage.load(STATE)[0] != OK:
            failure = "state record unreadable"
        self.pump.log_event("self_test", None, {"result": failure or "ok"})
        if failure:
            self.pump.raise_alarm(A.SELF_TEST)

    # -- persistence ------------------------------------------------------------------------------
    def _after_change(self):
        # persisted first, reported after: no host hears of a change a power cut could still undo
        events = self.pump.pop_events()
        lines = self.dispatcher.event_lines(events)
        sec = self.dispatcher.pop_security_log()
        self.storage.append_log(events + sec)
        self._save_state()
        for line in lines:
            self.hal.serial_write(line.encode() + b"\n", None)   # events: every link

    def _save_state(self):
        self.to_snapshot_ms = board.SNAPSHOT_EVERY_MS
        if self.identity is None:
            return    # unprovisioned: no device key to sign records with; it stays in safe state
        snap = self.pump.snapshot()
        self.storage.save(STATE, {"pump": snap, "supervisor": self.supervisor.state()})
        self.pump.record_written(snap)
        if self.pump.library_changed:
            # after the state record: a cut between the two leaves the new (never looser) guard
            # limits with the old library, and the host never saw the command's reply
            self.storage.save(LIBRARY, self.pump.library.record())
            self.pump.library_changed = False
        if self.auth.dirty:
            self._persist_auth(self.auth.snapshot())

    def _persist_auth(self, snap):
        # the security record (the dispatcher calls this before a state-changing command runs)
        self.storage.save(SECURITY, snap)
        self.auth.dirty = False

    # -- the one fail-safe handler ------------------------------------------------------------------
    def fail_safe(self, exc):
        """Any unexpected exception in the loop: motor off at once, high alarm, safe state, log,
        and no more feeding of the watchdog (it resets the board; the persisted safe state keeps
        the pump stopped after the reset)."""
        self.halted = True
        try:
            self.hal.motor_off()
        except Exception:
            pass
        try:
            self.pump.fail_safe(type(exc).__name__)
            self.hal.indicate("high")
            self._after_change()
        except Exception:
            pass

    def run(self):
        """The device main loop (never returns; the watchdog resets a halted board)."""
        self.boot()
        while True:
            if self.halted:
                self.hal.wait(1000)
                continue
            try:
                ms = self.step()
            except Exception as exc:  # the one fail-safe handler
                self.fail_safe(exc)
                continue
            self.hal.wait(ms)
