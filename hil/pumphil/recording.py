"""What a scenario run recorded (:class:`Recording`), and the questions every reader of it asks.

The runner (:mod:`pumphil.simulate`) fills a Recording with what it read through the protocol
(status samples, event-log entries, the results of the scenario's actions), the emulator's
pressure samples around alarms and the plant's drug truth. The report (:mod:`pumphil.report`) and
the expectations (:mod:`pumphil.expect`) read it through the helpers here, so both answer "which
status was current at t", "which alarms were raised when" and "what reached the tip" the same way.

Times are ms from t=0 (the scenario's start) unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .scenario import Scenario


@dataclass
class Sample:
    """One status read through the protocol at ``t_ms`` (ms from t=0); ``status`` None when the
    pump did not answer (powered off)."""

    t_ms: int
    status: dict[str, Any] | None


@dataclass
class ActionResult:
    t_ms: int
    action: str
    result: str            # "ok", the pump's reason code, or powered_off / no_answer / plant_refused
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class PressureWindow:
    """Pressure the firmware sampled around one alarm: (ms from t=0, Pa) pairs."""

    code: str
    raised_ms: int
    trace: list[tuple[int, int]]


@dataclass
class DrugTruth:
    """The plant's truth for one drug (pumphil.plant.drugs): cumulative ng that left the catheter
    tip at each tip-output point (``t_ms`` ascending, from t=0; set-up points are negative)."""

    t_ms: list[int]
    cum_ng: list[float]

    def at(self, t_ms: int) -> float:
        """Cumulative ng out of the tip at t_ms (linear between points; 0 before the first)."""
        import bisect

        i = bisect.bisect_right(self.t_ms, t_ms)
        if i == 0:
            return 0.0
        if i == len(self.t_ms):
            return self.cum_ng[-1]
        t0, t1 = self.t_ms[i - 1], self.t_ms[i]
        c0, c1 = self.cum_ng[i - 1], self.cum_ng[i]
        return c0 + (c1 - c0) * (t_ms - t0) / (t1 - t0)

    def between(self, from_ms: int, to_ms: int) -> float:
        """ng out of the tip in [from_ms, to_ms)."""
        return max(0.0, self.at(to_ms) - self.at(from_ms))


@dataclass
class Recording:
    scenario: Scenario
    stroke_nl: int
    samples: list[Sample] = field(default_factory=list)   # ascending t_ms
    log: list[dict[str, Any]] = field(default_factory=list)  # entries + "t_ms" (from t=0)
    actions: list[ActionResult] = field(default_factory=list)
    pressure: list[PressureWindow] = field(default_factory=list)
    baseline: dict[str, Any] | None = None    # status at t=0 before anything happened
    # the plant's truth: {drug: (peak ng in any 24 h at the catheter tip, end of that window in
    # ms from t=0 or None)}; and the limits (ng/day) of the last program the pump accepted
    peak_24h_ng: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    hard_limit_ng: dict[str, int | None] = field(default_factory=dict)
    soft_limit_ng: dict[str, int | None] = field(default_factory=dict)
    # the plant's tip-output truth per drug (expectations on delivered amounts); {} when the
    # emulator has no drug record
    truth: dict[str, DrugTruth] = field(default_factory=dict)
    # resets after t=0 as the emulator saw them: (ms from t=0, cause); None: take them from the
    # pump's log
    resets: list[tuple[int, str]] | None = None
    # the firmware version the pump's verified hello named (None: never asked)
    firmware: str | None = None
    # the interpreter the firmware ran on (pumphil.emulator.RUNTIMES)
    runtime: str = "cpython"


def drug_ng(status: dict[str, Any] | None) -> dict[str, int]:
    """The pump's cumulative ng per drug at the catheter tip from one status
    (``delivered_drug``: {drug: [ug, ng remainder]})."""
    out: dict[str, int] = {}
    for name, pair in ((status or {}).get("delivered_drug") or {}).items():
        if isinstance(pair, list) and len(pair) == 2:
            out[name] = int(pair[0]) * 1000 + int(pair[1])
    return out


def status_at(rec: Recording, t_ms: int) -> dict[str, Any] | None:
    """The first answered status sampled at or after t_ms (before any action at that time),
    else the last answered one (None if there is none)."""
    last = None
    for s in rec.samples:
        if s.status is None:
            continue
        if s.t_ms >= t_ms:
            return s.status
        last = s.status
    return last


def final_status(rec: Recording) -> dict[str, Any] | None:
    for s in reversed(rec.samples):
        if s.status is not None:
            return s.status
    return rec.baseline


def alarm_intervals(rec: Recording) -> list[dict[str, Any]]:
    """Alarms in the order raised: code, priority, raised/cleared ms from t=0 (cleared None =
    still active at the end). An alarm raised again after clearing is a new interval."""
    out: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    for e in rec.log:
        kind, code = e.get("kind"), e.get("code")
        if not isinstance(code, str):
            continue
        if kind == "alarm_raised":
            if code in open_:
                continue
            prio = (e.get("data") or {}).get("priority")
            iv = {"code": code, "priority": prio, "raised_ms": int(e["t_ms"]), "cleared_ms": None}
            out.append(iv)
            open_[code] = iv
        elif kind == "alarm_cleared" and code in open_:
            open_.pop(code)["cleared_ms"] = int(e["t_ms"])
    return out


def resets(rec: Recording) -> list[tuple[int, str]]:
    """Every reset after t=0: (ms from t=0, cause); the emulator's record when it has one, else
    the pump's `reset` log entries."""
    if rec.resets is not None:
        return rec.resets
    return [(e["t_ms"], str(e.get("code"))) for e in rec.log if e.get("kind") == "reset"]


def fault_latencies(rec: Recording) -> list[dict[str, Any]]:
    """For every fault the scenario injected (an action of scenario.FAULT_ALARMS), the first alarm
    it should raise: from the fault to the first raising of one of its codes at or after it and
    before the same fault is injected again (or the end). An alarm already active when the fault
    came counts with latency 0 (``already_active``). Entries: fault, t_ms, alarm (None: not
    raised), raised_ms, latency_ms, already_active."""
    from .scenario import FAULT_ALARMS

    ivs = alarm_intervals(rec)
    evs = [e for e in rec.scenario.events if e.action in FAULT_ALARMS
           and FAULT_ALARMS[e.action] and _is_fault(e.action, e.params)]
    out: list[dict[str, Any]] = []
    for k, ev in enumerate(evs):
        codes = FAULT_ALARMS[ev.action]
        nxt = next((e.at_ms for e in evs[k + 1:] if e.action == ev.action), None)
        active = [a for a in ivs if a["code"] in codes and a["raised_ms"] <= ev.at_ms
                  and (a["cleared_ms"] is None or a["cleared_ms"] > ev.at_ms)]
        later = [a for a in ivs if a["code"] in codes and a["raised_ms"] >= ev.at_ms
                 and (nxt is None or a["raised_ms"] < nxt)]
        hit = active[0] if active else (later[0] if later else None)
        out.append({"fault": ev.action, "t_ms": ev.at_ms, "event": ev.index,
                    "alarm": None if hit is None else hit["code"],
                    "priority": None if hit is None else hit["priority"],
                    "raised_ms": None if hit is None else hit["raised_ms"],
                    "latency_ms": None if hit is None else max(0, hit["raised_ms"] - ev.at_ms),
                    "already_active": bool(active)})
    return out


def _is_fault(action: str, params: dict[str, Any]) -> bool:
    """A hang of 0 s ends an every-boot hang: not a fault."""
    return not (action == "firmware_hang" and not params.get("ms"))


__all__ = ["ActionResult", "DrugTruth", "PressureWindow", "Recording", "Sample",
           "alarm_intervals", "drug_ng", "fault_latencies", "final_status", "resets", "status_at"]
