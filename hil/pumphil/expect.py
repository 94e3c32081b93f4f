"""Scenario expectations: the ``[[expect]]`` rows of a scenario file (docs/simulate.md).

A row states one thing the run must show, named by exactly one *subject* key:

======================  =============================================================================
``alarm = CODE``        the alarm is raised; with ``after = EVENT`` and ``within = DURATION``: raised
                        within that time of the event (the fault-to-alarm latency); else counted
                        (default ``at_least = 1``). Optional ``priority``, ``from``/``to``.
``no_alarm = CODE``     no such alarm is raised (a code, a list of codes, or ``"any"``); optional
                        ``priority`` (e.g. no high-priority alarm of any kind), ``from``/``to``.
``delivered = DRUG``    what left the catheter tip: ``expected_ug`` or ``expected = "program"`` (the
                        programme's integral) with ``tolerance_pct``, or ``at_most_ug`` /
                        ``at_least_ug``; ``source = "plant"`` (the plant's truth, default) or
                        ``"pump"`` (the pump's own ledger); optional ``from``/``to``.
``peak_24h = DRUG``     the plant's true largest amount in any 24 h (or ``"each"`` drug) is at most
                        ``at_most_ug`` (default: the drug's hard limit, the pump's first promise).
``final_state = S``     the last status read shows state S (or one of a list).
``state = S``           the state at ``at`` (an event time) is S (or one of a list).
``resets = CAUSE``      resets after t=0 with that cause (``power_on``, ``watchdog``, ``soft``,
                        ``unknown``, a list, or ``"any"``), counted.
``log = KIND``          pump log entries of that kind (optional ``code``), counted.
``refused = ACTION``    the scenario's actions the pump refused (optional ``reason``: a code or
                        a list), counted (default ``at_least = 1``).
``accepted = ACTION``   the scenario's actions the pump carried out, counted (default at least 1).
``patient_bolus = X``   the pump's patient-bolus counter X (``requested``, ``delivered``,
                        ``denied``; optional ``reason`` for denied), counted.
======================  =============================================================================

Counted rows take ``count`` (exactly), ``at_least`` and/or ``at_most``. Every row may carry
``why`` (what it proves: shown in the summary and the report). Times: ``from``/``to``/``at`` are
event times (``"1d 08:30"``, ``"36h"``) on the scenario's time line, ``[from, to)``; ``within`` is
a duration. ``after`` names an event by its ``id`` key, or by its action when exactly one event
has that action; a repeating event counts from its first time.

:func:`parse_rows` checks rows (problems as ``expect[i].key: reason``, in the scenario's error);
:mod:`pumphil.judge` judges them against a finished run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pumpcore import alarms as _alarms
from pumpcore import pump as _pump
from pumpcore import reasons as _reasons
from pumpcore import statemachine as _sm

from .scenario import ACTIONS, Event, format_ms, parse_at, parse_duration

COUNT_KEYS = ("count", "at_least", "at_most")
PRIORITIES = ("low", "medium", "high")
SOURCES = ("plant", "pump")
PB_COUNTERS = ("requested", "delivered", "denied")
ANY = "any"

# subject key -> the other keys it takes ("why" is always allowed)
KINDS: dict[str, tuple[str, ...]] = {
    "alarm": ("after", "within", "priority", "from", "to", *COUNT_KEYS),
    "no_alarm": ("priority", "from", "to"),
    "delivered": ("expected_ug", "expected", "tolerance_pct", "at_most_ug", "at_least_ug",
                  "source", "from", "to"),
    "peak_24h": ("at_most_ug",),
    "final_state": (),
    "state": ("at",),
    "resets": ("from", "to", *COUNT_KEYS),
    "log": ("code", "from", "to", *COUNT_KEYS),
    "refused": ("reason", "from", "to", *COUNT_KEYS),
    "accepted": ("from", "to", *COUNT_KEYS),
    "patient_bolus": ("reason", *COUNT_KEYS),
}
#: counted kinds that need an explicit count (no sensible default)
COUNT_REQUIRED = ("resets", "patient_bolus")


@dataclass(frozen=True)
class Expectation:
    """One parsed [[expect]] row. ``subject``: the codes/drugs/states/causes/actions it names
    (() = any). Times in ms from t=0; ``to_ms`` None = the end. ``low``/``high``: count bounds
    (None = open)."""

    index: int
    kind: str
    subject: tuple[str, ...]
    text: str
    why: str = ""
    from_ms: int = 0
    to_ms: int | None = None
    after_event: int | None = None     # file position of the event `after` names
    after_ms: int | None = None
    within_ms: int | None = None
    priority: str | None = None
    low: int | None = None
    high: int | None = None
    code: str | None = None            # log entry code filter
    reasons: tuple[str, ...] = ()      # refusal / denial reasons (() = any)
    expected_ug: float | None = None
    program: bool = False              # expected = "program"
    tolerance_pct: float | None = None
    at_most_ug: float | None = None
    at_least_ug: float | None = None
    source: str = "plant"
    at_ms: int | None = None


# --- texts -----------------------------------------------------------------------------------------
def count_limit(low: int | None, high: int | None) -> str:
    if low is not None and low == high:
        return f"= {low}"
    if low is not None and high is not None:
        return f"{low}..{high}"
    if low is not None:
        return f">= {low}"
    return f"<= {high}"


# --- parsing ---------------------------------------------------------------------------------------
Bad = Callable[[str, str], None]


def _names(v: Any) -> tuple[str, ...] | None:
    if isinstance(v, str) and v:
        return (v,)
    if isinstance(v, list) and v and all(isinstance(x, str) and x for x in v):
        return tuple(v)
    return None


def _number(v: Any) -> Decimal | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


class _Row:
    def __init__(self, row: dict[str, Any], i: int, bad: Bad) -> None:
        self.row, self.fld, self.bad = row, f"expect[{i}]", bad
        self.ok = True

    def err(self, key: str, why: str) -> None:
        self.bad(f"{self.fld}.{key}" if key else self.fld, why)
        self.ok = False

    def names(self, key: str, allowed: tuple[str, ...], what: str, any_ok: bool = False
              ) -> tuple[str, ...]:
        got = _names(self.row[key])
        if got is None:
            self.err(key, f"must be {what} or a list of them")
            return ()
        if any_ok and got == (ANY,):
            return ()
        unknown = [x for x in got if x not in allowed]
        if unknown:
            self.err(key, f"unknown {what} {', '.join(map(repr, unknown))} (one of: "
                     + ", ".join(allowed) + (", any" if any_ok else "") + ")")
        return got

    def time(self, key: str, duration_ms: int | None) -> int | None:
        if key not in self.row:
            return None
        try:
            t = parse_at(self.row[key])
        except (TypeError, ValueError) as e:
            self.err(key, str(e))
            return None
        if duration_ms is not None and t > duration_ms:
            self.err(key, f"{format_ms(t)} is after the end of the scenario")
        return t

    def whole(self, key: str) -> int | None:
        v = self.row.get(key)
        if key not in self.row:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            self.err(key, "must be a whole number >= 0")
            return None
        return v

    def amount(self, key: str, positive: bool = False) -> float | None:
        if key not in self.row:
            return None
        d = _number(self.row[key])
        if d is None or d < 0 or (positive and d == 0):
            self.err(key, "must be a number " + ("> 0" if positive else ">= 0"))
            return None
        return float(d)


def parse_rows(rows: Any, bad: Bad, events: list[Event], ids: dict[str, int],
               rx: dict[str, Any] | None, duration_ms: int | None) -> list[Expectation]:
    """The scenario's ``expect`` array -> Expectations; every problem goes to ``bad(field, why)``.
    ``events``: the parsed events (copies of repeating ones included); ``ids``: event id -> file
    position; ``rx``: the set-up prescription (drug names); drugs named by later prescriptions
    of the events are accepted too."""
    if not isinstance(rows, list):
        bad("expect", "must be [[expect]] tables")
        return []
    drugs = _drug_names(rx, events)
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            bad(f"expect[{i}]", "must be a table ([[expect]])")
            continue
        e = _parse_row(_Row(row, i, bad), i, events, ids, drugs, duration_ms)
        if e is not None:
            out.append(e)
    return out


def _drug_names(rx: dict[str, Any] | None, events: list[Event]) -> list[str]:
    names: list[str] = []
    for r in [rx] + [e.params.get("rx") for e in events]:
        for d in (r or {}).get("drugs") or []:
            if d.get("name") not in names:
                names.append(d["name"])
    return names


def _parse_row(r: _Row, i: int, events: list[Event], ids: dict[str, int], drugs: list[str],
               duration_ms: int | None) -> Expectation | None:
    row = r.row
    subjects = [k for k in row if k in KINDS]
    if len(subjects) != 1:
        r.err("", "needs exactly one of: " + ", ".join(KINDS)
              + (f" (has {', '.join(subjects)})" if subjects else ""))
        return None
    kind = subjects[0]
    allowed = set(KINDS[kind]) | {kind, "why"}
    for k in row:
        if k not in allowed:
            r.err(k, f"unknown key for {kind!r} (allowed: {', '.join(sorted(allowed - {kind}))})")
    why = row.get("why", "")
    if not isinstance(why, str):
        r.err("why", "must be a string")
        why = ""
    kw: dict[str, Any] = {"why": why}
    from_ms = r.time("from", duration_ms)
    to_ms = r.time("to", duration_ms)
    if from_ms is not None and to_ms is not None and to_ms <= from_ms:
        r.err("to", "must be after from")
    kw["from_ms"] = from_ms or 0
    kw["to_ms"] = to_ms
    if "priority" in row:
        if row["priority"] not in PRIORITIES:
            r.err("priority", "must be one of: " + ", ".join(PRIORITIES))
        kw["priority"] = row["priority"]
    # counts
    low, high = r.whole("at_least"), r.whole("at_most")
    if "count" in row:
        if "at_least" in row or "at_most" in row:
            r.err("count", "count (exactly) excludes at_least and at_most")
        low = high = r.whole("count")
    if low is not None and high is not None and low > high:
        r.err("at_most", "must not be below at_least")
    counted = any(k in row for k in COUNT_KEYS)
    if kind in COUNT_REQUIRED and not counted:
        r.err(kind, "needs count, at_least or at_most")
    if not counted and kind in ("alarm", "log", "refused", "accepted"):
        low = 1
    kw["low"], kw["high"] = low, high
    when = _window_text(from_ms, to_ms)

    subject: tuple[str, ...] = ()
    text = ""
    if kind in ("alarm", "no_alarm"):
        subject = r.names(kind, _alarms.CODES, "alarm code", any_ok=kind == "no_alarm")
        if kind == "alarm" and len(subject) > 1:
            r.err(kind, "names one alarm code (use several rows)")
        prio = f"{kw['priority']}-priority " if kw.get("priority") else ""
        if kind == "no_alarm":
            what = " or ".join(subject) + " " if subject else ""
            text = f"no {prio}{what}alarm{when}"
        elif "after" in row or "within" in row:
            if counted:
                r.err(kind, "after/within measure a latency: no count keys")
            if "after" not in row:
                r.err("after", "missing (within is counted from an event)")
            ev = _resolve_after(r, row.get("after"), events, ids)
            within = None
            if "within" in row:
                try:
                    within = parse_duration(row["within"])
                except (TypeError, ValueError) as e:
                    r.err("within", str(e))
            if ev is not None:
                kw["after_event"], kw["after_ms"] = ev.index, ev.at_ms
                label = str(row["after"])
                text = (f"{prio}{subject[0] if subject else '?'} alarm "
                        + (f"within {row['within']} " if within is not None else "")
                        + f"after {label} ({ev.action} at {format_ms(ev.at_ms)})")
            kw["within_ms"] = within
        else:
            text = f"{prio}{subject[0] if subject else '?'} alarm raised " \
                   f"{count_limit(low, high)} time(s){when}"
    elif kind == "delivered":
        subject = r.names(kind, tuple(drugs), "drug of the prescription")
        if len(subject) > 1:
            r.err(kind, "names one drug (use several rows)")
        forms = [k for k in ("expected_ug", "expected") if k in row]
        bounds = [k for k in ("at_most_ug", "at_least_ug") if k in row]
        if len(forms) > 1 or (forms and bounds) or not (forms or bounds):
            r.err(kind, "needs expected_ug or expected = \"program\" (with tolerance_pct), or "
                  "at_most_ug / at_least_ug")
        if forms and "tolerance_pct" not in row:
            r.err("tolerance_pct", "missing (e.g. 2 for +-2 %)")
        if "tolerance_pct" in row and not forms:
            r.err("tolerance_pct", "goes with expected_ug or expected")
        if "expected" in row and row["expected"] != "program":
            r.err("expected", 'must be "program" (or give expected_ug)')
        kw["program"] = row.get("expected") == "program"
        kw["expected_ug"] = r.amount("expected_ug")
        kw["tolerance_pct"] = r.amount("tolerance_pct")
        kw["at_most_ug"], kw["at_least_ug"] = r.amount("at_most_ug"), r.amount("at_least_ug")
        src = row.get("source", "plant")
        if src not in SOURCES:
            r.err("source", 'must be "plant" (what reached the tip) or "pump" (its ledger)')
        kw["source"] = src
        name = subject[0] if subject else "?"
        if forms:
            ref = "the program" if kw["program"] else f"{row.get('expected_ug')} ug"
            text = f"{name} delivered{when} within +-{row.get('tolerance_pct')} % of {ref}"
        else:
            parts = [f">= {row['at_least_ug']} ug" if "at_least_ug" in row else "",
                     f"<= {row['at_most_ug']} ug" if "at_most_ug" in row else ""]
            text = f"{name} delivered{when} " + " and ".join(p for p in parts if p)
        text += f" ({src})"
    elif kind == "peak_24h":
        if row[kind] == "each":
            subject = ()
        else:
            subject = r.names(kind, tuple(drugs), "drug of the prescription")
        kw["at_most_ug"] = r.amount("at_most_ug")
        lim = f"{row['at_most_ug']} ug" if "at_most_ug" in row else "the hard limit"
        text = f"true peak 24 h of {' and '.join(subject) or 'each drug'} at most {lim}"
    elif kind in ("final_state", "state"):
        subject = r.names(kind, _sm.STATES, "state")
        if kind == "state":
            if "at" not in row:
                r.err("at", "missing (the time the state is read)")
            kw["at_ms"] = r.time("at", duration_ms)
            at = row.get("at")
            text = f"state at {at} is {' or '.join(subject)}"
        else:
            text = f"final state is {' or '.join(subject)}"
    elif kind == "resets":
        subject = r.names(kind, _pump.RESET_CAUSES, "reset cause", any_ok=True)
        text = f"{' or '.join(subject) or 'any'} resets {count_limit(low, high)}{when}"
    elif kind == "log":
        v = row[kind]
        if not isinstance(v, str) or not v.replace("_", "").isalpha() or not v.islower():
            r.err(kind, "must be a log entry kind (lowercase word, e.g. \"bolus_start\")")
        subject = (str(v),)
        if "code" in row:
            if not isinstance(row["code"], str):
                r.err("code", "must be a string")
            kw["code"] = row["code"]
        code = f" ({row['code']})" if "code" in row else ""
        text = f"log {v}{code} entries {count_limit(low, high)}{when}"
    elif kind in ("refused", "accepted"):
        subject = r.names(kind, tuple(ACTIONS), "action")
        if "reason" in row:
            got = _names(row["reason"])
            if got is None:
                r.err("reason", "must be a reason code or a list of them")
            kw["reasons"] = got or ()
        why_not = f" ({' or '.join(kw.get('reasons', ()))})" if kw.get("reasons") else ""
        text = f"{' or '.join(subject)} {kind}{why_not} {count_limit(low, high)} time(s){when}"
    elif kind == "patient_bolus":
        subject = r.names(kind, PB_COUNTERS, "patient-bolus counter")
        if "reason" in row:
            if subject != ("denied",):
                r.err("reason", 'goes with patient_bolus = "denied"')
            kw["reasons"] = r.names("reason", _reasons.PATIENT_BOLUS_DENIALS, "denial reason")
        why_not = f" ({' or '.join(kw.get('reasons', ()))})" if kw.get("reasons") else ""
        text = f"patient boluses {' '.join(subject)}{why_not} {count_limit(low, high)}"
    if not r.ok:
        return None
    return Expectation(index=i, kind=kind, subject=subject, text=text, **kw)


def _window_text(from_ms: int | None, to_ms: int | None) -> str:
    if from_ms is None and to_ms is None:
        return ""
    a = format_ms(from_ms or 0)
    return f" in [{a}, {format_ms(to_ms)})" if to_ms is not None else f" from {a}"


def _resolve_after(r: _Row, v: Any, events: list[Event], ids: dict[str, int]) -> Event | None:
    if v is None:
        return None
    if not isinstance(v, str):
        r.err("after", "must be an event id or an action name")
        return None
    if v in ids:
        pos = ids[v]
    else:
        positions = sorted({e.index for e in events if e.action == v})
        if not positions:
            r.err("after", f"no event has id or action {v!r}")
            return None
        if len(positions) > 1:
            r.err("after", f"{len(positions)} events have action {v!r}: give the one you mean "
                  "an id (id = \"...\") and name it")
            return None
        pos = positions[0]
    return min((e for e in events if e.index == pos), key=lambda e: e.at_ms)


__all__ = ["ANY", "COUNT_KEYS", "Expectation", "KINDS", "count_limit", "parse_rows"]
