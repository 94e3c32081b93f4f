"""Drives the real firmware (in-process virtual board, virtual time) and the reference model with
the same actions, observes what the firmware does, and checks the invariants of issue 10.

The firmware runs unchanged on ``pumphil.inproc.InProcessRig`` (real App, real littlefs image,
plant, watchdog); commands go through ``PumpClient``'s public methods over the rig's synchronous
port. A HAL wrapper (``VirtualBoard.wrap_hal``) lets the harness see, as the firmware acts:
- every step's start (the core's time for everything in that step),
- every stroke (the model checks it against the documented guard; the truth records it),
- every line the firmware writes (events are parsed from them),
- every state record (opened, renamed): the model snapshots itself as the pump's record, and a
  planned power cut can strike right before a record is written or renamed.

Checks (groups; each violation names its group):
  limit      (a) per drug, the rolling-24-h amount that left the catheter tip (plant truth, exact
                 fractions, real time) <= the hard limit; and no stroke the documented guard refuses
  patient    (b) lockout and max-per-24h never broken (patient-bolus starts vs monotonic time)
  counters   (c) strokes, delivered volume and per-drug amounts never go backwards
  resets     (d) every reset is logged (`reset` entry) and alarmed
  alarms     (e) no alarm without a cause
  agree      (f) firmware and model agree on state, commands' outcomes and amounts (within one
                 stroke; the documented slack where the docs leave some)
  records       the write-ahead reservation: no stroke beyond the last record's reservation
  lag           (a) at the window's edge: the truth over the limit only by strokes made in the
                window's first LAG_MS (counted when due, made later)
  admixture     no delivery while the reservoir's content is unknown (new admixture, no program)
  battery       no battery alarm without a cell near its end (issue 10, item 4)
  stuck         alarm_stop can be left once no flow-stopping alarm is latched
  stale         the guard holds against the limits of the program in effect or pending, not of
                a pending program that another commit replaced
  commit        an acknowledged commit is never undone by a reset
  safe          the safe state is left only by a committed program (not by a reset)
  periodic      a periodic start time starts at most once in 23 h of monotonic time
  presumed      after a reset, the record's reservation is counted as delivered (fail towards
                less drug)
  made          the stroke counter counts the strokes made (and those presumed after a reset),
                never a stroke the shell did not make
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from pumpcore import wire
from pumphil.board import BoardReset
from pumphil.inproc import InProcessRig
from pumphil.plant import PlantParams
from pumphost.errors import PumpError, RefusedError, TransportError
from refmodel import states as S
from refmodel.dose import Catheter, Concs, ng
from refmodel.pump import CATALOGUE, MARGIN, TOL_NG, Expect, RefPump
from refmodel.rx import MS_PER_DAY, MS_PER_H

LAG_MS = 10_000          # a step may start this late after its wake-up time (watchdog 8.388 s)
CAUSE_MEMORY_MS = 6 * MS_PER_H   # a catheter alarm may come this long after its fault ended
STATE_RECORD = "/state.json"
GROUPS = ("limit", "patient", "counters", "resets", "alarms", "agree", "records", "made",
          "presumed", "periodic", "safe", "commit", "stale", "stuck", "battery", "admixture",
          "lag")
CATHETER_ALARMS = ("occlusion", "dislodgement", "leak", "motor_stall", "under_infusion",
                   "over_infusion")
TRACE = False            # print what happens (debugging a failing sequence)


def trace(*parts: Any) -> None:
    if TRACE:
        print(*parts)


class PowerCut(BaseException):
    """Raised inside the firmware's step by a planned cut: unwinds it like losing power (no
    `except Exception` in the firmware can catch it)."""


class TapEscape(BaseException):
    """Carries an error of the harness or the model (a violation found while the firmware was
    running, a bug) out of the firmware's step: as a plain Exception the firmware's fail-safe
    handler would take it for its own fault."""


def _guarded(fn: Any) -> Any:
    def run(self: Any, *args: Any) -> Any:
        try:
            return fn(self, *args)
        except (PowerCut, TapEscape, BoardReset):
            raise
        except BaseException as e:     # noqa: BLE001 - re-raised by Harness._drive
            obs = self if isinstance(self, Observer) else self._obs
            if obs.error is None:
                obs.error = e
            raise TapEscape() from e
    return run


@dataclass
class Stats:
    """Counts printed by `make verify`."""

    c: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)   # group -> its first violation

    def add(self, key: str, n: int = 1) -> None:
        self.c[key] += n

    def report(self) -> str:
        lines = [f"  {k:<48} {v}" for k, v in sorted(self.c.items())]
        for g, msg in sorted(self.examples.items()):
            lines.append(f"  first violation of {g}: {msg[:400]}")
        return "\n".join(lines)


class Violation(AssertionError):
    def __init__(self, group: str, msg: str) -> None:
        super().__init__(f"[{group}] {msg}")
        self.group = group


# ------------------------------------------------------------------------------------ truth
class Truth:
    """What really left the catheter tip, from the plant (exact: the test plant has no stroke
    bias or jitter, so a stroke that moved fluid moved exactly stroke_nl). A complete occlusion
    holds the fluid in the line until it clears; a leak near the pump loses it before the
    catheter. The line's compliance delay (tau = 0.3 s) is not modelled: fluid leaves at its
    stroke."""

    def __init__(self, stroke_nl: Fraction) -> None:
        self.stroke_nl = stroke_nl          # what one stroke really moves (nL, exact)
        self.catheter: Catheter | None = None
        self.concs: Concs = {}          # what is physically in the reservoir
        self.held: list[tuple[int, Fraction, Concs]] = []   # held behind a complete occlusion
        self.exits: deque[tuple[int, str, Fraction]] = deque()
        self.window: dict[str, Fraction] = {}
        self.peak: dict[str, Fraction] = {}

    def stroke(self, t: int, ok: bool, occlusion: str | None, leaking: bool) -> set[str]:
        """A stroke the mechanism made at t: the drugs that left the tip because of it."""
        if not ok or self.catheter is None:
            return set()
        if leaking:
            return set()
        if occlusion == "complete":
            self.held.append((t, self.stroke_nl, dict(self.concs)))
            return set()
        return self._push(t, self.stroke_nl, self.concs)

    def release(self, t: int) -> set[str]:
        """An occlusion cleared: the fluid held in the line leaves the tip. It is kept at the
        times of its strokes (when the pump counted it): when it leaves is physics the pump does
        not decide, and the release's own bound is H8's test."""
        out: set[str] = set()
        for ts, vol, concs in self.held:
            out |= self._push(ts, vol, concs)
        self.held.clear()
        return out

    def _push(self, t: int, vol: int | Fraction, concs: Concs) -> set[str]:
        assert self.catheter is not None
        _, out = self.catheter.push(vol, concs)   # type: ignore[arg-type]
        for d, a in out.items():
            if a:
                self.exits.append((t, d, a))
                self.window[d] = self.window.get(d, Fraction(0)) + a
        return {d for d, a in out.items() if a}

    def window_at(self, t: int) -> dict[str, Fraction]:
        """Per drug, what left the tip in (t - 24 h, t] of board time."""
        while self.exits and self.exits[0][0] <= t - MS_PER_DAY:
            _, d, a = self.exits.popleft()
            self.window[d] -= a
        return self.window


# ------------------------------------------------------------------------------------ taps
class FsTap:
    """The firmware's filesystem, observed: state records and planned cuts."""

    def __init__(self, fs: Any, obs: Observer) -> None:
        self._fs = fs
        self._obs = obs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def open(self, path: str, mode: str) -> Any:
        if path == STATE_RECORD + ".tmp" and "w" in mode:
            self._obs.before_record("write")
        return self._fs.open(path, mode)

    def rename(self, src: str, dst: str) -> None:
        if dst == STATE_RECORD:
            self._obs.before_record("rename")
        self._fs.rename(src, dst)
        if dst == STATE_RECORD:
            self._obs.record_done()


class HalTap:
    """The HAL handed to the firmware's App: the board's, with observation points."""

    def __init__(self, hal: Any, obs: Observer) -> None:
        self._hal = hal
        self._obs = obs
        self.fs = FsTap(hal.fs, obs)
        for name in ("ticks_diff", "wdt_feed", "read_pressure", "button_pressed", "serial_read",
                     "motor_off", "indicate", "battery_mv"):   # bound once: the hot calls
            if hasattr(hal, name):
                setattr(self, name, getattr(hal, name))
        self._ticks = hal.ticks_ms
        self._board = obs.h.rig.board
        self._steps = self._board.steps

    def ticks_ms(self) -> int:
        # App.step reads the clock first: the board's step counter moving says a step begins
        b = self._board
        if b.steps != self._steps:
            self._steps = b.steps
            self._obs.step_start()
        return self._ticks()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hal, name)

    def motor_stroke(self) -> bool:
        ok = self._hal.motor_stroke()
        self._obs.stroke(ok)
        return ok

    def serial_write(self, data: bytes, link: int | None = None) -> None:
        if link is None:            # events go to every link; replies only to the asker
            self._obs.output(data)
        self._hal.serial_write(data, link)


# ------------------------------------------------------------------------------------ observer
class Observer:
    """Receives everything the firmware does, in order, and feeds the model and the truth."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.step_t = 0
        self.cut_after_records: int | None = None   # cut before the (n+1)-th record from now
        self.cut_at: str = "write"
        self.line = bytearray()
        self.error: BaseException | None = None

    @_guarded
    def wrap(self, hal: Any) -> HalTap:
        """A new App is being created: the board (re)boots now."""
        h = self.h
        self.step_t = h.rig.clock.now_ms
        h.on_boot(self.step_t, h.rig.board.cause)
        return HalTap(hal, self)

    @_guarded
    def step_start(self) -> None:
        self.h.flush_record()      # the previous step's record, now that its events are in
        self.step_t = self.h.rig.clock.now_ms

    @_guarded
    def stroke(self, ok: bool) -> None:
        h = self.h
        h.stats.add("strokes made" if ok else "strokes without feedback")
        h.epoch_strokes += 1
        p = h.rig.plant
        out = h.truth.stroke(self.step_t, ok, p.occlusion, p.leaking)
        h.model.stroke(self.step_t, ok, covered=h.deferred_record == self.step_t)
        if out:
            h.check_truth(self.step_t, out)

    @_guarded
    def output(self, data: bytes) -> None:
        self.line.extend(data)
        while True:
            nl = self.line.find(b"\n")
            if nl < 0:
                return
            raw = bytes(self.line[:nl]).decode("ascii", "replace")
            del self.line[:nl + 1]
            if raw.startswith("~"):
                try:
                    parsed = wire.parse_reply(raw)
                except wire.WireError:
                    self.h.fail("agree", f"garbled event line {raw!r}")
                    continue
                if parsed is not None:
                    self.h.on_event(self.step_t, parsed[2])

    def before_record(self, where: str) -> None:
        """A state record is about to be written ("write": its temporary file is opened) or put
        in place ("rename"). A planned cut strikes here once `cut_after_records` records have
        been completed."""
        if self.cut_after_records == 0 and where == self.cut_at:
            self.cut_after_records = None
            self.h.stats.add(f"power cuts right before a record {where}")
            raise PowerCut()

    @_guarded
    def record_done(self) -> None:
        # the record holds the step's state as written; the step's event lines come after it
        # (and a command's effect is applied to the model only at its reply): the model takes
        # its snapshot at the end of the step
        self.h.stats.add("state records")
        self.h.deferred_record = self.step_t
        if self.cut_after_records:
            self.cut_after_records -= 1


# ------------------------------------------------------------------------------------ harness
class Harness:
    def __init__(self, stats: Stats, seed: int = 0, xfail: frozenset[str] = frozenset(),
                 bias_pct: int = 0) -> None:
        self.stats = stats
        self.xfail = xfail
        self.known: list[str] = []                    # violations of xfail groups (not raised)
        self.stroke_nl = 250
        self.bias_pct = bias_pct
        # the plant's mechanism without jitter: every stroke moves exactly stroke_nl + bias_pct %
        # (a dyadic volume, exact in the plant's floats), so the truth below is exact
        self.rig = InProcessRig(seed=seed, plant_params=PlantParams(
            stroke_bias=bias_pct / 100, stroke_jitter=0.0))
        self.model = RefPump(self.stroke_nl)
        self.model.rules["presume"] = "presumed" not in xfail
        self.model.rules["reset_alarms"] = "resets" not in xfail
        self.truth = Truth(Fraction(self.stroke_nl * (100 + bias_pct), 100))
        self.obs = Observer(self)
        self.rig.wrap_hal(self.obs.wrap)
        self.client = self.rig.client()
        self.epoch_strokes = 0
        self.epoch_holds = 0
        self.fresh_boot = False
        self.boots: list[tuple[int, str]] = []
        self.events_since_boot: list[dict[str, Any]] = []
        self.faults: dict[str, tuple[int, int | None]] = {}   # fault -> (on_t, off_t or None)
        self.last_counters: dict[str, Any] | None = None
        self.limit_hist: dict[str, int] = {}          # drug -> hard limit last in force
        self.patient_fw_starts: list[tuple[int, int]] = []   # (board t, model mono)
        self.in_flight = False             # a command is being executed by the firmware
        self.queued_events: list[tuple[int, dict[str, Any]]] = []
        self.deferred_record: int | None = None
        self.reset_checked = -1            # the boot whose `reset` entry was checked
        # a known gap after which the pump counts the wrong admixture: the truth's limit
        # violations are that gap's (reported under its group, never hidden)
        self.taint: str | None = None
        self._drive(self.rig.power_on)

    def _drive(self, fn: Any, *args: Any) -> Any:
        """Run the firmware (advance, boot, a command): a planned power cut is carried out, an
        error raised in an observation point is raised here."""
        try:
            return fn(*args)
        except PowerCut:
            self.flush_record()
            self.cut_now()
        except TapEscape:
            err, self.obs.error = self.obs.error, None
            assert err is not None
            raise err from None
        finally:
            if not self.in_flight:
                self.flush_record()
        return None

    def flush_record(self) -> None:
        """The model's snapshot of a record written in the step that just ended."""
        if self.deferred_record is not None and not self.in_flight:
            t, self.deferred_record = self.deferred_record, None
            self.model.on_record(t)

    def close(self) -> None:
        self.rig.close()

    # -- failures ------------------------------------------------------------------------------
    def fail(self, group: str, msg: str) -> None:
        assert group in GROUPS, group
        self.stats.add(f"violations {group}")
        self.stats.examples.setdefault(group, msg)
        if group in self.xfail:
            if len(self.known) < 20:
                self.known.append(f"[{group}] {msg}")
            return
        raise Violation(group, msg)

    def flush_model(self) -> None:
        while self.model.violations:
            v = self.model.violations.pop(0)
            group = "records" if "reservation" in v else "limit" if "hard limit" in v else "agree"
            self.fail(group, v)

    # -- time and power ------------------------------------------------------------------------------
    def now(self) -> int:
        return self.rig.clock.now_ms

    def powered(self) -> bool:
        return self.rig.board.powered and self.rig.board.app is not None

    def advance(self, ms: int) -> None:
        trace(f"t={self.now()} advance {ms}")
        self._drive(self.rig.advance, ms)
        self.model.advance_to(self.now())
        self.flush_model()

    def settle(self) -> None:
        """Run every wake-up due by now (a step may have blocked past the last advance)."""
        b = self.rig.board
        for _ in range(50):
            if not self.powered() or b.next_wake_ms > self.now():
                return
            self.advance(0)

    def cut_now(self) -> None:
        """Power cut: the board loses power at the current instant."""
        trace(f"t={self.now()} POWER CUT")
        self.stats.add("power cuts")
        self.model.power_off(self.now())
        self.rig.power_off()
        self.obs.line.clear()

    def restore_power(self) -> None:
        if self.powered():
            return
        self._drive(self.rig.power_on)
        self.flush_model()

    def on_boot(self, t: int, cause: str) -> None:
        trace(f"t={t} BOOT {cause}")
        self.flush_record()
        first = not self.boots
        self.boots.append((t, cause))
        self.events_since_boot = []
        self.epoch_strokes = 0
        self.epoch_holds = 0
        self.fresh_boot = not first
        if not first:
            self.stats.add(f"resets {cause}")
        self.model.boot(t, cause)

    # -- events ---------------------------------------------------------------------------------------
    def on_event(self, t: int, ev: dict[str, Any]) -> None:
        if self.in_flight:
            self.queued_events.append((t, ev))   # judged once the command is applied
            return
        self._event(t, ev)

    def _event(self, t: int, ev: dict[str, Any]) -> None:
        trace(f"  t={t} event {ev.get('kind')} {ev.get('code')} {ev.get('data')}")
        self.events_since_boot.append(ev)
        kind = ev.get("kind")
        code = ev.get("code")
        m = self.model
        m.advance_to(t)
        if kind == "state" and code in S.MOTOR_STATES and m.needs_program \
                and m.reservoir_concs is None:
            self.fail("admixture", f"the firmware went {code} at t={t} ({ev.get('data')}) with the "
                      "reservoir's content unknown: refilled with a new admixture and no program "
                      "committed since (therapy.md: start and prime are refused program_required)")
            # to judge the rest on the firmware's footing: it runs the old program, counting
            # the old program's admixture (the truth knows better), still wanting a program
            if m.program is not None:
                m.reservoir_concs = dict(m.program.drugs)
            self.taint = "admixture"
        if kind == "state" and m.follow is not None and code in S.STATES:
            # the docs leave the state after this boot open: take the firmware's (until the
            # next check compares again)
            m.set_state(str(code))
            if m.state != S.SUSPENDED:
                m.suspend_until = None
        if kind == "state" and code == S.STOPPED and m.state == S.ALARM_STOP \
                and (ev.get("data") or {}).get("from") == S.ALARM_STOP \
                and not m._stop_alarm_latched():
            # therapy.md: alarm_stop is left (to stopped) ONLY when no flow-stopping alarm is
            # latched; whether the last one clearing (acknowledged before) leaves it by itself
            # or an `ack` must follow, the docs do not say
            self.stats.add("unspecified: alarm_stop left when the last stop alarm cleared")
            m.set_state(S.STOPPED)
        if kind == "program_active":
            # when a program committed while running takes over: "at the next stroke boundary"
            # (a made stroke, a due one, at once at rate 0: the docs leave it open); the
            # firmware's instant is taken, the program must be the one committed
            want = (ev.get("data") or {}).get("checksum")
            if m.pending is not None and m.pending.checksum == want:
                self.stats.add(f"pending program applied in state {m.state}")
                m.apply_pending()
            elif m.program is None or m.program.checksum != want:
                self.fail("commit" if want in m.superseded else "agree",
                          f"program {want} took effect at t={t}; the docs' committed program is "
                          f"{m.program.checksum if m.program else None}" + (
                              f" ({want} was superseded by a later commit: the pump now runs a "
                              "program the clinician replaced, with its rate and its "
                              "concentrations)" if want in m.superseded else ""))
                if want in m.superseded:
                    m.adopt_program(want)
                    self.taint = "commit"
        if kind == "dose_hold_end":
            m.clear_condition("dose_limit_hold")   # "goes away at the first admitted stroke"
        if kind == "dose_hold":
            # the guard refused a stroke: only over a hard limit, and (therapy.md) the hold
            # raises dose_limit_hold, which cancels the active bolus
            self.stats.add("dose holds")
            self.epoch_holds += 1
            if self.alarm_cause(t, "dose_limit_hold") is None:
                stale = self.alarm_cause(t, "dose_limit_hold", "stale") is not None
                self.fail("stale" if stale else "alarms",
                          f"the guard held a stroke of {code} at t={t} below the hard limit of "
                          f"the program in effect or pending ({ev.get('data')}; docs ledger "
                          f"{float(m.ledger.total(str(code), m.mono)):.1f} ng, limits "
                          f"{m.hard_limits('tight')})" + (
                              ": the limit of a pending program that another commit replaced "
                              "before it took effect" if stale else ""))
            m.raise_alarm("dose_limit_hold")
        if kind == "alarm_raised":
            self.stats.add(f"alarms raised {code}")
            self.on_alarm_raised(t, str(code))
        elif kind == "alarm_cleared":
            a = m.alarms.get(str(code))
            if a is not None and not a.acked:
                self.fail("agree", f"{code} cleared while unacknowledged (therapy.md: alarms latch "
                          "until acknowledged AND their condition has gone)")
            if a is not None:
                del m.alarms[str(code)]
            m.optional_alarms.discard(str(code))
        elif kind == "bolus_start":
            self.stats.add(f"boluses started {code}")
            self.match_start(t, str(code), ev.get("data") or {})
            if code == "patient":
                self.check_patient_start(t)
        elif kind == "reset":
            self.stats.add(f"reset entries {code}")
        elif kind == "periodic_skipped" and code == "dose_limit" and m.program is not None \
                and any(p.kind == "periodic" and not p.matched for p in m.predicted):
            minute = (ev.get("data") or {}).get("minute")
            vol = m.program.periodic_times().get(minute, (0, 0))[0]
            if m.drop_ambiguous_periodic(t):
                self.stats.add("dose checks at their edge (either way accepted)")
            elif m.refused_by_stale_limits(vol):
                self.fail("stale", f"periodic {minute} skipped (dose_limit) by the limit of a "
                          "pending program that another commit replaced before it took effect")
                m.drop_ambiguous_periodic(t, force=True)
        elif kind == "periodic_skipped" and code == "too_soon" and m.drop_ambiguous_periodic(t):
            self.stats.add("unspecified: a periodic time skipped for the dose or a full queue "
                           "counts for the 23-h spacing")
        elif kind in ("periodic_skipped", "bolus_skipped", "bolus_queued", "bolus_interrupted"):
            self.stats.add(f"events {kind} {(ev.get('data') or {}).get('reason', '')}".rstrip())

    def on_alarm_raised(self, t: int, code: str) -> None:
        m = self.model
        if code not in CATALOGUE:
            self.fail("alarms", f"unknown alarm {code}")
            return
        if code in m.alarms and m.alarms[code].raised_mono >= m.mono - LAG_MS:
            return      # the model raised it too (reservoir, reset alarms)
        if code in m.optional_alarms:
            return
        cause = self.alarm_cause(t, code)
        if cause is None:
            self.fail("battery" if code.startswith("battery") else "alarms",
                      f"{code} raised at t={t} without a cause (plant faults "
                      f"{self.faults}, model reservoir "
                      f"{m.reservoir.remaining_nl if m.reservoir else None})")
        m.raise_alarm(code)

    def alarm_cause(self, t: int, code: str, limits: str = "tight") -> str | None:
        m = self.model
        if code in CATHETER_ALARMS:
            for f, (on, off) in self.faults.items():
                if off is None or t - off <= CAUSE_MEMORY_MS:
                    return f
            return None
        if code == "dose_limit_hold":
            concs = m.concs_in()
            out = m.catheter.would_emit(self.stroke_nl, concs) if m.catheter else {}
            for d, hard in m.hard_limits(limits).items():
                if m.ledger.total(d, m.mono) + out.get(d, Fraction(0)) * MARGIN > hard - TOL_NG - \
                        self._one_stroke(d):
                    return "guard"
            return None
        if code in ("reservoir_low", "reservoir_empty"):
            r = m.reservoir
            if r is not None and (r.remaining_nl - self.stroke_nl <= (
                    r.low_alert_nl if code == "reservoir_low" else r.empty_nl)):
                return "reservoir"
            return None
        if code in ("unexpected_reset", "watchdog_reset", "reset_loop"):
            return "reset" if self.boots and self.boots[-1][0] >= t - LAG_MS else None
        if code.startswith("battery"):
            # the test cell starts full and a sequence lasts days: ERI (>= 90 days before EOS)
            # or EOS is caused only by a cell that is really near its end
            return "battery" if self.rig.plant.battery_percent() < 15 else None
        return None      # self_test, state_lost, fault: nothing in these sequences causes them

    def _one_stroke(self, d: str) -> Fraction:
        return ng(self.stroke_nl, self.model.max_concs().get(d, 0)) * MARGIN

    def match_start(self, t: int, kind: str, data: dict[str, Any]) -> None:
        """A bolus start the firmware logged: the docs must predict it (a logged start comes at
        most LAG_MS after its documented instant). Where a known gap explains an unexpected
        start, the model takes it, so the rest of the sequence is judged on the same footing."""
        for p in self.model.predicted:
            if not p.matched and p.kind == kind and p.t <= t <= p.t + LAG_MS:
                p.matched = True
                return
        why = [w for ts, w in self.model.skipped if ts <= t <= ts + LAG_MS]
        if why and all("(at its edge)" in w for w in why):
            self.stats.add("dose checks at their edge (either way accepted)")
            if isinstance(data.get("volume_nl"), int) and isinstance(data.get("duration_ms"), int):
                self.model.adopt_bolus(kind, data["volume_nl"], data["duration_ms"])
            return
        group = "agree"
        if kind == "periodic" and any("too soon" in w for w in why):
            group = "periodic"
        elif any("dose_limit" in w for w in why):
            group = "limit"       # therapy.md: periodic boluses pass the patient's dose check
        self.fail(group, f"{kind} bolus started at t={t} where the docs start none "
                  f"({'; '.join(why) or 'nothing due'})")
        if isinstance(data.get("volume_nl"), int) and isinstance(data.get("duration_ms"), int):
            self.model.adopt_bolus(kind, data["volume_nl"], data["duration_ms"])

    def check_patient_start(self, t: int) -> None:
        m = self.model
        p = m.program
        if p is None or not p.patient:
            self.fail("patient", "patient bolus started without a patient bolus program")
            return
        mono = m.mono
        lockout = p.patient["lockout_ms"]
        prev = [x for _, x in self.patient_fw_starts]
        if prev and mono - prev[-1] < lockout:
            self.fail("patient", f"patient bolus {mono - prev[-1]} ms (monotonic) after the "
                      f"previous start, lockout {lockout}")
        n = sum(1 for x in prev if mono - x < MS_PER_DAY)
        if n >= p.patient["max_per_24h"]:
            self.fail("patient", f"patient bolus number {n + 1} within 24 h, max "
                      f"{p.patient['max_per_24h']}")
        self.patient_fw_starts.append((t, mono))

    # -- commands ---------------------------------------------------------------------------------------
    def command(self, name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if not self.powered():
            self.stats.add("commands while powered off")
            return "powered_off", {}
        self.settle()
        if not self.powered():
            return "powered_off", {}
        if name in ("start", "resume", "prime", "patient_bolus", "clinician_bolus", "stage",
                    "commit", "refill", "stop", "suspend"):
            self.sync_counted()
        t = self.now()
        exp = self.model.expect(t, name, args)
        self.flush_model()
        self.in_flight = True
        try:
            code, data = self._send(name, args)
        finally:
            self.in_flight = False
        if code == "powered_off":
            self.deferred_record = None
            self.queued_events.clear()
            return code, data
        self.stats.add(f"commands {name} {code}")
        trace(f"t={t} {name} {args if name != 'stage' else ''} -> {code} (docs {exp.code}) "
              f"model {self.model.state}")
        if name == "commit" and code == "ok":
            staged = self.model.staged
            if staged is not None:
                vol = staged[0].catheter_nl
                if self.truth.catheter is None or self.truth.catheter.volume_nl != vol:
                    self.truth.catheter = Catheter(vol, bounded=False)   # a new catheter
        if name == "stage" and exp.why.startswith("the review decides"):
            self.judge_stage(args["rx"], code, data)
        elif not exp.allows(code) and code == "dose_limit" and self.model.refused_by_stale_limits(
                args.get("volume_nl") or ((self.model.program.patient or {}).get("volume_nl", 0)
                                          if self.model.program else 0)):
            self.fail("stale", f"{name} {args} refused dose_limit by the limit of a pending "
                      "program that another commit replaced before it took effect")
        elif not exp.allows(code) and exp.why == "leave alarm_stop":
            self.fail("stuck", f"ack refused ({code}) in alarm_stop with no flow-stopping alarm "
                      "latched: the pump cannot leave alarm_stop (therapy.md: it is left to "
                      "stopped once no flow-stopping alarm is latched; start/resume are refused)")
            exp = Expect(None, "stuck in alarm_stop")
        elif not exp.allows(code):
            bypass = (code == "ok" and exp.code in ("lockout", "max_per_24h", "dose_limit"))
            self.fail("patient" if bypass and name == "patient_bolus" else
                      "limit" if bypass else "agree",
                      f"{name} {args} in {self.model.state}: the docs say "
                      f"{exp.code}{' or ' + '/'.join(exp.alternatives) if exp.alternatives else ''}"
                      f", the firmware {code} {data.get('msg', '')}")
        if exp.code is None:
            self.stats.add(f"unspecified: {exp.why}")
        self.model.apply(t, name, args, code, data)
        if exp.code is None and code == "ok":
            self.follow_state()
        self.after_command()
        return code, data

    def after_command(self) -> None:
        """Events and the state record of a command's step, judged after the command."""
        queued, self.queued_events = self.queued_events, []
        for t, ev in queued:
            self._event(t, ev)
        self.flush_record()
        self.flush_model()

    def _send(self, name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        fn = getattr(self.client, name)        # the command table's wire names
        try:
            data = self._drive(lambda: fn(**args))
            if not self.powered():
                return "powered_off", {}
            return "ok", data or {}
        except RefusedError as e:
            return str(e.reason), e.data
        except TransportError:
            return "powered_off", {}
        except PumpError as e:
            self.fail("agree", f"{name}: {type(e).__name__} {e}")
            return str(e.reason), e.data

    def judge_stage(self, rx: dict[str, Any], code: str, data: dict[str, Any]) -> None:
        problems, daily, soft = self.model.stage_prediction(rx)
        if code == "ok":
            if problems:
                self.fail("agree", f"stage accepted a program the docs refuse for {problems}")
            if data.get("daily_ng") != daily:
                self.fail("agree", f"review daily_ng {data.get('daily_ng')} != documented {daily}")
            if sorted(data.get("soft_breaches") or []) != soft:
                self.fail("agree", f"review soft_breaches {data.get('soft_breaches')} != {soft}")
        else:
            got = {p[0] for p in data.get("problems") or []} or {code}
            if got != problems:
                self.fail("agree", f"stage refused {sorted(got)}, the docs refuse {sorted(problems)}"
                          f" (daily {daily}) {json.dumps(data)[:300]}")

    def follow_state(self) -> None:
        """Where the docs are silent, the model takes the firmware's state."""
        st = self.status()
        if st is not None and st.get("state") in S.STATES and st["state"] != self.model.state:
            self.stats.add(f"followed firmware to {st['state']}")
            self.model.set_state(st["state"])

    def status(self) -> dict[str, Any] | None:
        if not self.powered():
            return None
        code, data = self._send("status", {})
        return data if code == "ok" else None

    # -- plant ---------------------------------------------------------------------------------------------
    def fault(self, action: str) -> None:
        p = self.rig.plant
        t = self.now()
        self.stats.add(f"plant {action}")
        on = {"occlude_partial": "occlusion", "occlude_complete": "occlusion", "dislodge":
              "dislodgement", "leak": "leak"}
        off = {"clear_occlusion": "occlusion", "reseat": "dislodgement", "clear_leak": "leak"}
        if action == "occlude_partial":
            p.occlude("partial", t_ms=t)
        elif action == "occlude_complete":
            p.occlude("complete", t_ms=t)
        elif action == "clear_occlusion":
            p.clear_occlusion(t_ms=t)
            self.truth.release(t)
        elif action == "dislodge":
            p.dislodge(t_ms=t)
        elif action == "reseat":
            p.reseat(t_ms=t)
        elif action == "leak":
            p.leak(t_ms=t)
        elif action == "clear_leak":
            p.clear_leak(t_ms=t)
        if action in on:
            self.faults[on[action]] = (t, None)
        elif action in off and off[action] in self.faults:
            self.faults[off[action]] = (self.faults[off[action]][0], t)

    # -- checks ---------------------------------------------------------------------------------------------
    def limit_of(self, d: str) -> int | None:
        h = self.model.hard_limits().get(d)
        if h is not None:
            self.limit_hist[d] = h
            return h
        return self.limit_hist.get(d)

    def check_truth(self, t: int, drugs: set[str]) -> None:
        """Drugs just left the tip: the 24 h that ends now, for each, within its hard limit
        (judged when drug leaves, not when a clinician lowers a limit below what the window
        already holds: the guard then holds)."""
        window = self.truth.window_at(t)
        for d in drugs:
            amount = window.get(d, Fraction(0))
            hard = self.limit_of(d)
            if hard is not None and amount > hard + TOL_NG:
                # over only because of strokes made near the window's far edge? The core counts a
                # stroke when it falls due and the shell makes it up to LAG_MS later, so the true
                # window can hold a stroke the ledger's no longer does
                inner = sum((a for tt, dd, a in self.truth.exits
                             if dd == d and tt > t - MS_PER_DAY + LAG_MS), Fraction(0))
                lag = inner <= hard + TOL_NG
                # (a mechanism off nominal within its documented +-5 % is no excuse: the pump
                # counts its strokes at +5 % and its catheter's boundaries with their band)
                group = "lag" if lag else "limit"
                if group == "limit" and self.taint is not None:
                    group = self.taint    # the truth pays for a known gap met earlier
                self.fail(group,
                          f"{d}: {float(amount):.1f} ng left the catheter tip in the 24 h before "
                          f"t={t}, hard limit {hard} ng/24 h" + (
                              f" ({float(inner):.1f} ng without the strokes made in the window's "
                              f"first {LAG_MS // 1000} s: counted by the ledger when due, made "
                              "later)" if lag else "") + (
                              f" -- a consequence of the '{self.taint}' violation earlier in this "
                              "sequence (the pump counts the wrong concentrations)"
                              if group == self.taint else ""))
            if amount > self.truth.peak.get(d, Fraction(0)):
                self.truth.peak[d] = amount

    def check(self) -> None:
        """After every step of a sequence."""
        self.flush_model()
        if not self.powered():
            return
        self.settle()
        st = self.status()
        if st is None:
            return
        self.flush_model()
        m = self.model
        m.advance_to(self.now())
        self.check_counters(st)
        self.check_agreement(st)
        self.check_resets(st)
        self.check_predictions()
        self.flush_model()

    def check_counters(self, st: dict[str, Any]) -> None:
        now = {"strokes": st.get("strokes"), "delivered_nl": st.get("delivered_nl")}
        drugs = {d: v[0] * 1000 + v[1] for d, v in (st.get("delivered_drug") or {}).items()}
        last = self.last_counters
        if last is not None:
            for k, v in now.items():
                if isinstance(v, int) and isinstance(last.get(k), int) and v < last[k]:
                    self.fail("counters", f"{k} went back from {last[k]} to {v}")
            for d, v in drugs.items():
                if v < last["drugs"].get(d, 0):
                    self.fail("counters", f"delivered {d} went back from {last['drugs'][d]} to {v} ng")
        self.last_counters = dict(now, drugs=drugs)

    def sync_counted(self) -> None:
        st = self.status()
        if st is not None:
            self.model.advance_to(self.now())
            self._counted(st)

    def _counted(self, st: dict[str, Any]) -> None:
        m = self.model
        s = st.get("strokes", 0)
        first, self.fresh_boot = self.fresh_boot, False
        if first and 0 < s - m.strokes <= 40 + 1:
            # the record before the reset counted the strokes due in its step, which the reset
            # then kept from being made: counted as delivered (docs: the record covers them)
            self.stats.add("strokes counted in a record and not made before a reset")
            m.adopt_counted(s - m.strokes, at=m.boot_mono)
        elif s > m.strokes and m.state not in S.MOTOR_STATES:
            self.fail("made", f"the firmware counts {s} strokes, it made {m.strokes - m.presumed_strokes}"
                      f" (+{m.presumed_strokes} presumed): {s - m.strokes} counted, never made")
            self.epoch_strokes += s - m.strokes    # attempts the firmware counted
            m.adopt_counted(s - m.strokes)
        if m.pending_at_boot and m.ghost is not None:
            m.pending_at_boot = False
            held = m.ghost
            if st.get("pending_program"):
                self.stats.add("unspecified: a pending program stays pending across a reset")
                m.pending, m.ghost = held, None
            elif st.get("program") == held.checksum:
                self.stats.add("unspecified: a pending program is applied at a reset")
                m.pending = held
                m.apply_pending()
            else:
                self.fail("commit", f"program {held.checksum}, committed (acknowledged) while "
                          "running and waiting for the next stroke boundary, is gone after a "
                          f"reset: the firmware runs {st.get('program')} with no pending program")

    def check_agreement(self, st: dict[str, Any]) -> None:
        m = self.model
        self._counted(st)
        if m.follow is not None:
            self.stats.add(f"unspecified: {m.follow} -> firmware {st.get('state')} "
                           f"(record: {m.follow_from})")
            m.follow = None
            if st.get("state") in S.STATES:
                m.set_state(st["state"])
                if m.state != S.SUSPENDED:
                    m.suspend_until = None
        if st.get("program") is not None and m.program is not None and m.program.checksum \
                and st["program"] != m.program.checksum and m.pending is None:
            self.fail("agree", f"program: firmware {st['program']}, docs {m.program.checksum}")
        fw_presumed = (st.get("presumed") or {}).get("strokes")
        if isinstance(fw_presumed, int) and self.model.rules["presume"] \
                and fw_presumed != m.presumed_strokes:
            self.fail("presumed", f"strokes presumed delivered after resets: firmware {fw_presumed}"
                      f", docs {m.presumed_strokes} (the reservations of the records restored)")
        if st.get("pending_program") and m.pending is None and m.superseded:
            self.fail("commit", "the firmware still has a program pending that a later commit "
                      f"(applied at once: {m.program.checksum if m.program else None}) superseded")
        elif st.get("pending_program") is not None and st["pending_program"] != (m.pending is not None):
            self.fail("agree", f"pending program: firmware {st['pending_program']}, docs "
                      f"{m.pending is not None}")
        if st.get("state") != m.state:
            if m.state == S.SAFE_STATE:
                self.fail("safe", f"the firmware left the safe state for {st.get('state')} without"
                          " a committed program (safety.md: only a clinician's freshly committed "
                          f"program leaves it; last boot {self.boots[-1]})")
            else:
                self.fail("agree", f"state: firmware {st.get('state')}, docs {m.state}")
            m.set_state(st.get("state", m.state))
        s = st.get("strokes", 0)
        if abs(s - m.strokes) > 1:
            group = "presumed" if m.presumed_strokes and len(self.boots) > 1 else "agree"
            self.fail(group, f"strokes: firmware {s}, docs {m.strokes} (presumed "
                      f"{m.presumed_strokes})")
        if m.reservoir is not None and abs(st.get("reservoir_nl", 0) - m.reservoir.remaining_nl) \
                > self.stroke_nl:
            self.fail("agree", f"reservoir: firmware {st.get('reservoir_nl')} nL, docs "
                      f"{m.reservoir.remaining_nl}")
        fw24 = st.get("rolling_24h_ng") or {}
        most = m.ledger.totals(m.mono)
        least = m.ledger_early.totals(m.mono)
        for d, v in fw24.items():
            hi = most.get(d, Fraction(0))
            lo = least.get(d, Fraction(0))
            slack = self._one_stroke(d) + TOL_NG
            # a presumed delivery rounds up (ng, then the margin): a few ng per reset, above
            presumed = sum(1 for r in m.resets if m.mono - r.mono < MS_PER_DAY + 300_000)
            if not lo - slack <= v <= hi + slack + 2 * TOL_NG * presumed:
                self.fail("agree", f"rolling 24-h {d}: firmware {v} ng, docs {float(lo):.1f}.."
                          f"{float(hi):.1f}")
        fw_latched = {a[0] for a in st.get("alarms") or []} - m.optional_alarms
        if fw_latched != m.latched():
            recent = {c for c, a in m.alarms.items() if a.raised_mono >= m.mono - LAG_MS}
            missing = (m.latched() - fw_latched) - recent
            if missing or (fw_latched - m.latched()):
                reset = missing and missing <= {"unexpected_reset", "watchdog_reset", "reset_loop"}
                self.fail("resets" if reset else "agree",
                          f"alarms: firmware {sorted(fw_latched)}, docs {sorted(m.latched())}"
                          + (" (every unexpected reset is alarmed: therapy.md)" if reset else ""))
        pb = st.get("patient_bolus") or {}
        if pb.get("delivered") is not None and pb.get("delivered") != m.patient_delivered:
            self.fail("agree", f"patient boluses delivered: firmware {pb.get('delivered')}, docs "
                      f"{m.patient_delivered}")
        # the due-stroke integral (no plant fault: strokes then fail or are stopped)
        if not self.faults and m.state in S.MOTOR_STATES:
            lo = m.attempts_at(self.now() - LAG_MS) - 1
            hi = m.attempts + 1
            held = ((st.get("dose_guard") or {}).get("held_strokes")) or 0
            made = self.epoch_strokes
            if self.epoch_holds:
                lo = -1      # the guard dropped strokes (counted per program, not per boot)
            if not lo <= made <= hi and not lo <= made + held <= hi:
                self.fail("agree", f"strokes due since boot: docs {lo + 1}..{hi - 1}, firmware made "
                          f"{made} (held {held})")

    def check_resets(self, st: dict[str, Any]) -> None:
        if len(self.boots) < 2:
            return
        t_boot, cause = self.boots[-1]
        if self.now() - t_boot > LAG_MS and self.reset_checked != t_boot:
            self.reset_checked = t_boot
            if not any(e.get("kind") == "reset" for e in self.events_since_boot):
                self.fail("resets", f"no `reset` log entry after the {cause} reset at t={t_boot}")

    def check_predictions(self) -> None:
        t = self.now()
        for p in self.model.predicted:
            if not p.matched and t - p.t > LAG_MS and self.powered():
                p.matched = True
                self.fail("agree", f"the docs start a {p.kind} bolus at t={p.t}; the firmware "
                          "logged none")
        self.model.predicted = [p for p in self.model.predicted if not p.matched]
        self.model.skipped = [x for x in self.model.skipped if x[0] >= t - LAG_MS]
