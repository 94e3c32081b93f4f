"""Judging a scenario's expectations (:mod:`pumphil.expect`) against a finished run.

:func:`evaluate` gives one :class:`Result` per [[expect]] row (per drug for ``peak_24h =
"each"``): passed or not, the measured value in its unit, the limit, and what the measurement saw.
The formatting helpers (:func:`human_s` here; amounts from pumphost.units, the one unit converter)
are the ones the summary and the HTML page use, so a value reads the same everywhere.

Definitions (docs/simulate.md, "Expectations"): a window ``[from, to)`` holds what happened in it
(alarms by the time they were raised, log entries by their time, actions by their event time);
``after`` latencies run from the event to the first raising at or after it, 0 when the alarm was
already active; ``delivered`` reads the plant's truth (what left the catheter tip) or the pump's
ledger (its status counters at the window's ends); ``peak_24h`` reads the report's plant truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pumphost.units import amount, amount_scale, dose_unit

from .expect import Expectation, count_limit
from .programme import program_ng
from .recording import Recording, alarm_intervals, drug_ng, resets, status_at
from .scenario import format_ms


@dataclass(frozen=True)
class Result:
    """One judged expectation. ``measured``: a number in ``unit`` or a text (a state); ``low`` /
    ``high``: the numeric limits (None = open); ``limit``: the limit as text; ``detail``: what
    the measurement saw (e.g. when the alarm was raised)."""

    expectation: Expectation
    passed: bool
    measured: float | int | str | None
    unit: str
    limit: str
    low: float | None = None
    high: float | None = None
    detail: str = ""
    subject: str = ""                  # the drug a peak_24h "each" row was judged for

    @property
    def text(self) -> str:
        e = self.expectation
        return e.text if not self.subject or e.subject else f"{e.text}: {self.subject}"

    @property
    def shown(self) -> str:
        """The measured value as people read it, in the scale of the limit text."""
        if self.unit == "ug" and isinstance(self.measured, (int, float)):
            label, per = amount_scale(self.measured, self.low, self.high)
            return amount(self.measured, label, per)
        return show(self.measured, self.unit)

    def to_json(self) -> dict[str, Any]:
        e = self.expectation
        return {"row": e.index, "kind": e.kind, "text": self.text, "why": e.why,
                "passed": self.passed, "measured": self.measured, "unit": self.unit,
                "measured_text": self.shown, "limit": self.limit, "low": self.low,
                "high": self.high, "detail": self.detail}


# --- formatting ------------------------------------------------------------------------------------
def human_s(s: float) -> str:
    """Seconds as people read them: "45 s", "2 min 15 s", "3 h 05 min", "2 d 04 h"."""
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s // 60 % 60:02d} min"
    return f"{s // 86400} d {s // 3600 % 24:02d} h"


def show(v: float | int | str | None, unit: str) -> str:
    if v is None:
        return "nothing"
    if isinstance(v, str):
        return v
    if unit == "s":
        return human_s(float(v))
    if unit == "ug":
        return amount(v, *amount_scale(v))
    return f"{v:g}" + (f" {unit}" if unit else "")


# --- evaluation ------------------------------------------------------------------------------------
def evaluate(rec: Recording, report: dict[str, Any]) -> list[Result]:
    """Judge every expectation of the recording's scenario; ``report``: build_report's dict (its
    drugs, alarms and final state are read from it)."""
    out: list[Result] = []
    for e in rec.scenario.expectations:
        out.extend(_JUDGES[e.kind](rec, report, e))
    return out


def _end(rec: Recording, e: Expectation) -> int:
    return e.to_ms if e.to_ms is not None else rec.scenario.duration_ms


def _in(rec: Recording, e: Expectation, t_ms: int) -> bool:
    return e.from_ms <= t_ms < _end(rec, e) or (e.to_ms is None and t_ms == _end(rec, e))


def _counted(e: Expectation, n: int, detail: str = "") -> Result:
    ok = (e.low is None or n >= e.low) and (e.high is None or n <= e.high)
    return Result(e, ok, n, "", count_limit(e.low, e.high),
                  None if e.low is None else float(e.low),
                  None if e.high is None else float(e.high), detail)


def _first(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _judge_alarm(rec: Recording, rep: dict[str, Any], e: Expectation) -> list[Result]:
    ivs = [a for a in alarm_intervals(rec) if not e.subject or a["code"] in e.subject]
    if e.kind == "alarm" and e.after_ms is not None:
        t = e.after_ms
        lim = "raised" if e.within_ms is None else f"<= {human_s(e.within_ms / 1000)}"
        high = None if e.within_ms is None else e.within_ms / 1000
        active = [a for a in ivs if a["raised_ms"] <= t
                  and (a["cleared_ms"] is None or a["cleared_ms"] > t)]
        later = [a for a in ivs if a["raised_ms"] >= t]
        hit = active[0] if active else (later[0] if later else None)
        if hit is None:
            return [Result(e, False, None, "s", lim, None, high, "not raised by the end")]
        lat = max(0, hit["raised_ms"] - t) / 1000
        detail = (f"already active since {format_ms(hit['raised_ms'])}" if active
                  else f"raised {format_ms(hit['raised_ms'])}") + f", {hit['priority']}"
        ok = e.within_ms is None or lat * 1000 <= e.within_ms
        if e.priority is not None and hit["priority"] != e.priority:
            ok = False
            detail += f", not {e.priority}"
        return [Result(e, ok, lat, "s", lim, None, high, detail)]
    hits = [a for a in ivs if _in(rec, e, a["raised_ms"])
            and (e.priority is None or a["priority"] == e.priority)]
    detail = _first([f"{a['code']} {format_ms(a['raised_ms'])}" for a in hits])
    if e.kind == "no_alarm":
        return [Result(e, not hits, len(hits), "", "= 0", None, 0.0, detail)]
    return [_counted(e, len(hits), detail)]


def _judge_delivered(rec: Recording, rep: dict[str, Any], e: Expectation) -> list[Result]:
    drug = e.subject[0]
    t0, t1 = e.from_ms, _end(rec, e)
    measured: float | None = None
    if e.source == "plant":
        truth = rec.truth.get(drug)
        if truth is not None:
            measured = truth.between(t0, t1) / 1000
    else:
        a, b = status_at(rec, t0), status_at(rec, t1)
        if a is not None and b is not None:
            measured = (drug_ng(b).get(drug, 0) - drug_ng(a).get(drug, 0)) / 1000
    low: float | None
    high: float | None
    if e.expected_ug is not None or e.program:
        ref = program_ng(rec, t0, t1).get(drug, 0.0) / 1000 if e.program \
            else float(e.expected_ug or 0.0)
        tol = (e.tolerance_pct or 0.0) / 100
        low, high = ref * (1 - tol), ref * (1 + tol)
        limit = f"{amount(ref, *amount_scale(measured, low, high))} +-{e.tolerance_pct:g} %"
        detail = "" if measured is None or not ref else \
            f"{100 * (measured - ref) / ref:+.2f} % of {'the program' if e.program else 'expected'}"
    else:
        low, high = e.at_least_ug, e.at_most_ug
        sc = amount_scale(measured, low, high)
        limit = " and ".join(x for x in (f">= {amount(low, *sc)}" if low is not None else "",
                                         f"<= {amount(high, *sc)}" if high is not None else "")
                             if x)
        detail = ""
    if measured is None:
        return [Result(e, False, None, "ug", limit, low, high, f"no {e.source} record")]
    ok = (low is None or measured >= low - 1e-9) and (high is None or measured <= high + 1e-9)
    return [Result(e, ok, round(measured, 3), "ug", limit, low, high, detail)]


def _judge_peak(rec: Recording, rep: dict[str, Any], e: Expectation) -> list[Result]:
    out = []
    for name in e.subject or tuple(rep["drugs"]):
        d = rep["drugs"].get(name)
        peak = None if d is None else d["peak_24h_ug"]
        limit_ug = e.at_most_ug if e.at_most_ug is not None else \
            (None if d is None else d["hard_limit_ug_per_day"])
        lim_text = "no limit known" if limit_ug is None else \
            f"<= {amount(limit_ug, *amount_scale(peak, limit_ug))}" + (
                "" if e.at_most_ug is not None else " (hard limit)")
        ok = peak is not None and limit_ug is not None and peak <= limit_ug
        detail = "" if d is None or d["peak_24h_end_s"] is None else \
            f"window ending {format_ms(int(d['peak_24h_end_s'] * 1000))}"
        out.append(Result(e, ok, peak, "ug", lim_text, None, limit_ug, detail,
                          subject=name if not e.subject else ""))
    return out


def _judge_state(rec: Recording, rep: dict[str, Any], e: Expectation) -> list[Result]:
    if e.kind == "final_state":
        state = rep["final"]["state"]
        detail = ""
    else:
        assert e.at_ms is not None
        st = status_at(rec, e.at_ms)
        state = None if st is None else st.get("state")
        detail = "status read at or after " + format_ms(e.at_ms)
    limit = ("= " if len(e.subject) == 1 else "one of ") + ", ".join(e.subject)
    return [Result(e, state in e.subject, state, "", limit, detail=detail)]


def _judge_resets(rec: Recording, rep: dict[str, Any], e: Expectation) -> list[Result]:
    hits = [(t, c) for t, c in resets(rec) if (not e.subject or c in e.subject)
            and _in(rec, e, t)]
    return [_counted(e, len(hits), _first([f"{c} {format_ms(t)}" for t, c in hits]))]


def _judge_log(rec: Recording, rep: dict[str, Any], e: Expectation) -> list[Result]:
    hits = [x for x in rec.log if x.get("kind") == e.subject[0]
            and (e.code is None or x.get("code") == e.code) and _in(rec, e, int(x["t_ms"]))]
    return [_counted(e, len(hits), _first([format_ms(int(x["t_ms"])) for x in hits]))]


def _judge_actions(rec: Recording, rep: dict[str, Any], e: Expectation) -> list[Result]:
    want_ok = e.kind == "accepted"
    hits = [a for a in rec.actions if a.action in e.subject and _in(rec, e, a.t_ms)
            and (a.result == "ok") == want_ok and (not e.reasons or a.result in e.reasons)]
    detail = _first([f"{format_ms(a.t_ms)}" + ("" if want_ok else f" {a.result}")
                     for a in hits])
    return [_counted(e, len(hits), detail)]


def _judge_patient_bolus(rec: Recording, rep: dict[str, Any], e: Expectation) -> list[Result]:
    pb = rep["patient_bolus"]
    which = e.subject[0]
    if which != "denied":
        n = int(pb[which])
    else:
        n = sum(v for k, v in pb["denied"].items() if not e.reasons or k in e.reasons)
    return [_counted(e, n)]


_JUDGES: dict[str, Callable[[Recording, dict[str, Any], Expectation], list[Result]]] = {
    "alarm": _judge_alarm, "no_alarm": _judge_alarm, "delivered": _judge_delivered,
    "peak_24h": _judge_peak, "final_state": _judge_state, "state": _judge_state,
    "resets": _judge_resets, "log": _judge_log, "refused": _judge_actions,
    "accepted": _judge_actions, "patient_bolus": _judge_patient_bolus,
}


__all__ = ["Result", "amount", "amount_scale", "dose_unit", "evaluate", "human_s", "show"]
