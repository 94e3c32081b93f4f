"""The reference pump: what the docs say the pump does, in exact arithmetic on a virtual timeline.

Written from docs/therapy.md (rules, gates, continuous dose guard, time base, resets and
accounting), docs/delivery.md (engine, boluses, catheter, ledger, reservoir), docs/prescription.md
and docs/safety.md, NOT from pumpcore. States come from refmodel.states (a `transitions` model),
doses from refmodel.dose (fractions).

How it is driven (tests/verify/harness.py): time is the virtual board's clock ``t`` (ms, it runs on
while the pump is off); the model keeps the pump's two clocks (monotonic: runs only while the pump
runs and resumes from the record after a reset; wall: set by set_clock) and computes everything the
docs determine: states, the due-stroke integral of the programmed rates, bolus starts and ends,
the patient gate, periodic spacing, the reservation, presumed delivery, reset counting and loops.
What the docs leave to the hardware it takes as observations, and judges:
- the instant of each stroke the shell makes (the motor is in the shell's hands; a stroke the
  docs' guard would refuse, or a stroke outside running/priming, is a violation),
- the instant an alarm the model cannot predict is raised (plant faults through the detectors:
  raised only with a cause, and then applied as the docs say),
- when a state record is written (the model snapshots itself then, as the pump's record).

Violations are collected in ``self.violations`` (strings naming the rule and the doc).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from . import states as S
from .dose import Amounts, Catheter, Concs, Ledger, Reservoir, add_amounts, ng
from .rx import MS_PER_DAY, MS_PER_H, MS_PER_MIN, PRIME_RATE_NL_PER_H, Program, predict_problems

STROKE_NL = 250
SNAPSHOT_EVERY_NL = 10_000            # safety.md: a record at least every 10 uL ...
SNAPSHOT_EVERY_MS = 30 * MS_PER_MIN   # ... or 30 min
PERIODIC_MIN_SPACING_MS = 23 * MS_PER_H   # therapy.md periodic spacing
RESET_LOOP_N = 3                          # therapy.md reset loop
RESET_LOOP_WINDOW_MS = 60 * MS_PER_MIN
SUSPEND_MIN, SUSPEND_MAX = 1, 1440
QUEUE_MAX = 4                             # delivery.md: queued periodic boluses, max 4
TOL_NG = 2                                # integer firmware vs exact model (1 ng each side)
# The core counts a stroke (ledger, guard) at the instant it falls due; the shell makes it in the
# step that follows, at most this much later (a step cannot block longer than the watchdog). The
# model sees the step, so it keeps each amount at both ends of that interval: the early ledger
# counts the least the pump may count, the late one the most.
STEP_LAG_MS = 10_000
# safety.md "The mechanism's accuracy is counted": the ledger and every dose check count a
# stroke's drug at the top of the board's documented volumetric accuracy, +5 %
MARGIN = Fraction(105, 100)


def counted(amounts: Amounts) -> Amounts:
    """What the ledger and the dose checks count for amounts that left (or may leave) the tip."""
    return {d: a * MARGIN for d, a in amounts.items()}

# therapy.md "Alarms": code -> (priority, action); action: stop | continue | safe
CATALOGUE = {
    "occlusion": ("high", "stop"), "motor_stall": ("high", "stop"),
    "over_infusion": ("high", "stop"), "reservoir_empty": ("high", "stop"),
    "battery_eos": ("high", "stop"),
    "dislodgement": ("high", "continue"), "leak": ("high", "continue"),
    "self_test": ("high", "safe"), "state_lost": ("high", "safe"), "fault": ("high", "safe"),
    "reset_loop": ("high", "safe"),
    "under_infusion": ("medium", "continue"), "battery_eri": ("medium", "continue"),
    "dose_limit_hold": ("medium", "continue"), "watchdog_reset": ("medium", "continue"),
    "reservoir_low": ("low", "continue"), "unexpected_reset": ("low", "continue"),
}
EVENT_ALARMS = ("unexpected_reset", "watchdog_reset")   # condition gone at once


def rate_of(volume_nl: int, duration_ms: int) -> int:
    """delivery.md: a bolus' integer rate floor(volume * 3.6e6 / duration), computed once."""
    return volume_nl * MS_PER_H // duration_ms


@dataclass
class Bolus:
    kind: str
    volume_nl: int
    duration_ms: int
    start_mono: int
    rate: int = 0
    end_mono: int = 0

    def __post_init__(self) -> None:
        self.rate = rate_of(self.volume_nl, self.duration_ms)
        # delivery.md: ends at the first ms at which its delivered volume reaches volume_nl
        self.end_mono = self.start_mono + -(-self.volume_nl * MS_PER_H // self.rate)

    def delivered_at(self, mono: int) -> Fraction:
        return min(Fraction(self.volume_nl), Fraction(self.rate * (mono - self.start_mono), MS_PER_H))


@dataclass
class Alarm:
    code: str
    priority: str
    raised_mono: int
    acked: bool = False
    condition: bool = True


@dataclass
class Expect:
    """What the docs say a command does: ``code`` "ok" or a reason; None when the docs leave it
    open (then ``why`` says what), or a set of acceptable codes."""

    code: str | None
    why: str = ""
    alternatives: tuple[str, ...] = ()

    def allows(self, code: str) -> bool:
        return self.code is None or code == self.code or code in self.alternatives


@dataclass
class Reset:
    mono: int
    cause: str


@dataclass
class Predicted:
    """A bolus start the model expects to see in the pump's log (matched by the harness)."""

    kind: str
    t: int            # board time at which it is due
    matched: bool = False
    ambiguous: bool = False   # the docs allow the firmware to skip it


class RefPump:
    def __init__(self, stroke_nl: int = STROKE_NL) -> None:
        self.stroke_nl = stroke_nl
        self.violations: list[str] = []
        self.notes: dict[str, int] = {}          # unspecified situations met, by kind
        self.powered = False
        self.t = 0                               # board time the model has reached
        self.mono = 0
        self.wall = 0
        self.clock_suspect = False
        self.sm = S.DocStates(self._guard)
        # program
        self.program: Program | None = None
        self.pending: Program | None = None
        self.pending_mark = 0                    # attempts when the pending program was committed
        self.replaced: list[Program] = []        # pending programs replaced before they applied
        self.superseded: dict[str, Program] = {}  # programs a later commit replaced, by checksum
        self.ghost: Program | None = None        # a pending program a reset lost (its limits
                                                 # may still be in force: harness-reported)
        self.staged: tuple[Program, str, set[str], list[str]] | None = None
        self.needs_program = False
        self.reservoir_concs: Concs | None = None
        self.last_increase: dict[str, int] = {}  # drug -> mono of the last committed increase
        self.hard_ever: dict[str, int] = {}      # drug -> the tightest hard limit it ran under
        # delivery
        self.acc = Fraction(0)                   # owed volume, nL (engine remainder)
        self.attempts = 0                        # strokes due since the epoch (made or held)
        self.bolus: Bolus | None = None
        self.queue: list[tuple[int, int, int]] = []   # queued periodic (minute, volume, duration)
        self.periodic_last: dict[int, int] = {}  # start minute -> mono of its last start
        self.periodic_last_due: dict[int, int] = {}   # ... of the last time it fell due
        self.suspend_until: int | None = None
        self.bridging = False
        # catheter, reservoir, ledger, counters
        self.catheter: Catheter | None = None
        self.reservoir: Reservoir | None = None
        self.ledger = Ledger()                   # amounts at the step that made them (late)
        self.ledger_early = Ledger()             # ... and STEP_LAG_MS earlier
        self.strokes = 0
        self.delivered_nl = 0
        self.delivered_drug: Amounts = {}
        self.presumed_strokes = 0
        self.motor_stop_mono: int | None = None  # when the motor last stopped by itself
        self.prime_done_mono: int | None = None  # when the last prime ended
        self.boot_mono = 0                       # monotonic time the last boot resumed from
        # patient
        self.patient_starts: list[int] = []
        self.lockout_ref: int | None = None
        self.patient_requested = 0
        self.patient_delivered = 0
        self.patient_denied: dict[str, int] = {}
        # alarms, resets
        self.alarms: dict[str, Alarm] = {}
        self.resets: list[Reset] = []
        self.interrupted: list[str] = []
        self.pending_at_boot = False             # a restored record held a pending program
        self.optional_alarms: set[str] = set()   # the firmware may or may not have these latched
        # expectations for the harness
        self.predicted: list[Predicted] = []
        self.skipped: list[tuple[int, str]] = []          # (t, why) of bolus starts the docs skip
        self.attempt_marks: list[tuple[int, int]] = []   # (t, attempts) at each breakpoint
        self.record: bytes | None = None                 # the last state record (a snapshot)
        self.reserve_at_record = 0
        self.strokes_since_record = 0
        self.record_t = -1                               # step time of the last record
        # documented rules the model applies; a harness may switch one off while the firmware is
        # known not to implement it yet, to go on judging everything else on the same footing
        self.rules = {"presume": True, "reset_alarms": True}
        self.follow: str | None = None   # the docs leave the next observed state open: why
        self.follow_from = ""            # ... and the state the record held

    # ============================================================ helpers
    def note(self, what: str) -> None:
        self.notes[what] = self.notes.get(what, 0) + 1

    def violate(self, what: str) -> None:
        self.violations.append(f"t={self.t} mono={self.mono}: {what}")

    @property
    def state(self) -> str:
        return self.sm.state

    def set_state(self, state: str) -> None:
        self.sm.state = state

    def _guard(self, name: str) -> bool:
        if name == S.PROGRAM_VERIFIED:
            return True     # the harness asks only about programs it has just staged
        if name == S.CAN_RUN:
            return self._can_run() is None
        if name == S.CAN_PRIME:
            return self.program is not None and not self.needs_program
        if name == S.RECORD_RUNNING:
            return True
        if name == S.NO_STOP_ALARM:
            return not self._stop_alarm_latched()
        raise KeyError(name)

    def _can_run(self) -> str | None:
        """The documented reasons a start/resume is refused (therapy.md), None when it can run."""
        if self.program is None or self.needs_program:
            return "program_required"
        if self.catheter is None or not self.catheter.is_primed():
            return "not_primed"
        if self._stop_alarm_latched():
            return "alarm"
        if self.reservoir is not None and self.reservoir.is_empty():
            return "reservoir_empty"
        return None

    def _stop_alarm_latched(self) -> bool:
        return any(CATALOGUE[a.code][1] == "stop" for a in self.alarms.values())

    def hard_limits(self, which: str = "loose") -> dict[str, int]:
        """Per drug, the hard limit in force. While a committed program waits for the next stroke
        boundary the docs do not say whether its limits or the running program's apply: "loose"
        gives the higher of both (a stroke or bolus is judged over the limit only when it is over
        both), "tight" the lower."""
        progs = [self.program, self.pending, self.ghost]
        if which == "stale":
            progs += self.replaced
            which = "tight"
        sets = [p.hard for p in progs if p is not None]
        out: dict[str, int] = {}
        for hard in sets:
            for d, h in hard.items():
                if h is None:
                    continue
                if d not in out:
                    out[d] = h
                else:
                    out[d] = max(out[d], h) if which == "loose" else min(out[d], h)
        return out

    def concs_in(self) -> Concs:
        """The reservoir's admixture as the pump knows it (the committed program's)."""
        return dict(self.reservoir_concs or {})

    def max_concs(self) -> Concs:
        """Per drug, the highest concentration in the catheter or the reservoir."""
        out = dict(self.catheter.max_conc()) if self.catheter else {}
        for d, c in self.concs_in().items():
            out[d] = max(out.get(d, 0), c)
        return out

    # ============================================================ rates and time
    def rate(self) -> int:
        """Total programmed rate now (nL/h): what the delivery engine integrates."""
        st = self.state
        if st == S.PRIMING:
            return self.bolus.rate if self.bolus is not None else 0
        if st != S.RUNNING or self.program is None:
            return 0
        base = self.program.rate_at(self.wall)
        if self.bolus is not None:
            if self.bolus.kind == "bridge":
                return self.bolus.rate
            return base + self.bolus.rate
        return base

    def _next_event(self) -> int | None:
        """mono of the next thing the docs make happen (rate change, bolus end, periodic start,
        suspend expiry, the stroke boundary a pending program waits for)."""
        cands: list[int] = []
        st = self.state
        if st in S.MOTOR_STATES and self.bolus is not None:
            cands.append(self.bolus.end_mono)
        if st == S.RUNNING and self.program is not None:
            cands.append(self.mono + self.program.next_rate_change(self.wall) - self.wall)
            nxt = self._next_periodic_wall()
            if nxt is not None:
                cands.append(self.mono + nxt - self.wall)
        if st == S.SUSPENDED and self.suspend_until is not None:
            cands.append(self.suspend_until)
        return min(cands) if cands else None

    def _next_periodic_wall(self) -> int | None:
        """The next wall ms (> wall) at a periodic start minute."""
        p = self.program
        if p is None or not p.periodic:
            return None
        day, ms = divmod(self.wall, MS_PER_DAY)
        best = None
        for minute in p.periodic_times():
            w = day * MS_PER_DAY + minute * MS_PER_MIN
            if w <= self.wall:
                w += MS_PER_DAY
            if best is None or w < best:
                best = w
        return best

    def advance_to(self, t: int) -> None:
        """Move the model to board time t, making every documented event on the way."""
        if t < self.t:
            return
        if not self.powered:
            self.t = t
            return
        while True:
            nxt = self._next_event()
            if nxt is None or nxt - self.mono > t - self.t:
                break
            self._integrate(nxt - self.mono)
            self._fire_due()
        self._integrate(t - self.t)

    def _integrate(self, dt: int) -> None:
        if dt <= 0:
            return
        r = self.rate()
        if r:
            self.acc += Fraction(r * dt, MS_PER_H)
            n = int(self.acc // self.stroke_nl)
            if n:
                self.acc -= n * self.stroke_nl
                self.attempts += n
        self.t += dt
        self.mono += dt
        self.wall += dt
        self.attempt_marks.append((self.t, self.attempts))
        if len(self.attempt_marks) > 4000:
            del self.attempt_marks[:2000]

    def attempts_at(self, t: int) -> int:
        """Attempts due by board time t (from the marks; the last mark at or before t)."""
        best = None
        for tm, a in reversed(self.attempt_marks):
            if tm <= t:
                best = a
                break
        return best if best is not None else (self.attempt_marks[0][1] if self.attempt_marks else 0)

    def _fire_due(self) -> None:
        """Everything due at the current instant (mono)."""
        st = self.state
        b = self.bolus
        if b is not None and st in S.MOTOR_STATES and self.mono >= b.end_mono:
            self.bolus = None
            if b.kind == "prime":
                self.motor_stop_mono = self.mono
                self.prime_done_mono = self.mono
                self.sm.fire("prime_done")
                self.note("prime_done")
            elif b.kind == "bridge":
                self.bridging = False
            if self.state == S.RUNNING and self.queue:
                minute, vol, dur = self.queue.pop(0)
                self._start_periodic(minute, vol, dur, from_queue=True)
        if st == S.RUNNING and self.program is not None:
            # periodic starts: the wall clock crossed a start minute (not by a jump)
            minute_now = (self.wall % MS_PER_DAY)
            if minute_now % MS_PER_MIN == 0:
                m = minute_now // MS_PER_MIN
                times = self.program.periodic_times()
                if m in times:
                    vol, dur = times[m]
                    self._periodic_due(m, vol, dur)
        if st == S.SUSPENDED and self.suspend_until is not None and self.mono >= self.suspend_until:
            self.suspend_until = None
            v = self.sm.fire("suspend_expired")
            self.note(f"suspend_expired->{v.state}")

    # ============================================================ boluses
    def refused_by_stale_limits(self, volume_nl: int) -> bool:
        """Would the bolus be over a limit of a pending program that another commit replaced?"""
        mc = self.max_concs()
        for d, hard in self.hard_limits("stale").items():
            if self.ledger.total(d, self.mono) + ng(volume_nl, mc.get(d, 0)) * MARGIN > hard:
                return True
        return False

    def _dose_check(self, volume_nl: int) -> tuple[bool, bool]:
        """therapy.md gate 6 / periodic check: would the bolus take any program drug over its hard
        limit, at the highest concentration it could push out? Returns (refuse, near_edge)."""
        refuse = False
        edge = False
        mc = self.max_concs()
        loose = self.hard_limits("loose")
        for d, hard in self.hard_limits("tight").items():
            amount = ng(volume_nl, mc.get(d, 0)) * MARGIN
            total = self.ledger.total(d, self.mono) + amount
            least = self.ledger_early.total(d, self.mono) + amount
            if total > hard:
                refuse = True
                if least <= loose[d] + TOL_NG:
                    edge = True      # refused by one reading the docs leave open, not the other
            if abs(total - hard) <= TOL_NG:
                edge = True
        return refuse, edge

    def _periodic_due(self, minute: int, volume: int, duration: int) -> None:
        last = self.periodic_last.get(minute)
        # "since that same start time last started": a time that fell due and was skipped (dose
        # limit, full queue) did not start; counting it too is stricter. Either is accepted.
        last_due = self.periodic_last_due.get(minute)
        self.periodic_last_due[minute] = self.mono
        ambiguous = last_due is not None and self.mono - last_due < PERIODIC_MIN_SPACING_MS
        if last is not None and self.mono - last < PERIODIC_MIN_SPACING_MS:
            self.note("periodic_too_soon")
            self.skipped.append((self.t, f"periodic {minute // 60:02d}:{minute % 60:02d} too soon: "
                                 f"{(self.mono - last) / MS_PER_H:.2f} h of monotonic time after "
                                 "its last start (therapy.md: >= 23 h)"))
            return
        if self.bolus is not None:
            if len(self.queue) < QUEUE_MAX:
                self.queue.append((minute, volume, duration))
                self.note("periodic_queued")
            else:
                self.note("periodic_skipped_queue_full")
            return
        self._start_periodic(minute, volume, duration, from_queue=False, ambiguous=ambiguous)

    def _start_periodic(self, minute: int, volume: int, duration: int, from_queue: bool,
                        ambiguous: bool = False) -> None:
        refuse, edge = self._dose_check(volume)
        if edge:
            self.note("periodic_dose_edge")
        if refuse:
            self.note("periodic_dose_limit")
            self.skipped.append((self.t, f"periodic {minute} over the hard limit (dose_limit)"
                                 + (" (at its edge)" if edge else "")))
            return
        self.periodic_last[minute] = self.mono
        self.bolus = Bolus("periodic", volume, duration, self.mono)
        self.predicted.append(Predicted("periodic", self.t, ambiguous=ambiguous or edge))

    def drop_ambiguous_periodic(self, t: int, force: bool = False) -> bool:
        """The firmware skipped a periodic start the model made where the docs allow either
        (force: the harness has reported why)."""
        for p in self.predicted:
            if p.kind == "periodic" and (p.ambiguous or force) and not p.matched \
                    and p.t <= t <= p.t + STEP_LAG_MS:
                p.matched = True
                if self.bolus is not None and self.bolus.kind == "periodic":
                    self.bolus = None
                return True
        return False

    def adopt_bolus(self, kind: str, volume_nl: int, duration_ms: int) -> None:
        """Take a bolus start the docs do not predict (the harness has reported it)."""
        self.bolus = Bolus(kind, volume_nl, duration_ms, self.mono)
        if kind == "periodic":
            self.periodic_last[(self.wall % MS_PER_DAY) // MS_PER_MIN] = self.mono

    def _cancel_bolus(self, drop_queue: bool) -> None:
        if self.bolus is not None and self.bolus.kind == "bridge":
            self.bridging = False
        self.bolus = None
        if drop_queue:
            self.queue.clear()

    # ============================================================ strokes (observed)
    def stroke(self, t: int, ok: bool, covered: bool = False) -> Amounts:
        """The shell made a stroke in a step that started at board time t; covered: a record
        written in that step counts it (the shell writes it before the strokes it covers).
        Returns what the pump believes left the tip."""
        self.advance_to(t)
        # the prime's last stroke ends priming when it is counted; the shell makes it in the same
        # step, with the pump already stopped (therapy.md: every counted stroke is made)
        last_of_prime = self.prime_done_mono is not None and self.state == S.STOPPED \
            and self.mono - self.prime_done_mono <= STEP_LAG_MS
        if self.state not in S.MOTOR_STATES and not last_of_prime:
            self.violate(f"stroke made in state {self.state} (therapy.md: the motor may run only "
                         "in running and priming)")
        concs = self.concs_in()
        out: Amounts = {}
        if self.catheter is not None:
            out = self.catheter.would_emit(self.stroke_nl, concs)
        for d, hard in self.hard_limits().items():
            total = self.ledger_early.total(d, self.mono) + out.get(d, Fraction(0)) * MARGIN
            if total > hard + TOL_NG and not out.get(d):
                # read literally, the guard refuses even a stroke that pushes nothing of d out
                # of the tip (the catheter still filling) once the window is over the limit;
                # read by its purpose it need not: either is accepted (a question for the docs)
                self.note("filling stroke admitted with the window over the limit")
                continue
            if total > hard + TOL_NG:
                self.violate(f"stroke admitted over the hard limit of {d}: 24-h {float(total):.1f} "
                             f"> {hard} ng (therapy.md Continuous dose guard)")
        nominal: Amounts = {}
        if self.catheter is not None:
            nominal = self.catheter.push(self.stroke_nl, concs)[1]
        self._ledger_add(out)
        add_amounts(self.delivered_drug, nominal)
        self.strokes += 1
        self.delivered_nl += self.stroke_nl
        if not covered:
            self.strokes_since_record += 1
        if self.strokes_since_record > self.reserve_at_record and self.record is not None:
            self.violate(f"stroke {self.strokes_since_record} since the last record, beyond its "
                         f"reservation of {self.reserve_at_record} (therapy.md write-ahead "
                         "reservation)")
        if self.reservoir is not None:
            self.reservoir.draw(self.stroke_nl)
            self._reservoir_alarms()
        if "dose_limit_hold" in self.alarms:
            self.alarms["dose_limit_hold"].condition = False   # gone at the first admitted stroke
        if self.pending is not None and self.state == S.RUNNING:
            # "takes effect at the next stroke boundary": after this stroke (a stroke the guard
            # holds is not made; the firmware waits for a made one, which the docs allow)
            self._apply_program(self.pending)
            self.pending = None
        return out

    def adopt_counted(self, n: int, at: int | None = None) -> None:
        """The pump counted n strokes it did not make (the harness reports that): take them into
        the belief as the pump did, so later decisions are compared on the same footing."""
        concs = self.concs_in()
        if at is None:
            at = self.motor_stop_mono if self.motor_stop_mono is not None else self.mono
        for _ in range(n):
            out: Amounts = {}
            nominal: Amounts = {}
            if self.catheter is not None:
                out = self.catheter.counted(self.stroke_nl, concs)
                nominal = self.catheter.push(self.stroke_nl, concs)[1]
            self._ledger_add(out, at)       # counted when the motor stopped, not now
            add_amounts(self.delivered_drug, nominal)
            self.strokes += 1
            self.delivered_nl += self.stroke_nl
            if self.reservoir is not None:
                self.reservoir.draw(self.stroke_nl)

    def _ledger_add(self, out: Amounts, at: int | None = None) -> None:
        at = self.mono if at is None else at
        out = counted(out)
        self.ledger.add(at, out)
        self.ledger_early.add(max(self.ledger_early.first * 300_000, at - STEP_LAG_MS), out)

    def _reservoir_alarms(self) -> None:
        r = self.reservoir
        assert r is not None
        if r.is_empty():
            if "reservoir_empty" not in self.alarms or not self.alarms["reservoir_empty"].condition:
                self.raise_alarm("reservoir_empty", predicted=True)
        elif r.is_low():
            if "reservoir_low" not in self.alarms or not self.alarms["reservoir_low"].condition:
                self.raise_alarm("reservoir_low", predicted=True)

    # ============================================================ alarms
    def raise_alarm(self, code: str, predicted: bool = False) -> None:
        """Raise an alarm (predicted by the docs, or observed with a cause) with its documented
        effects: a medium/high alarm cancels the active bolus; stop alarms stop at once; fatal
        ones go to the safe state."""
        prio, action = CATALOGUE[code]
        self.optional_alarms.discard(code)
        a = self.alarms.get(code)
        if a is None:
            self.alarms[code] = Alarm(code, prio, self.mono, condition=code not in EVENT_ALARMS)
        elif code in EVENT_ALARMS:
            a.acked = False          # a new event: acknowledged again
        else:
            a.condition = True       # still latched: its condition is present (again)
        if prio in ("medium", "high") and self.bolus is not None:
            kind = self.bolus.kind
            self._cancel_bolus(drop_queue=action != "continue")
            if kind == "prime" and self.state == S.PRIMING and action == "continue":
                self.sm.fire("stop")      # the priming bolus is cancelled: priming is over
        if action == "stop":
            self.motor_stop_mono = self.mono
            if self.state in (S.RUNNING, S.PRIMING, S.SUSPENDED, S.STOPPED):
                self._cancel_bolus(drop_queue=True)
                self.suspend_until = None
                self.sm.fire("stop_alarm")
        elif action == "safe":
            self._cancel_bolus(drop_queue=True)
            self.suspend_until = None
            if self.state != S.SAFE_STATE:
                self.sm.fire("fatal")

    def clear_condition(self, code: str) -> None:
        a = self.alarms.get(code)
        if a is not None:
            a.condition = False
            if a.acked:
                del self.alarms[code]

    def latched(self) -> set[str]:
        return set(self.alarms)

    def _alarm_gate(self) -> bool:
        """Patient gate 2: an unacknowledged medium/high alarm, or a high one still present."""
        return any((a.priority in ("medium", "high") and not a.acked)
                   or (a.priority == "high" and a.condition) for a in self.alarms.values())

    # ============================================================ commands
    def expect(self, t: int, name: str, args: dict[str, Any]) -> Expect:
        """The documented outcome of command `name` at board time t (the model is advanced to t;
        nothing else changes)."""
        self.advance_to(t)
        verdict = self._peek_state(name)
        if verdict.accepted is None:
            return Expect(None, f"{self.state}/{name}: {verdict.why}")
        if name == "patient_bolus":
            code, edge = self._patient_gate()
            if edge:
                return Expect(code, "dose check at its edge", alternatives=("ok", "dose_limit"))
            return Expect(code)
        if name == "clinician_bolus":
            return self._clinician_gate(args["volume_nl"], args["duration_ms"])
        if name == "silence":
            return Expect("ok" if self.alarms else "unknown_alarm")
        if name == "stage":
            return Expect(None, "the review decides; compared by the harness")
        if name == "commit":
            return self._commit_expect(args)
        if not verdict.accepted and self.program is None and name in ("start", "resume", "prime"):
            return Expect(None, f"{name} without any program: reason not documented")
        if not verdict.accepted:
            if name in ("start", "resume") and self.state in (S.STOPPED, S.SUSPENDED):
                why = self._can_run()
                if why in ("program_required", "not_primed"):
                    return Expect(why)
                return Expect(None, f"{name} refused for {why}: reason not documented",
                              alternatives=())
            if name == "prime" and self.state == S.STOPPED:
                return Expect("program_required")
            return Expect(None, f"{self.state}/{name} refused: reason not documented")
        if name in ("start", "resume", "prime") and any(
                a.priority == "high" for a in self.alarms.values()):
            return Expect(None, f"{name} with a high alarm latched: not documented",
                          alternatives=("ok",))
        if name == "suspend" and not SUSPEND_MIN <= args["minutes"] <= SUSPEND_MAX:
            return Expect(None, "suspend minutes out of range: reason not documented")
        if name == "prime":
            cat = self.program.catheter_nl if self.program else 0
            if args["volume_nl"] > 2 * cat + 100_000:
                return Expect(None, "prime volume over the limit: reason not documented")
        if name == "refill" and self.program is None:
            return Expect(None, "refill before any program")
        if name == "ack" and self.state == S.ALARM_STOP and not self._stop_alarm_latched() \
                and args.get("alarm") is None:
            # therapy.md: alarm_stop is left for stopped once no flow-stopping alarm is latched;
            # the documented way out is the ack (state table), so it must work even when the
            # alarms were acknowledged before their conditions went
            return Expect("ok", "leave alarm_stop")
        if name == "ack" and (not self.alarms or args.get("alarm") not in (None, *self.alarms)):
            return Expect(None, "ack with no such alarm latched: reason not documented")
        return Expect("ok")

    def _peek_state(self, name: str) -> S.Verdict:
        probe = self.__dict__.get("_probe")
        if probe is None:
            probe = self._probe = S.DocStates(self._guard, initial=self.state)
        probe.state = self.state
        return probe.fire(name)

    def _patient_gate(self) -> tuple[str, bool]:
        """therapy.md patient gate, in its order. Returns (code, near_an_edge)."""
        if self.state != S.RUNNING:
            return "not_running", False
        p = self.program
        if p is None or not p.patient:
            return "not_configured", False
        if self._alarm_gate():
            return "alarm", False
        if self.bolus is not None:
            return "bolus_active", False
        pat = p.patient
        if self.lockout_ref is not None and self.mono - self.lockout_ref < pat["lockout_ms"]:
            return "lockout", False
        recent = [s for s in self.patient_starts if self.mono - s < MS_PER_DAY]
        if len(recent) >= pat["max_per_24h"]:
            return "max_per_24h", False
        refuse, edge = self._dose_check(pat["volume_nl"])
        return ("dose_limit" if refuse else "ok"), edge

    def _clinician_gate(self, volume: int, duration: int) -> Expect:
        if self.state != S.RUNNING:
            return Expect(None, "clinician bolus outside running: reason not documented")
        if self._alarm_gate():
            return Expect("alarm")
        if self.bolus is not None:
            return Expect("bolus_active")
        p = self.program
        assert p is not None
        from .rx import LIBRARY
        mc = self.max_concs()
        over_program = over_any = False
        for d, c in p.drugs.items():
            e = LIBRARY.get(d)
            if e is None or e.max_bolus is None:
                continue
            over_program |= volume * c // 1000 > e.max_bolus
            # "on the same principles" as the dose check: possibly at the highest concentration
            # the bolus could push out (catheter or reservoir); the docs do not say which
            over_any |= volume * max(c, mc.get(d, 0)) // 1000 > e.max_bolus
        if over_program:
            return Expect("bolus_amount")
        if over_any:
            return Expect("bolus_amount", "max bolus at the catheter's concentration",
                          alternatives=("ok", "dose_limit", "alarm"))
        refuse, edge = self._dose_check(volume)
        code = "dose_limit" if refuse else "ok"
        if edge:
            return Expect(code, "dose check at its edge", alternatives=("ok", "dose_limit"))
        return Expect(code)

    def _commit_expect(self, args: dict[str, Any]) -> Expect:
        if self.staged is None:
            return Expect("nothing_staged")
        prog, checksum, problems, soft = self.staged
        if args["checksum"] != checksum:
            return Expect("checksum_mismatch")
        if problems:
            return Expect(None, "committing a program with problems")
        from .rx import soft_raised, start_breaches
        if (soft or soft_raised(prog)) and not args.get("confirm_soft"):
            return Expect("soft_limit_unconfirmed")
        if self.program is None and start_breaches(prog) and not args.get("continuing"):
            return Expect("start_dose_unconfirmed")
        return Expect("ok")

    def stage_prediction(self, rx: dict[str, Any]) -> tuple[set[str], dict[str, int], list[str]]:
        prog = Program.of(rx)
        ages = {d: self.mono - m for d, m in self.last_increase.items()}
        return predict_problems(prog, self.program, ages)   # type: ignore[arg-type]

    def apply(self, t: int, name: str, args: dict[str, Any], code: str,
              data: dict[str, Any]) -> None:
        """The firmware answered `code` to command `name` at board time t: apply what the docs say
        the accepted command does (a refused one changes nothing but counters)."""
        self.advance_to(t)
        if name == "patient_bolus":
            self.patient_requested += 1
            if code != "ok":
                self.patient_denied[code] = self.patient_denied.get(code, 0) + 1
                return
        if code != "ok":
            return
        fn = getattr(self, "_do_" + name)
        fn(args, data)

    def _move(self, event: str) -> None:
        v = self.sm.fire(event)
        if v.accepted is None:
            self.note(f"unspecified:{v.why}")

    def _do_set_clock(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        self.wall = args["day"] * MS_PER_DAY + args["ms_of_day"]
        self.clock_suspect = False
        self._move("set_clock")

    def _do_stage(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        problems, _, soft = self.stage_prediction(args["rx"])
        prog = Program.of(args["rx"])
        prog.checksum = data["checksum"]
        self.staged = (prog, data["checksum"], problems, soft)
        self._move("stage")

    def _do_commit(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        assert self.staged is not None
        prog = self.staged[0]
        self.staged = None
        old = self.program
        for d in self._increased(prog, old):
            self.last_increase[d] = self.mono
        self.lockout_ref = self.mono          # therapy.md: every commit restarts the lockout
        was = self.state
        self._move("commit")
        if self.pending is not None:
            # a later commit supersedes a program still waiting for its stroke boundary: what
            # is committed is exactly what was reviewed last
            self.replaced.append(self.pending)
            self.superseded[self.pending.checksum] = self.pending
            self.pending = None
        if was == S.RUNNING:
            self.pending = prog               # takes effect at the next stroke boundary
            self.pending_mark = self.attempts
        else:
            self._apply_program(prog)
        self.needs_program = False
        self.reservoir_concs = dict(prog.drugs)

    def adopt_program(self, checksum: str) -> None:
        """The pump put a superseded program back in force (the harness has reported it): take
        it, with the concentrations it claims for the reservoir."""
        prog = self.superseded.get(checksum)
        if prog is not None:
            self.pending = None
            self._apply_program(prog)
            self.reservoir_concs = dict(prog.drugs)

    def apply_pending(self) -> None:
        if self.pending is not None:
            self._apply_program(self.pending)
            self.pending = None

    def _increased(self, new: Program, old: Program | None) -> list[str]:
        # a drug that starts (first program, new in the program) rises from 0: its start is an
        # increase for the titration interval (Prialt: increases at most 2-3 times a week, the
        # first one counted from the start) -- prescription.md leaves it open
        from .rx import projected_daily_ng
        a = projected_daily_ng(old) if old is not None else {}
        b = projected_daily_ng(new)
        return [d for d in b if b[d] > a.get(d, 0)]

    def _apply_program(self, prog: Program) -> None:
        old = self.program
        self.program = prog
        self.ghost = None
        self.replaced = []
        for d, h in prog.hard.items():
            if h is not None:
                self.hard_ever[d] = min(self.hard_ever.get(d, h), h)
        if old is None or old.catheter_nl != prog.catheter_nl or self.catheter is None:
            # therapy.md: a new catheter (first program or another volume) starts empty
            self.catheter = Catheter(prog.catheter_nl)
        res = prog.rx["reservoir"]
        if self.reservoir is None:
            self.reservoir = Reservoir(res["capacity_nl"], res["low_alert_nl"], res["empty_nl"],
                                       res["fill_nl"])
        else:
            self.reservoir.capacity_nl = res["capacity_nl"]
            self.reservoir.low_alert_nl = res["low_alert_nl"]
            self.reservoir.empty_nl = res["empty_nl"]

    def _do_start(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        self._move("start")

    def _do_stop(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        # a program committed while running stays pending: "at the next stroke boundary"
        # (after a restart); the docs do not say otherwise for a stop in between
        self._cancel_bolus(drop_queue=True)
        self.suspend_until = None
        self._move("stop")

    def _do_suspend(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        self._cancel_bolus(drop_queue=True)
        self._move("suspend")
        self.suspend_until = self.mono + args["minutes"] * MS_PER_MIN

    def _do_resume(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        self.suspend_until = None
        self._move("resume")

    def _do_prime(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        self._move("prime")
        vol = args["volume_nl"]
        self.bolus = Bolus("prime", vol, -(-vol * MS_PER_H // PRIME_RATE_NL_PER_H), self.mono)
        self.predicted.append(Predicted("prime", self.t))

    def _do_refill(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        if self.reservoir is not None:
            self.reservoir.remaining_nl = args["fill_nl"]
            for code in ("reservoir_low", "reservoir_empty"):
                if code in self.alarms and not (
                        self.reservoir.is_low() if code == "reservoir_low" else self.reservoir.is_empty()):
                    self.clear_condition(code)
        if args.get("new_admixture"):
            self.needs_program = True
            self.reservoir_concs = None
        self.lockout_ref = self.mono          # therapy.md: every refill restarts the lockout
        self._move("refill")

    def _do_clinician_bolus(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        self.bolus = Bolus("clinician", args["volume_nl"], args["duration_ms"], self.mono)
        self.predicted.append(Predicted("clinician", self.t))

    def _do_patient_bolus(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        p = self.program
        assert p is not None and p.patient
        self.bolus = Bolus("patient", p.patient["volume_nl"], p.patient["duration_ms"], self.mono)
        self.patient_starts.append(self.mono)
        self.lockout_ref = self.mono
        self.patient_delivered += 1
        self.predicted.append(Predicted("patient", self.t))

    def _do_ack(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        code = args.get("alarm")
        for a in list(self.alarms.values()):
            if code is None or a.code == code:
                a.acked = True
                if not a.condition:
                    del self.alarms[a.code]
        self._move("ack")

    def _do_silence(self, args: dict[str, Any], data: dict[str, Any]) -> None:
        self._move("silence")

    # ============================================================ records, power, resets
    def reservation(self) -> int:
        """therapy.md write-ahead reservation: min(10 uL / stroke, strokes the highest possible
        rate makes in 30 min + 1) while the motor may run, 0 otherwise."""
        if self.state not in S.MOTOR_STATES:
            return 0
        if self.state == S.PRIMING:
            top = self.bolus.rate if self.bolus is not None else PRIME_RATE_NL_PER_H
        else:
            # "the program's highest basal step": the program in effect (a pending one that
            # takes over later gets its own reservation with the record written before its
            # strokes exceed this one)
            top = self.program.max_basal_rate() if self.program is not None else 0
            if self.bolus is not None:
                top += self.bolus.rate
        in_window = top * SNAPSHOT_EVERY_MS // (MS_PER_H * self.stroke_nl) + 1
        return min(SNAPSHOT_EVERY_NL // self.stroke_nl, in_window)

    def on_record(self, t: int) -> None:
        """The pump completed a state record in a step that started at board time t."""
        self.advance_to(t)
        self.reserve_at_record = self.reservation()
        self.strokes_since_record = 0
        self.record_t = t
        self.record = self._snapshot()

    def _snapshot(self) -> bytes:
        keep = ("violations", "notes", "predicted", "skipped", "attempt_marks", "record", "sm",
                "_probe")
        snap = {k: v for k, v in self.__dict__.items() if k not in keep}
        snap["state"] = self.state
        return pickle.dumps(snap, pickle.HIGHEST_PROTOCOL)

    def power_off(self, t: int) -> None:
        self.advance_to(t)
        self.powered = False

    def boot(self, t: int, cause: str) -> None:
        """The board boots at board time t after `cause` (power_on | watchdog) from the last
        record (therapy.md "Resets and accounting", safety.md boot policy)."""
        self.advance_to(t)
        self.t = t
        self.powered = True
        self.attempts = 0
        self.attempt_marks = [(t, 0)]
        if self.record is None:
            self.set_state(S.BOOTING)
            self.sm.fire("self_test_passed")
            return
        snap = pickle.loads(self.record)
        state = snap.pop("state")
        for k, v in snap.items():
            setattr(self, k, v)
        self.t = t
        self.powered = True
        self.attempts = 0
        self.attempt_marks = [(t, 0)]
        self.clock_suspect = True
        self.boot_mono = self.mono
        self.set_state(S.BOOTING)
        # fail towards less drug: the reservation is counted as delivered
        r = self.reserve_at_record if self.rules["presume"] else 0
        if r:
            vol = r * self.stroke_nl
            mc = self.max_concs()
            amounts = counted({d: ng(vol, c) for d, c in mc.items() if c})
            self.ledger.add(self.mono, amounts)
            self.ledger_early.add(self.mono, amounts)
            if self.reservoir is not None:
                self.reservoir.remaining_nl = max(0, self.reservoir.remaining_nl - vol)
            self.strokes += r
            self.delivered_nl += vol
            self.presumed_strokes += r
            if self.catheter is not None:
                self.catheter.widen_towards_tip(vol, self.concs_in())
        # the reset: counted, persisted, alarmed
        self.resets.append(Reset(self.mono, cause))
        if self.bolus is not None:
            self.interrupted.append(self.bolus.kind)
            self.bolus = None
        self.queue.clear()
        # what becomes of a pending program across a reset the docs do not say: held aside
        # (its limits count as possible) until the harness sees what the firmware did
        # (resets in a row before the harness has seen the firmware: the program stays held)
        if self.pending is not None:
            self.ghost, self.pending = self.pending, None
            self.pending_at_boot = True
        recent = [x for x in self.resets if self.mono - x.mono < RESET_LOOP_WINDOW_MS]
        if state == S.SAFE_STATE:
            self.set_state(S.SAFE_STATE)
        elif self._stop_alarm_latched():
            self.set_state(S.ALARM_STOP)     # safety.md: latched stop alarms keep it stopped
        elif state == S.RUNNING:
            self.sm.fire("restore_running")
        elif state == S.SUSPENDED:
            self.set_state(S.SUSPENDED)
            self.follow = "boot from a suspended record"   # docs silent: take the firmware's
            self.follow_from = state
        else:
            self.sm.fire("self_test_passed")
        if self.rules["reset_alarms"]:
            code = "watchdog_reset" if cause == "watchdog" else "unexpected_reset"
            if len(recent) >= RESET_LOOP_N:
                # the docs do not say whether the reset that makes a loop also raises its own
                # alarm besides reset_loop: either is accepted
                self.raise_alarm("reset_loop", predicted=True)
                if code not in self.alarms:
                    self.optional_alarms.add(code)
            else:
                self.raise_alarm(code, predicted=True)
        if self.reservoir is not None and self.state in S.MOTOR_STATES:
            self._reservoir_alarms()
        if self.state != S.SAFE_STATE and any(
                CATALOGUE[a.code][1] == "safe" for a in self.alarms.values()):
            # safety.md keeps latched flow-stopping alarms across a reset; of a latched
            # safe-state alarm (a commit had left the safe state) it says nothing
            self.follow = "boot with a safe-state alarm latched"
            self.follow_from = state
        self.reserve_at_record = 0   # the boot's own record replaces it
        self.strokes_since_record = 0
