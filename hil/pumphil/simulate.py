"""`itpump simulate`: run a scenario in virtual time through the real protocol (docs/simulate.md).

The runner starts an :class:`pumphil.emulator.Emulator` (virtual board running the unchanged
firmware, time advanced only by us), opens a :class:`pumphost.client.PumpClient` on a link in
this process (``Emulator.local_port``: no socket) with the keys the emulator provisioned, and then:

1. t < 0 (set-up, in virtual time): ``set_clock`` to the scenario's start time, ``stage`` +
   ``commit`` the prescription (soft-limit breaches confirmed: the scenario's author is the
   clinician), ``refill`` to the prescription's fill volume (the plant's reservoir too), and,
   unless ``[start] primed = false``, ``prime`` the catheter volume and advance virtual time until
   priming ends. The clock is then set again to the start time, so t=0 is "primed, at the start
   time". This is priming through the protocol, honestly timed, not a pre-primed shortcut.
2. t = 0: ``start`` (unless ``[start] autostart = false``).
3. For every checkpoint (each sample interval, each day boundary, each event time and a few
   minutes after it, the end): advance virtual time to it, read ``status`` (the sample that the
   report's day boundaries use, taken before any action at that time), perform the events due
   (pump commands through the client, plant faults through ``emu.plant``), and read ``status``
   again if something was done. Event-log entries are collected from the event lines the pump
   pushes and, to fill any gap, from the ``log`` command.
4. The pressure the firmware sampled around each alarm comes from ``emu.pressure_trace``.

A refused pump command is not an error of the run: its reason code is recorded and shown in the
summary (that is what a scenario is for). While the board is powered off (``power_cut``) status
reads are skipped and samples are recorded as missing.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pumphost import keys as host_keys
from pumphost.client import PumpClient, wall_clock_of
from pumphost.errors import PumpError

from . import gcpolicy
from . import report as _report
from .plant.drugs import peak_24h_ng, tip_amounts
from .recording import ActionResult, DrugTruth, PressureWindow, Recording, Sample
from .scenario import MS_PER_DAY, MS_PER_H, MS_PER_MIN, Event, Scenario

#: at most this many periodic status samples per run (see default_sample_ms)
MAX_SAMPLES = 120
#: extra status reads after each event (ms after it): shows the response to the action
AFTER_EVENT_MS = (MS_PER_MIN, 10 * MS_PER_MIN)
#: pressure window around each alarm: from 30 min before to 10 min after it was raised
PRESSURE_BEFORE_MS = 30 * MS_PER_MIN
PRESSURE_AFTER_MS = 10 * MS_PER_MIN
#: longest priming accepted before t=0 (1 mL/h prime rate: a 150 uL catheter takes 9 min)
MAX_PRIME_MS = 6 * MS_PER_H
DEFAULT_STROKE_NL = 250
#: an action's result when the plant (not the pump) refused it
PLANT_REFUSED = "plant_refused"


class SimulationError(PumpError):
    """The scenario could not be set up on the pump (program refused, link lost...)."""

    reason = "simulation"


class PlantError(SimulationError):
    """The plant (the physical side: the reservoir) refused what the scenario asked of it, e.g. a
    fill larger than its reservoir. A scenario/plant error, never a pump reason code."""

    reason = "plant"


def default_sample_ms(sc: Scenario) -> int:
    """Status sample interval: the shortest of 1, 2, 3, 4, 6, 8, 12 h that keeps a run at or
    under MAX_SAMPLES samples (each is a protocol round trip)."""
    for h in (1, 2, 3, 4, 6, 8, 12):
        if sc.duration_ms // (h * MS_PER_H) <= MAX_SAMPLES:
            return h * MS_PER_H
    return MS_PER_DAY


def checkpoints(sc: Scenario, sample_ms: int | None = None) -> list[int]:
    """Sorted ms-from-t=0 times the runner stops at: every sample interval, every day boundary,
    every event time, AFTER_EVENT_MS after each event that changes the pump's course (not after
    patient boluses: their reply says what happened), and the end."""
    step = sample_ms if sample_ms is not None else default_sample_ms(sc)
    pts = set(range(0, sc.duration_ms, step))
    pts.update(range(0, sc.duration_ms, MS_PER_DAY))
    pts.add(sc.duration_ms)
    for ex in sc.expectations:       # times expectations read the pump's status at
        for t in (ex.at_ms, ex.from_ms, ex.to_ms):
            if t is not None and 0 < t < sc.duration_ms:
                pts.add(t)
    for ev in sc.events:
        pts.add(ev.at_ms)
        if ev.action == "patient_bolus":
            continue
        for d in AFTER_EVENT_MS:
            if ev.at_ms + d < sc.duration_ms:
                pts.add(ev.at_ms + d)
    return sorted(pts)


class Runner:
    """One scenario run on one emulator. Use :func:`run` unless you need the pieces."""

    def __init__(self, scenario: Scenario, emu: Any, client: PumpClient,
                 sample_ms: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.sc = scenario
        self.progress = progress     # progress(day_done, days) after each simulated day
        self.emu = emu
        self.client = client
        self.sample_ms = sample_ms
        self.t0_emu_ms = 0
        self.day0, self.ms0 = wall_clock_of(scenario.start_time)
        self.powered = True
        self._entries: list[dict[str, Any]] = []
        self._epoch = 0
        self._last_seq = 0
        self._offsets: dict[int, int] = {0: 0}
        self._started = False        # set-up done: t=0 reached
        # host traffic in progress: [next request (ms from t=0), every_ms, requests left, role]
        self._traffic: list[list[Any]] = []
        self.traffic_sent = 0
        self.rec = Recording(scenario=scenario, stroke_nl=self._stroke_nl(),
                             runtime=str(getattr(emu, "runtime", "cpython")))
        client.on_event(self._on_event)

    # --- helpers --------------------------------------------------------------------------------
    def _stroke_nl(self) -> int:
        v = getattr(self.emu, "stroke_nl", None)
        if isinstance(v, int) and v > 0:
            return v
        try:  # the firmware's board constant (the emulator runs the firmware from firmware/)
            from pumpfw import board as fw_board  # type: ignore[import-not-found]

            return int(fw_board.STROKE_NL)
        except ImportError:
            return DEFAULT_STROKE_NL

    def now(self) -> int:
        """ms from t=0 (negative during set-up)."""
        return int(self.emu.now_ms()) - self.t0_emu_ms

    def advance_to(self, t_ms: int) -> None:
        """Advance virtual time to t_ms, sending the traffic that falls due on the way."""
        while self._traffic:
            gen = min(self._traffic, key=lambda g: g[0])
            if gen[0] > t_ms:
                break
            dt = gen[0] - self.now()
            if dt > 0:
                self.emu.advance(dt)
            self._poll(gen[3])
            gen[0] += gen[1]
            gen[2] -= 1
            if gen[2] <= 0:
                self._traffic.remove(gen)
        dt = t_ms - self.now()
        if dt > 0:
            self.emu.advance(dt)

    def _poll(self, role: str) -> None:
        """One host request of a traffic action: status as readonly, or an unauthenticated hello.
        Answers are not recorded; a board that is off does not answer (skipped)."""
        if not self._answers():
            return
        try:
            if role == "none":
                self.client.hello()
            else:
                self.client.status(role="readonly")
        except PumpError:
            pass
        self.traffic_sent += 1

    # Event-log entries. The dispatcher numbers entries from 1 after every boot (a power cut, a
    # watchdog reset), so an entry is identified by (boot epoch, seq): a seq not above the last one
    # seen starts a new epoch. Entries are timed by the pump's wall clock (ms precision) plus the
    # epoch's offset: 0 in the first epoch (the clock was set at t=0), else measured from the
    # first status read in the epoch (a board without a real-time clock restores its clock from
    # the last snapshot after a power cut, so it runs behind by the time it was off).
    def _pump_t_ms(self, day: Any, ms: Any) -> int | None:
        if isinstance(day, int) and isinstance(ms, int) and day >= 0:
            return (day - self.day0) * MS_PER_DAY + ms - self.ms0
        return None

    def _add_entry(self, seq: int, entry: dict[str, Any]) -> None:
        if seq <= self._last_seq:
            self._epoch += 1
        self._last_seq = seq
        if self._started and entry.get("kind") == "clock_set":
            # a set_clock action: entries from here on are timed by the new wall clock, whose
            # offset is known at once (the entry names the time it was set to, now)
            data = entry.get("data") or {}
            pump_t = self._pump_t_ms(data.get("day"), data.get("ms"))
            if pump_t is not None:
                self._epoch += 1
                self._offsets[self._epoch] = self.now() - pump_t
        e = dict(entry)
        e["_epoch"] = self._epoch
        e["_pump_t"] = self._pump_t_ms(e.get("day"), e.get("ms"))
        e["_received"] = self.now() if self._started else None
        self._entries.append(e)

    def _on_event(self, event: dict[str, Any]) -> None:
        seq = event.get("_seq")
        if isinstance(seq, int):
            self._add_entry(seq, {k: v for k, v in event.items() if k != "_seq"})

    def sync_log(self) -> None:
        """Fetch entries of the current boot that did not arrive as event lines."""
        if not self._answers():
            return
        try:
            entries = self.client.log_all(self._last_seq)
        except PumpError:
            return
        for seq, entry in entries:
            if isinstance(seq, int) and seq > self._last_seq and isinstance(entry, dict):
                self._add_entry(seq, entry)

    def _timed_log(self) -> list[dict[str, Any]]:
        out = []
        for e in self._entries:
            pump_t, epoch = e.pop("_pump_t"), e.pop("_epoch")
            received = e.pop("_received")
            if received is None:
                t = 0                      # set-up, before t=0
            elif pump_t is None or epoch not in self._offsets:
                t = received               # no clock reference for this boot: when it arrived
            else:
                t = pump_t + self._offsets[epoch]
            e["t_ms"] = t
            out.append(e)
        return out

    def sample(self, t_ms: int) -> dict[str, Any] | None:
        """Read status at checkpoint t_ms (recorded at t_ms: the read itself may run the board
        for a moment of virtual time)."""
        st: dict[str, Any] | None = None
        if self._answers():
            try:
                st = self.client.status()
            except PumpError:
                st = None
        if st is not None and self._epoch not in self._offsets:
            clock = st.get("clock")
            if isinstance(clock, list) and len(clock) == 2:
                pump_t = self._pump_t_ms(clock[0], clock[1])
                if pump_t is not None:
                    self._offsets[self._epoch] = (self.now() - pump_t + 500) // 1000 * 1000
        self.rec.samples.append(Sample(t_ms, st))
        return st

    def _answers(self) -> bool:
        """The board is on and its firmware is not hung: a request gets an answer (a hung or
        unpowered board is not asked, so no real-time link time-outs)."""
        board = getattr(self.emu, "board", None)
        return self.powered and (board is None or board.answers())

    def _cmd(self, name: str, *args: Any, **kw: Any) -> tuple[str, dict[str, Any]]:
        try:
            data = getattr(self.client, name)(*args, **kw)
            return "ok", data or {}
        except PumpError as e:
            return str(getattr(e, "reason", "error")), {"msg": str(e)}

    def _request(self, name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        try:
            return "ok", self.client.request(name, args) or {}
        except PumpError as e:
            return str(getattr(e, "reason", "error")), {"msg": str(e)}

    def program(self, rx: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        code, review = self._cmd("stage", rx)
        if code != "ok":
            return code, review
        code, data = self._cmd("commit", review["checksum"], confirm_soft=True)
        if code == "ok":
            for name, (soft, hard) in (review.get("limits") or {}).items():
                self.rec.soft_limit_ng[name] = soft
                self.rec.hard_limit_ng[name] = hard
        return code, data

    # --- set-up -----------------------------------------------------------------------------------
    def setup(self) -> None:
        sc = self.sc
        c = self.client
        steps: list[tuple[str, Any]] = [
            ("set_clock", lambda: self._cmd("set_clock", self.day0, self.ms0)),
            ("program", lambda: self.program(sc.rx)),
            ("refill", lambda: self._refill(sc.rx["reservoir"]["fill_nl"], False, sc.rx)),
        ]
        for what, fn in steps:
            code, data = fn()
            if code == PLANT_REFUSED:
                raise PlantError(f"set-up step {what}: the plant refused: {data['msg']}")
            if code != "ok":
                raise SimulationError(f"set-up step {what} refused by the pump: {code} "
                                      f"{data.get('msg', '')}".rstrip(), code)
        if sc.primed:
            vol = sc.rx["catheter"]["volume_nl"]
            code, data = self._cmd("prime", vol)
            if code != "ok":
                raise SimulationError(f"set-up step prime refused by the pump: {code}", code)
            waited = 0
            while True:
                st = c.status()
                if st.get("state") != "priming":
                    break
                if waited >= MAX_PRIME_MS:
                    raise SimulationError("priming did not finish", "prime_timeout")
                step = MS_PER_MIN
                self.emu.advance(step)
                waited += step
            code, data = self._cmd("set_clock", self.day0, self.ms0)
            if code != "ok":
                raise SimulationError(f"set_clock after priming refused: {code}", code)
        self.sync_log()              # set-up entries: timed t=0 (they happened before it)
        self.rec.baseline = c.status()
        fw = (c.info or {}).get("firmware")
        self.rec.firmware = fw if isinstance(fw, str) else None
        self.t0_emu_ms = int(self.emu.now_ms())
        self._started = True
        self.rec.samples.append(Sample(0, self.rec.baseline))
        if sc.autostart:
            code, data = self._cmd("start")
            self.rec.actions.append(ActionResult(0, "start", code, data if code != "ok" else {}))

    def _refill(self, fill_nl: int, new_admixture: bool,
                rx: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """Refill through the protocol, then the physical act on the plant: the fluid, and the
        admixture it carries (rx's drugs; None: the same drug as before). A fill the plant's
        reservoir cannot hold is refused before the pump is told (result PLANT_REFUSED)."""
        plant = getattr(self.emu, "plant", None)
        if plant is not None and not getattr(self.emu, "syncs_refill", False):
            cap = plant.params.reservoir_capacity_nl
            if not 0 <= fill_nl <= cap:
                return PLANT_REFUSED, {"msg": f"a fill of {fill_nl / 1e6:g} mL does not fit the "
                                       f"plant's {cap / 1e6:g}-mL reservoir"}
        code, data = self._cmd("refill", fill_nl, new_admixture)
        if code == "ok" and plant is not None and not getattr(self.emu, "syncs_refill", False):
            mix = None if rx is None else {d["name"]: float(d["conc_ug_per_ml"])
                                             for d in rx["drugs"]}
            plant.refill(fill_nl, admixture=mix)
        return code, data

    # --- actions ----------------------------------------------------------------------------------
    def perform(self, ev: Event) -> ActionResult:
        a, p = ev.action, ev.params
        plant = self.emu.plant
        code, data = "ok", {}  # type: tuple[str, dict[str, Any]]
        if ev.is_pump_command and not self._answers():
            # the board is off or hung: nothing answers (not sent, so no link time-outs either)
            return ActionResult(ev.at_ms, a, "powered_off" if not self.powered else "no_answer", {})
        if a == "program":
            code, data = self.program(p["rx"])
        elif a == "refill":
            code, data = self._refill(p["fill_nl"], p["rx"] is not None or p["new_admixture"],
                                      p["rx"])
            if code == "ok" and p["rx"] is not None:
                code, data = self.program(p["rx"])
                if code != "ok":
                    data = {**data, "step": "program"}
        elif a == "set_clock":
            code, data = self._cmd("set_clock", p["day"], p["ms"])
        elif a == "traffic":
            if p["every_ms"] == 0:
                for _ in range(p["requests"]):
                    self._poll(p["role"])
            else:
                self._traffic.append([ev.at_ms, p["every_ms"], p["requests"], p["role"]])
                self.advance_to(ev.at_ms)      # the first request goes now
        elif a == "firmware_hang":
            self.emu.board.hang(p["ms"], p["every_boot"])
        elif ev.is_pump_command:
            # a command of the command table: its wire name and arguments, as parsed
            code, data = self._request(a, p)
        elif a == "occlusion":
            plant.occlude(p["severity"])
        elif a in ("clear_occlusion", "dislodge", "reseat", "leak", "clear_leak"):
            getattr(plant, a)()
        elif a == "motor_stall":
            plant.motor_stall(True)
        elif a == "clear_motor_stall":
            plant.motor_stall(False)
        elif a == "battery":
            plant.set_battery_percent(p["percent"])
        elif a == "power_cut":
            plant.power(False)
            self.powered = False
        elif a == "power_restore":
            plant.power(True)
            self.powered = True
        else:  # pragma: no cover - the parser admits only known actions
            raise SimulationError(f"unknown action {a}", "bad_action")
        detail = {} if code == "ok" else data
        return ActionResult(ev.at_ms, a, code, detail)

    # --- the run ----------------------------------------------------------------------------------
    def run(self) -> Recording:
        """Set up (t < 0), then the events and samples to the end."""
        self.setup()
        with gcpolicy.long_run():
            return self.run_events()

    def run_events(self) -> Recording:
        """After setup(): every checkpoint to the end; returns the recording."""
        pending = list(self.sc.events)
        # status is read at every checkpoint but the times of patient boluses only
        others = dataclasses.replace(self.sc, events=tuple(
            e for e in pending if e.action != "patient_bolus"))
        bolus_only = {e.at_ms for e in pending if e.action == "patient_bolus"} \
            - set(checkpoints(others, self.sample_ms))
        for t in checkpoints(self.sc, self.sample_ms):
            self.advance_to(t)
            if t > 0 and t not in bolus_only:
                self.sample(t)
            changed = False
            while pending and pending[0].at_ms <= t:
                ev = pending.pop(0)
                self.rec.actions.append(self.perform(ev))
                changed = changed or ev.action != "patient_bolus"
            if changed:
                self.sample(t)   # the response to the action (a patient bolus's reply says it)
            if t % MS_PER_DAY == 0 or changed:
                self.sync_log()
            if self.progress is not None and t % MS_PER_DAY == 0 and t > 0:
                self.progress(t // MS_PER_DAY, self.sc.days)
        self.sync_log()
        self.rec.log = self._timed_log()
        self._pressure()
        self._drug_truth()
        board = getattr(self.emu, "board", None)
        if board is not None:        # the emulator's truth: every boot after t=0 is a reset
            self.rec.resets = [(t - self.t0_emu_ms, cause) for t, cause in board.boots
                               if t >= self.t0_emu_ms]
        return self.rec

    def _drug_truth(self) -> None:
        """The plant's tip-output truth per drug (pumphil.plant.drugs), from t=0 on."""
        record = getattr(self.emu.plant, "drug_record", None)
        if record is None:
            return
        tip_t, tip_cum, mixes = record()
        catheter_nl = self.sc.rx["catheter"]["volume_nl"]
        peaks = peak_24h_ng(tip_t, tip_cum, mixes, catheter_nl)
        self.rec.peak_24h_ng = {
            d: (ng, None if at is None else at - self.t0_emu_ms) for d, (ng, at) in peaks.items()}
        t_rel = [int(t) - self.t0_emu_ms for t in tip_t]
        self.rec.truth = {d: DrugTruth(t_rel, [float(x) for x in cum])
                          for d, cum in tip_amounts(tip_cum, mixes, catheter_nl).items()}

    def _pressure(self) -> None:
        trace_fn = getattr(self.emu, "pressure_trace", None)
        if trace_fn is None:
            return
        for a in _report.alarm_intervals(self.rec)[:12]:
            t_r = a["raised_ms"]
            lo = max(0, t_r - PRESSURE_BEFORE_MS) + self.t0_emu_ms
            hi = min(self.sc.duration_ms, t_r + PRESSURE_AFTER_MS) + self.t0_emu_ms
            try:
                pts = trace_fn(lo, hi)
            except Exception:  # noqa: BLE001 - a missing trace must not lose the report
                pts = []
            self.rec.pressure.append(PressureWindow(
                a["code"], t_r, [(int(t) - self.t0_emu_ms, int(pa)) for t, pa in pts]))


def open_client(emu: Any) -> PumpClient:
    """The runner's client on a started emulator: a link in this process (Emulator.local_port:
    no socket, no reader thread, the board's step runs in this thread), the emulator's keys.
    Decision: a simulation's host and board share one process, so the protocol's bytes need no
    TCP; the lines, links and their order are those of a socket connection."""
    return PumpClient(emu.local_port(), host_keys.load(emu.key_file), timeout_s=10.0, retries=1)


def start_emulator(scenario: Scenario, *, state_dir: Path | None = None,
                   runtime: str = "cpython") -> Any:
    """A started emulator for the scenario, as ``itpump simulate`` runs it: seeded with the
    scenario's seed, with the plant figures of its [plant] table and the prescription's reservoir.
    Leaves no key file under $ITPUMP_HOME (the runner passes the keys explicitly). The caller
    closes it."""
    from .emulator import Emulator
    from .plant.params import with_overrides

    params = with_overrides(scenario.plant)
    # the plant's reservoir is the one the prescription describes (SynchroMed II: 20 or 40 mL)
    params.reservoir_capacity_nl = float(scenario.rx["reservoir"]["capacity_nl"])
    params.reservoir_fill_nl = float(scenario.rx["reservoir"]["fill_nl"])
    emu = Emulator(state_dir=state_dir, seed=scenario.seed, speed=None, runtime=runtime,
                   plant_params=params)
    # The emulator also copies its key file to $ITPUMP_HOME/keys/ for the CLI; a throw-away
    # simulation board must not leave one there per run: point ITPUMP_HOME at a temporary
    # directory while it starts.
    saved = os.environ.get("ITPUMP_HOME")
    with tempfile.TemporaryDirectory(prefix="itpump-sim-home-") as home:
        os.environ["ITPUMP_HOME"] = home
        try:
            emu.start()
        finally:
            if saved is None:
                os.environ.pop("ITPUMP_HOME", None)
            else:
                os.environ["ITPUMP_HOME"] = saved
    return emu


def run(scenario: Scenario, *, sample_ms: int | None = None,
        state_dir: Path | None = None, runtime: str = "cpython",
        progress: Callable[[int, int], None] | None = None,
        on_runner: Callable[[Runner], None] | None = None) -> Recording:
    """Run the scenario on a fresh emulator (start_emulator). ``on_runner(runner)``, if given, is
    called once the emulator has started and before set-up: observers attach there
    (pumphil.campaign.probe)."""
    emu = start_emulator(scenario, state_dir=state_dir, runtime=runtime)
    client: PumpClient | None = None
    try:
        client = open_client(emu)
        runner = Runner(scenario, emu, client, sample_ms, progress)
        if on_runner is not None:
            on_runner(runner)
        return runner.run()
    finally:
        if client is not None:
            client.close()
        emu.close()


def simulate(scenario: Scenario, report_dir: str | Path | None = None, *,
             sample_ms: int | None = None) -> tuple[dict[str, Any], str, float]:
    """Run + build the report (and write it with plots into report_dir if given).
    Returns (report, summary text, wall seconds of the run)."""
    if report_dir is not None:
        _report.check_writable(report_dir)     # before the run, not after a month of it
    t = time.perf_counter()
    rec = run(scenario, sample_ms=sample_ms)
    wall = time.perf_counter() - t
    if report_dir is not None:
        rep = _report.write_report(rec, report_dir)
    else:
        rep = _report.build_report(rec)
    return rep, _report.summary_text(rec, rep), wall


__all__ = ["PLANT_REFUSED", "PlantError", "Runner", "SimulationError", "checkpoints", "run",
           "simulate"]
