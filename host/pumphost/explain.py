"""Refusals in words: one sentence per problem, in clinical units, with what to do next.

The ONE place where the host turns the pump's reason codes and their structured details
(pumpcore: prescription problems ``[reason, field, details]``, the facade's refusal details, the
library's problems) into text for people. The codes themselves stay what the pump sent: `--json`
prints them untouched. Units come from pumphost.units; a drug's amounts are worded in its
library's dose unit (mg or ug) when the pump named it, else by magnitude.
"""

from __future__ import annotations

import re
from typing import Any

from pumpcore import commands as _commands
from pumpcore import reasons as R

from . import units as U

Details = dict[str, Any]


def _at(ms: Any, d: Details) -> str:
    """When a wait of ms ends, in the pump's local time when the refusal says what time it is
    there ("now": [day, ms]), else this computer's."""
    if not isinstance(ms, int):
        return "later"
    now = d.get("now")
    moment = U.wall_datetime(now[0], now[1]) if isinstance(now, list) and len(now) == 2 \
        else None
    return U.at_after(ms, moment)

_STEP = re.compile(r"^basal\.(steps|days\.(\w+))\[(\d+)\]\.(rate|start)$")
_PERIODIC = re.compile(r"^periodic\[(\d+)\]\.(times_min\[(\d+)\]|volume_nl|duration_ms|times_min)$")
_DRUG = re.compile(r"^drugs\[(\d+)\](?:\.(\w+))?$")
_LIB_DRUG = re.compile(r"^drugs\[(\d+)\]\.(\w+)$")

_FIELD_WORDS = {
    "reservoir.capacity_nl": "reservoir capacity", "reservoir.fill_nl": "reservoir fill",
    "reservoir.low_alert_nl": "low-reservoir alert level", "reservoir.empty_nl": "empty level",
    "catheter.volume_nl": "catheter volume", "patient.volume_nl": "patient bolus volume",
    "patient.duration_ms": "patient bolus duration", "patient.lockout_ms": "patient bolus lockout",
    "patient.max_per_24h": "patient boluses per 24 h", "periodic": "periodic bolus programs",
    "drugs": "drug list", "basal.steps": "basal steps", "": "the prescription",
}
_LIMIT_WORDS = {"hard_ng_per_day": "hard limit", "soft_ng_per_day": "soft limit",
                "conc_ug_per_ml": "concentration", "name": "name"}


def field_words(fld: str, drugs: list[str] | None = None) -> str:
    """A prescription field path in words: "basal step 3 rate (Saturday)", "morphine soft
    limit"."""
    if fld in _FIELD_WORDS:
        return _FIELD_WORDS[fld]
    m = _STEP.match(fld)
    if m:
        day = f" ({m.group(2)})" if m.group(2) else ""
        return f"basal step {int(m.group(3)) + 1} {m.group(4)}{day}"
    m = _PERIODIC.match(fld)
    if m:
        what = m.group(2)
        if what.startswith("times_min["):
            what = f"start time {int(m.group(3)) + 1}"
        else:
            what = {"volume_nl": "volume", "duration_ms": "duration",
                    "times_min": "start times"}[what]
        return f"periodic bolus {int(m.group(1)) + 1} {what}"
    m = _DRUG.match(fld)
    if m:
        i = int(m.group(1))
        name = drugs[i] if drugs and i < len(drugs) else f"drug {i + 1}"
        return name + (" " + _LIMIT_WORDS.get(m.group(2), m.group(2)) if m.group(2) else "")
    return fld


def unit_for(d: Details, units_of: dict[str, str] | None = None) -> str:
    """The dose unit ("mg"/"ug") of the drug a detail names: the pump's, else by magnitude."""
    drug = d.get("drug")
    if units_of and isinstance(drug, str) and drug in units_of:
        return units_of[drug]
    if isinstance(d.get("dose_unit"), str):
        return str(d["dose_unit"])
    biggest = max([v for v in (d.get("value"), d.get("limit"), d.get("max"))
                   if isinstance(v, int)] or [0])
    return "mg" if biggest >= U.NG_PER_MG else "ug"


def _amount(d: Details, key: str, unit: str) -> str:
    v = d.get(key)
    if not isinstance(v, int):
        return "?"
    u = d.get("unit")
    if u == "ng/day":
        return U.dose(v, unit, per_day=True)
    if u == "ng":
        return U.dose(v, unit)
    if u == "ug/mL":
        return U.concentration(v, unit)
    if u == "nL":
        return U.volume(v)
    if u == "nL/h":
        return U.rate(v).split(" (")[0]
    if u == "ms":
        return U.duration(v)
    if u == "min":
        return f"{v // 60:02d}:{v % 60:02d}"
    if u == "%":
        return f"{v} %"
    return f"{v}" + (f" {u}" if u else "")


def _pair(d: Details, unit: str, a: str = "value", b: str = "limit") -> tuple[str, str]:
    va, vb = d.get(a), d.get(b)
    if d.get("unit") in ("ng/day", "ng") and isinstance(va, int) and isinstance(vb, int):
        return U.dose_pair(va, vb, unit, per_day=d.get("unit") == "ng/day")
    return _amount(d, a, unit), _amount(d, b, unit)


def _range(d: Details, unit: str) -> str:
    lo, hi = d.get("min"), d.get("max")
    if lo is None and hi is None:
        return "its range"
    if lo is None:
        return "at most " + _amount({**d, "value": hi}, "value", unit)
    if hi is None:
        return "at least " + _amount({**d, "value": lo}, "value", unit)
    a = _amount({**d, "value": lo}, "value", unit)
    b = _amount({**d, "value": hi}, "value", unit)
    return f"{a} to {b}"


# --- prescription problems -----------------------------------------------------------------------
def problem(p: list[Any], units_of: dict[str, str] | None = None,
            drugs: list[str] | None = None) -> str:
    """One sentence for one validation problem [reason, field, details] of a prescription."""
    reason, fld = p[0], p[1]
    d: Details = p[2] if len(p) > 2 and isinstance(p[2], dict) else {}
    unit = unit_for(d, units_of)
    drug = d.get("drug") if isinstance(d.get("drug"), str) else None
    where = field_words(fld, drugs)
    who = drug or where
    if reason == R.LIBRARY_CONFLICT:
        inner = problem([d.get("conflict", R.INVALID), fld, d], units_of, drugs)
        what = {"program": "the committed program", "pending": "the program about to apply",
                "bridging": "the program waiting behind a bridge bolus"}.get(
                    str(d.get("program")), "the committed program")
        return (f"{inner.rstrip('.')} under the new library, in {what} "
                f"({d.get('checksum')}): program a dose within the new library first, "
                "then load it.")
    if reason == R.HARD_LIMIT:
        v, lim = _pair(d, unit)
        return (f"{who}: {v} would be above its hard limit of {lim}; lower the basal rate, "
                "the boluses or the concentration.")
    if reason == R.TITRATION_STEP:
        cur, v = U.dose_pair(d["current"], d["value"], unit) if "current" in d else ("?", "?")
        lim = U.dose(d.get("limit"), unit, per_day=True)
        return (f"{who}: {cur} to {v} is a larger increase than the library allows in one step "
                f"(at most {lim} now); plan the titration with --plan.")
    if reason == R.TITRATION_INTERVAL:
        wait = d.get("wait_ms")
        return (f"{who}: the last increase was less than {U.duration(d.get('interval_ms'))} ago; "
                f"the next increase is allowed at {_at(wait, d)}.")
    if reason == R.START_DOSE:
        v, lim = _pair(d, unit)
        if d.get("first_program"):
            return (f"{who}: {v} is above the starting dose of {lim}; if the patient already "
                    "receives this dose (pump replacement, transfer), confirm it with "
                    "--continuing.")
        return (f"{who}: {v} is above the starting dose of {lim} for a drug this pump starts; "
                "start at most there and titrate.")
    if reason == R.CONCENTRATION_RANGE:
        lo = U.concentration(d.get("min"), unit)
        hi = U.concentration(d.get("max"), unit)
        v = U.concentration(d.get("value"), unit)
        src = "the library's range" if d.get("in_library") else \
            "the range for a drug without a library entry"
        return f"{who} at {v} is outside {src}, {lo} to {hi}; check the concentration and its unit."
    if reason == R.LIMIT_LOOSENS_LIBRARY:
        v, lim = _pair(d, unit)
        return (f"{where}: {v} is above the hard limit of {lim}; a prescription may only "
                "tighten a hard limit (a soft limit may go up to the hard limit).")
    if reason == R.UNKNOWN_DRUG_NEEDS_LIMITS:
        return (f"{who} has no entry in the pump's drug library: give its "
                f"{d.get('limit', 'hard and soft')} limit (hard_limit_ug_per_day and "
                "soft_limit_ug_per_day).")
    if reason == R.BOLUS_AMOUNT:
        v, lim = _pair(d, unit)
        return (f"{where}: one bolus delivers {v} of {drug}, above the library's largest bolus of "
                f"{lim}; give a smaller volume.")
    if reason == R.RATE_RANGE:
        return (f"{where}: {_amount(d, 'value', unit)} is outside the pump's range; a rate is 0 "
                f"or {_range(d, unit)} (0.048 mL/day at least).")
    if reason == R.STEP_ORDER:
        return (f"{where}: {_amount(d, 'value', unit)}; the first step starts at 00:00 and each "
                "later one after the one before it.")
    if reason == R.TOO_MANY_STEPS:
        return f"{where}: {d.get('value')} steps; a day has at most {d.get('max')}."
    if reason == R.TOO_MANY_DRUGS:
        return f"{d.get('value', 'too many')} drugs; one admixture holds at most {d.get('max', 4)}."
    if reason == R.NO_DRUGS:
        return "the prescription names no drug; add at least one [[drug]]."
    if reason == R.DUPLICATE_DRUG:
        return f"{drug or where} is listed twice; list each drug once."
    if reason == R.RESERVOIR_CAPACITY:
        return (f"{where}: {_amount(d, 'value', unit)}; the pump's reservoir holds 20 or 40 mL.")
    if reason in (R.FILL_RANGE, R.ALERT_RANGE, R.CATHETER_RANGE, R.BOLUS_RANGE,
                  R.LIBRARY_RANGE):
        extra = ""
        if d.get("overlaps"):
            extra = f" (it would overlap {field_words(str(d['overlaps']), drugs)})"
        if reason == R.BOLUS_RANGE and d.get("max_rate_nl_per_h"):
            extra = " (a bolus runs at 1 mL/h at most)"
        if "value" in d:
            return (f"{where}: {_amount(d, 'value', unit)} is outside {_range(d, unit)}"
                    f"{extra}.")
        return f"{where}: out of range{extra}."
    if reason == R.INVALID:
        exp = d.get("expected")
        if exp == "no such key":
            return f"{where}: unknown field (check the spelling)."
        if exp == "present":
            return f"{where}: missing."
        if exp == "soft limit <= hard limit":
            v, lim = U.dose_pair(d["value"], d["max"], unit) if "max" in d else ("?", "?")
            return f"{who}: the soft limit {v} is above the prescription's own hard limit {lim}."
        return f"{where}: invalid" + (f" (expected {exp})." if exp else ".")
    return f"{where}: {reason}."


def library_problem(p: list[Any]) -> tuple[str, str]:
    """(file field, sentence) for a pumpcore.library problem, named as in the library file."""
    from .library_file import FILE_KEY
    reason, fld = p[0], p[1]
    d: Details = p[2] if len(p) > 2 and isinstance(p[2], dict) else {}
    m = _LIB_DRUG.match(fld)
    drug = d.get("drug")
    if m:
        key = FILE_KEY.get(m.group(2), m.group(2))
        where = f"drug[{m.group(1)}]" + (f" ({drug})" if drug else "") + f".{key}"
    else:
        where = f"library.{fld}" if fld in ("name", "version") else fld or "library"
    if reason == R.LIBRARY_RANGE and "value" in d:
        u = d.get("unit")
        shown = {**d, "unit": u}
        if u == "ng/day":
            vals = [U.number(x, U.NG_PER_UG) if isinstance(x, int) else "-"
                    for x in (d.get("value"), d.get("min"), d.get("max"))]
            return where, f"{vals[0]} ug/day is outside {vals[1]} to {vals[2]} ug/day"
        if u == "ng":
            vals = [U.number(x, U.NG_PER_UG) if isinstance(x, int) else "-"
                    for x in (d.get("value"), d.get("min"), d.get("max"))]
            return where, f"{vals[0]} ug is outside {vals[1]} to {vals[2]} ug"
        if u == "ms":
            return where, (f"{U.number(d['value'], U.MS_PER_H)} h is outside "
                           f"{U.number(d['min'], U.MS_PER_H)} to {U.number(d['max'], U.MS_PER_H)} h")
        return where, f"{_amount(shown, 'value', 'ug')} is outside {_range(shown, 'ug')}"
    if reason == R.DUPLICATE_DRUG:
        return where, "the drug is listed twice"
    exp = d.get("expected")
    return where, ("invalid" + (f": expected {exp}" if exp else ""))


# --- the facade's refusals -----------------------------------------------------------------------
def _states(names: list[str]) -> str:
    return " or ".join(s.replace("_", " ") for s in names)


def _arg_words(command: str | None, d: Details) -> str:
    """An argument's bounds in the unit the CLI takes (the command table's shown name)."""
    row = _commands.find(command) if command else None
    arg = row.arg(str(d.get("arg"))) if row is not None and isinstance(d.get("arg"), str) \
        else None
    if arg is None:
        if d.get("unit") == "nL":
            return f"{U.volume(d.get('value'))} is outside {_range(d, 'ug')}"
        if "value" in d:
            return f"{d.get('value')} is outside {_range(d, 'ug')}"
        return "is out of range"
    opt = "--" + arg.shown.replace("_", "-")
    def shown(v: Any) -> str:
        return U.number(v, arg.scale) if isinstance(v, int) else "?"
    return (f"{opt} {shown(d.get('value'))} is outside {shown(d.get('min'))} to "
            f"{shown(d.get('max'))}")


def refusal(reason: str, d: Details, command: str | None = None,
            units_of: dict[str, str] | None = None) -> str:
    """One sentence for a refused command (no problem list), with what to do next."""
    cmd = (command or "this command").replace("_", "-")
    state = str(d.get("state", "")).replace("_", " ")
    if reason == R.NOT_ALLOWED:
        allowed = [str(s) for s in d.get("allowed_in") or []]
        hint = ""
        if "stopped" in allowed and d.get("state") in ("running", "suspended", "priming"):
            hint = "; stop the pump first (itpump stop)"
        elif allowed:
            hint = f"; it is possible when the pump is {_states(allowed)}"
        return f"{cmd} is not possible while the pump is {state or 'in this state'}{hint}."
    if reason == R.NOT_RUNNING:
        return f"the pump is {state or 'not running'}: a patient bolus needs running therapy."
    if reason == R.LOCKOUT:
        lock = U.duration(d.get("lockout_ms"))
        when = _at(d.get("remaining_ms"), d)
        return (f"the patient bolus is locked out ({lock} after the last bolus, programming or "
                f"refill); the next is allowed at {when}.")
    if reason == R.MAX_PER_24H:
        when = _at(d.get("wait_ms"), d)
        return (f"{d.get('count')} of {d.get('max')} patient boluses were given in the last 24 h; "
                f"the next is allowed at {when}.")
    if reason in (R.ALARM, R.ALARM_ACTIVE):
        names = ", ".join(str(a).replace("_", " ") for a in d.get("alarms") or []) or "an alarm"
        return (f"alarms are active ({names}); resolve them and acknowledge them (itpump ack) "
                "first.")
    if reason == R.BOLUS_ACTIVE:
        when = _at(d.get("ms_to_end"), d)
        return f"a {d.get('kind', '')} bolus is running; it ends at {when}."
    if reason == R.DOSE_LIMIT:
        unit = unit_for(d, units_of)
        total = U.dose(d.get("rolling_24h_ng", 0) + d.get("bolus_ng", 0), unit)
        return (f"{d.get('drug')}: this bolus ({U.dose(d.get('bolus_ng'), unit)}) would take the "
                f"last 24 h to {total}, above the hard limit of "
                f"{U.dose(d.get('limit'), unit, per_day=True)}.")
    if reason == R.BOLUS_AMOUNT:
        unit = unit_for(d, units_of)
        v, lim = U.dose_pair(d.get("value", 0), d.get("limit", 0), unit, per_day=False)
        return (f"{d.get('drug')}: this bolus delivers {v}, above the library's largest bolus "
                f"of {lim}; give a smaller volume.")
    if reason == R.NO_PROGRAM:
        return "no program is committed; program one first (itpump program FILE --confirm)."
    if reason == R.PROGRAM_REQUIRED:
        return ("the reservoir was refilled with a new admixture; commit its program first "
                "(itpump program FILE --confirm).")
    if reason == R.NOT_CONFIGURED:
        return "the committed program has no patient bolus."
    if reason == R.CLOCK_NOT_SET:
        return "the pump's clock is not set; set it first (itpump set-clock)."
    if reason == R.NOT_PRIMED:
        vol = d.get("catheter_nl")
        fill = d.get("catheter_fill_nl")
        todo = f" (itpump prime --volume-ul {U.number(vol, U.NL_PER_UL)})" if isinstance(vol, int) \
            else " (itpump prime)"
        return (f"the catheter is not primed ({U.volume(fill)} of {U.volume(vol)}); prime it "
                f"first{todo}.")
    if reason == R.RESERVOIR_EMPTY:
        return (f"the reservoir is empty ({U.volume(d.get('reservoir_nl'))} left); refill it "
                "first (itpump refill --fill-ml V).")
    if reason == R.NOTHING_STAGED:
        return "nothing is staged to commit; stage it first (itpump program FILE)."
    if reason == R.CHECKSUM_MISMATCH:
        return ("what is staged is not what was reviewed (staged meanwhile: "
                f"{d.get('staged')}); review and confirm again.")
    if reason == R.SOFT_LIMIT_UNCONFIRMED:
        parts = []
        daily = d.get("daily_ng") or {}
        limits = d.get("limits") or {}
        for drug in d.get("drugs") or []:
            unit = unit_for({"drug": drug, "limit": (limits.get(drug) or [0, 0])[1]},
                            d.get("units") or units_of)
            v, lim = U.dose_pair(daily.get(drug, 0), (limits.get(drug) or [0])[0] or 0, unit)
            parts.append(f"{drug} {v} is above its soft limit of {lim}")
        for drug in d.get("raised") or []:
            parts.append(f"the prescription raises {drug}'s soft limit above the library's")
        return "; ".join(parts or ["a soft limit needs confirmation"]) + \
            ": confirm with --confirm-soft-limit."
    if reason == R.START_DOSE_UNCONFIRMED:
        parts = []
        for s in d.get("drugs") or []:
            unit = unit_for(s, units_of)
            v, lim = _pair(s, unit)
            parts.append(f"{s.get('drug')} {v} is above its starting dose of {lim}")
        return ("; ".join(parts) + ": if the patient already receives this dose (pump "
                "replacement, transfer), confirm it as continuing therapy with --continuing.")
    if reason == R.UNKNOWN_ALARM:
        active = ", ".join(d.get("active") or []) or "none"
        if d.get("known"):
            return (f"{d.get('alarm')} is not an alarm name; active alarms: {active}; names: "
                    f"{', '.join(d['known'])}.")
        if d.get("alarm"):
            return f"{d.get('alarm')} is not active; active alarms: {active}."
        return f"no alarm is active (active alarms: {active})."
    if reason == R.BAD_VALUE:
        return f"{_arg_words(command, d)}."
    if reason == R.NO_LIBRARY:
        return ("the pump has no drug library, so it refuses every program; load one first "
                "(itpump library push FILE).")
    if reason == R.LOOSENING_UNCONFIRMED:
        return (f"the new library allows more than the current one for "
                f"{', '.join(d.get('drugs') or [])}: confirm with --confirm-loosening.")
    return ""


def sentences(reason: str, data: Details | None, command: str | None = None) -> list[str]:
    """Every sentence for a refusal: one per problem when the pump listed problems."""
    d = data or {}
    units_of = None
    rv = d.get("review")
    if isinstance(rv, dict) and isinstance(rv.get("units"), dict):
        units_of = rv["units"]
    probs = d.get("problems")
    if isinstance(probs, list) and probs:
        out = []
        for p in probs:
            if isinstance(p, list) and len(p) >= 2:
                if len(p) > 2 and isinstance(p[2], dict) and "now" in d:
                    p = [p[0], p[1], {**p[2], "now": d["now"]}]
                if reason in (R.LIBRARY_RANGE,) or (p[0] in (R.LIBRARY_RANGE,)) or \
                        (command in (_commands.LIBRARY_STAGE, _commands.LIBRARY_CHUNK)
                         and p[0] != R.LIBRARY_CONFLICT):
                    fld, text = library_problem(p)
                    out.append(f"{fld}: {text}.")
                else:
                    out.append(problem(p, units_of))
        total = d.get("problems_total")
        if isinstance(total, int) and total > len(out):
            out.append(f"... and {total - len(out)} more problems.")
        return out
    text = refusal(reason, d, command, units_of)
    return [text] if text else []
