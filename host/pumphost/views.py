"""What people read: the pump's status, log, events, program review, library and titration plan
as text tables in clinical units (pumphost.units), local wall time and named fields.

Pure functions: data in (what the pump replied, in wire units), text out. Tables are drawn with
`rich` into a string (no colour, a fixed width when the output is not a terminal, so pipes, CI
logs and the documentation get the same text). `--json` output never comes through here.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from typing import Any

from pumpcore.reservoir import MS_CAP as RESERVOIR_HORIZON_MS  # the pump's horizon
from rich import box
from rich.console import Console
from rich.table import Table

from . import explain
from . import units as U

WIDTH = 100     # columns when stdout is not a terminal (pipes, CI logs, docs)



def _console() -> Console:
    width = shutil.get_terminal_size((WIDTH, 24)).columns if sys.stdout.isatty() else WIDTH
    return Console(file=io.StringIO(), width=max(width, 60), color_system=None,
                   force_terminal=False, highlight=False, emoji=False)


def render(*items: Any) -> str:
    c = _console()
    for it in items:
        c.print(it)
    out = c.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in out.splitlines())


def table(*columns: str, title: str | None = None) -> Table:
    t = Table(*columns, box=box.SIMPLE_HEAD, title=title, title_justify="left",
              show_edge=False, pad_edge=False)
    return t


# --- generic values by their wire-unit suffix ----------------------------------------------------
def value_text(key: str, v: Any, unit: str = "ug") -> str:
    """A value named by a wire-unit key in words: *_nl -> mL/uL, *_ms -> a duration, *_ng ->
    the drug's unit, *_nl_per_h -> a rate; anything else as it is."""
    if isinstance(v, bool) or v is None:
        return "yes" if v is True else "no" if v is False else "-"
    if isinstance(v, int):
        if key.endswith("_nl_per_h"):
            return U.rate(v)
        if key.endswith("_nl"):
            return U.volume(v)
        if key.endswith("_ms"):
            return U.duration(v)
        if key.endswith("_ng_per_day"):
            return U.dose(v, unit, per_day=True)
        if key.endswith("_ng"):
            return U.dose(v, unit)
        if key.endswith("_ug_per_ml"):
            return U.concentration(v, unit)
        if key.endswith("_s"):
            return U.duration(v * 1000)
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def details_text(data: Any, units_of: dict[str, str] | None = None) -> str:
    """An event's data as "key value, ..." in people's units."""
    if not isinstance(data, dict):
        return "" if data is None else str(data)
    parts = []
    if isinstance(data.get("day"), int) and isinstance(data.get("ms"), int):
        data = dict(data)
        parts.append("to " + U.wall_text(data.pop("day"), data.pop("ms"), seconds=True))
    for k in sorted(data):
        v = data[k]
        if k == "priority":
            parts.append(f"priority {v}")
            continue
        name = k
        for suffix in ("_nl_per_h", "_ng_per_day", "_ug_per_ml", "_nl", "_ms", "_ng", "_s"):
            if k.endswith(suffix):
                name = k[: -len(suffix)]
                break
        if k in ("rolling_24h_ng", "hard_limit_ng") and isinstance(v, int):
            text = U.dose(v, "mg" if v >= U.NG_PER_MG else "ug")
        else:
            text = value_text(k, v)
        parts.append(f"{name.replace('_', ' ')} {text}")
    return ", ".join(parts)


# --- status ---------------------------------------------------------------------------------------
def _alarm_rows(st: dict[str, Any]) -> list[list[str]]:
    rows = []
    up = st.get("uptime_s")
    clock = st.get("clock")
    for a in st.get("alarms") or []:
        code, prio, acked, present, raised_s = (list(a) + [None] * 5)[:5]
        since = "-"
        if isinstance(raised_s, int) and isinstance(up, int):
            ago = (up - raised_s) * 1000
            if isinstance(clock, list) and len(clock) == 2:
                ms = clock[0] * U.MS_PER_DAY + clock[1] - ago
                since = U.wall_text(ms // U.MS_PER_DAY, ms % U.MS_PER_DAY) + f" ({U.duration(ago)} ago)"
            else:
                since = f"{U.duration(ago)} ago"
        rows.append([str(code).replace("_", " "), str(prio),
                     "acknowledged" if acked else "NOT acknowledged",
                     "condition present" if present else "condition gone", since])
    return rows


def _pump_now(st: dict[str, Any]) -> Any:
    clock = st.get("clock")
    return U.wall_datetime(clock[0], clock[1]) if isinstance(clock, list) else None


def status(st: dict[str, Any], info: dict[str, Any] | None = None) -> str:
    """The status a clinician reads: no internal units; times in the pump's local time."""
    units_of = st.get("units") or {}
    now = _pump_now(st)
    t = table("", "", title=None)
    t.show_header = False
    clock = st.get("clock")
    when = U.wall_text(*clock) if isinstance(clock, list) else "NOT SET (itpump set-clock)"
    if st.get("clock_suspect"):
        when += " (restored after a reset: set it again)"
    if info:
        t.add_row("pump", f"{info.get('device_id')} ({info.get('board')}, firmware "
                          f"{info.get('firmware')})")
    t.add_row("state", f"{str(st.get('state')).replace('_', ' ')} (motor {st.get('motor')})")
    t.add_row("pump clock", when)
    prog = st.get("program")
    t.add_row("program", f"{prog}" if prog else "none committed")
    if st.get("pending_program"):
        t.add_row("", "a new program takes effect at the next stroke")
    if st.get("bridging"):
        t.add_row("", "bridging: the old admixture is leaving the catheter")
    if st.get("needs_program"):
        t.add_row("", "refilled with a new admixture: a new program must be committed")
    if st.get("staged"):
        t.add_row("staged", f"{st.get('staged')} (not committed)")
    t.add_row("basal rate", U.rate(st.get("basal_rate_nl_per_h")))
    t.add_row("pump rate now", U.rate(st.get("rate_nl_per_h")))
    b = st.get("bolus")
    if isinstance(b, dict):
        t.add_row("bolus", f"{b.get('kind')} {U.volume(b.get('volume_nl'))}, "
                           f"{U.volume(b.get('delivered_nl'))} given")
    res = st.get("reservoir_nl")
    left = U.volume(res) if res is not None else "unknown (no program yet)"
    if st.get("reservoir_level") not in (None, "ok"):
        left += f" ({str(st.get('reservoir_level')).upper()})"
    t.add_row("reservoir", left)
    for key, what in (("ms_to_low", "low-reservoir alert"), ("ms_to_empty", "reservoir empty")):
        ms = st.get(key)
        if isinstance(ms, int) and ms >= RESERVOIR_HORIZON_MS:
            t.add_row("", f"{what}: not within {U.duration(RESERVOIR_HORIZON_MS)} at this rate")
        elif isinstance(ms, int) and ms > 0:
            t.add_row("", f"{what} at {U.at_after(ms, now)} at this rate")
    cat = st.get("catheter_fill_nl")
    t.add_row("catheter", ("primed" if st.get("catheter_primed") else "NOT primed")
              + (f" ({U.volume(cat)} filled)" if isinstance(cat, int) else ""))
    for drug, ng in sorted((st.get("rolling_24h_ng") or {}).items()):
        u = units_of.get(drug, "mg" if ng >= U.NG_PER_MG else "ug")
        total = (st.get("delivered_drug") or {}).get(drug)
        extra = ""
        if isinstance(total, list) and len(total) == 2:
            extra = f"; {U.dose(total[0] * 1000 + total[1], u)} delivered since the program started"
        # the ledger: what the dose limits count (at the mechanism's +5 %, with the catheter's
        # uncertainty band: docs/therapy.md), not what was delivered
        t.add_row(f"{drug}", f"{U.dose(ng, u)} counted against the limits in the last 24 h{extra}")
    pb = st.get("patient_bolus") or {}
    denied = {k: v for k, v in (pb.get("denied") or {}).items() if v}
    t.add_row("patient boluses", f"{pb.get('delivered', 0)} given of {pb.get('requested', 0)} "
              "asked" + (" (refused: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                     for k, v in sorted(denied.items())) + ")"
                          if denied else ""))
    lock = st.get("lockout_remaining_ms")
    if isinstance(lock, int) and lock > 0:
        t.add_row("", f"next patient bolus allowed at {U.at_after(lock, now)}")
    guard = st.get("dose_guard") or {}
    if guard.get("holding"):
        t.add_row("dose guard", f"HOLDING strokes at a hard limit ({guard.get('held_strokes')} "
                                "held)")
    lib = st.get("library")
    t.add_row("drug library", f"{lib['name']} {lib['version']} ({lib['checksum']})"
              if isinstance(lib, dict) else "NONE: every program is refused (itpump library push)")
    if st.get("resets"):
        last = st.get("last_reset") or {}
        t.add_row("resets", f"{st.get('resets')} (last: {last.get('cause', '?')})")
    up = st.get("uptime_s")
    if isinstance(up, int):
        t.add_row("running for", U.duration(up * 1000))
    items: list[Any] = [t]
    rows = _alarm_rows(st)
    if rows:
        a = table("alarm", "priority", "acknowledged", "condition", "since", title="Alarms")
        for r in rows:
            a.add_row(*r)
        items.append(a)
    else:
        items.append("Alarms: none")
    return render(*items)


def status_line(st: dict[str, Any], now: str) -> str:
    """One line for `monitor`."""
    alarms = ", ".join(f"{a[0]} ({a[1]})" for a in st.get("alarms") or []) or "none"
    return (f"{now} {str(st.get('state')).replace('_', ' ')}, rate "
            f"{U.rate(st.get('rate_nl_per_h')).split(' (')[0]}, reservoir "
            f"{U.volume(st.get('reservoir_nl'))}, alarms: {alarms}")


# --- events and the log ---------------------------------------------------------------------------
def event_time(e: dict[str, Any]) -> str:
    day, ms = e.get("day"), e.get("ms")
    if isinstance(day, int) and isinstance(ms, int) and day >= 0:
        return U.wall_text(day, ms, seconds=True)
    up = e.get("up_s")
    return f"uptime {U.duration(up * 1000)}" if isinstance(up, int) else "-"


def event_what(e: dict[str, Any]) -> tuple[str, str]:
    """(what happened, its details) of a log entry or event."""
    kind = str(e.get("kind"))
    if kind == "command" and "cmd" in e:        # the dispatcher's row: who sent what
        res = e.get("result")
        return (f"{e.get('cmd')} by {e.get('role')}",
                "ok" if res == "ok" else f"refused: {res}")
    code = e.get("code")
    what = kind.replace("_", " ") + (f" {code}" if code not in (None, "") else "")
    return what, details_text(e.get("data"))


def log_table(entries: list[dict[str, Any]]) -> str:
    t = table("#", "time (local)", "event", "details")
    for e in entries:
        what, det = event_what(e)
        t.add_row(str(e.get("log_seq", "")), event_time(e), what, det)
    if not entries:
        return "no log entries match"
    return render(t)


def event_line(e: dict[str, Any]) -> str:
    what, det = event_what(e)
    return f"{event_time(e)} {what}" + (f": {det}" if det else "")


# --- program review -------------------------------------------------------------------------------
def _change_value(fld: str, v: Any, units_of: dict[str, str], drugs: list[str]) -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and not isinstance(v, bool):
        if fld.endswith(".rate"):
            return U.rate(v).split(" (")[0]
        if fld.endswith(".start") or ".times_min[" in fld:
            return f"{v // 60:02d}:{v % 60:02d}"
        if fld.endswith("conc_ug_per_ml") or fld.endswith("_ng_per_day"):
            m = explain._DRUG.match(fld.rsplit(".", 1)[0])
            drug = drugs[int(m.group(1))] if m and int(m.group(1)) < len(drugs) else None
            u = units_of.get(drug or "", "ug")
            return value_text(fld.rsplit(".", 1)[-1], v, u)
        return value_text(fld.rsplit(".", 1)[-1], v)
    return str(v)


def review(rv: dict[str, Any], drugs: list[str] | None = None, title: str | None = None) -> str:
    """The pump's review of a staged program: per drug its daily dose against its limits, what
    needs confirming, every change in people's units."""
    units_of = rv.get("units") or {}
    daily = rv.get("daily_ng") or {}
    limits = rv.get("limits") or {}
    soft = set(rv.get("soft_breaches") or [])
    raised = set(rv.get("soft_raised") or [])
    starts = {s.get("drug"): s for s in rv.get("start_breaches") or [] if isinstance(s, dict)}
    t = table("drug", "dose per 24 h (most)", "soft limit", "hard limit", "check",
              title=title or "Pump review (nothing changes until you confirm)")
    for drug in sorted(set(daily) | set(limits)):
        u = units_of.get(drug, "ug")
        lim = limits.get(drug) or [None, None]
        notes = []
        if drug in soft:
            notes.append("ABOVE SOFT LIMIT: --confirm-soft-limit")
        if drug in raised:
            notes.append("own soft limit above the library's: --confirm-soft-limit")
        if drug in starts:
            notes.append("above the starting dose: --continuing if the patient is on it")
        t.add_row(drug, U.dose(daily.get(drug), u, per_day=True),
                  U.dose(lim[0], u, per_day=True), U.dose(lim[1], u, per_day=True),
                  "; ".join(notes) or "ok")
    items: list[Any] = [t]
    vol = rv.get("daily_volume_nl")
    if isinstance(vol, int):
        items.append(f"volume per 24 h (most): {U.volume(vol)}")
    br = rv.get("bridge")
    if isinstance(br, dict):
        items.append(f"bridge bolus offered (--bridge): {U.volume(br.get('volume_nl'))} over "
                     f"{U.duration(br.get('duration_ms'))}, until the old admixture has left the "
                     "catheter")
    ch = rv.get("changes") or []
    if ch:
        c = table("field", "now", "new", title="Changes versus the current program")
        names = drugs or []
        for item in ch:
            if isinstance(item, list) and len(item) == 3:
                fld, old, new = item
                c.add_row(explain.field_words(str(fld), names),
                          _change_value(str(fld), old, units_of, names),
                          _change_value(str(fld), new, units_of, names))
        items.append(c)
    items.append(f"checksum: {rv.get('checksum')}")
    return render(*items)


# --- library ---------------------------------------------------------------------------------------
def library(rec: dict[str, Any], sources: dict[str, dict[str, str]] | None = None) -> str:
    """A library record (from the pump or a file) as a table, with the sources when known."""
    fields = list(rec.get("fields") or [])
    t = table("drug", "concentration", "soft / hard limit", "max bolus", "titration",
              "start at most",
              title=f"Drug library: {rec.get('name')} {rec.get('version')} "
                    f"(checksum {rec.get('checksum')})")
    for row in rec.get("drugs") or []:
        e = dict(zip(fields, row, strict=False))
        u = e.get("dose_unit") or "ug"
        step = []
        if e.get("step_ng_per_day") is not None:
            step.append("+" + U.dose(e["step_ng_per_day"], u, per_day=True))
        if e.get("step_pct") is not None:
            step.append(f"+{e['step_pct']} %")
        tit = " or ".join(step) if step else "none"
        if e.get("step_interval_ms") is not None:
            tit += f" per {U.duration(e['step_interval_ms'])}"
        lo = U.concentration(e.get("conc_min_ug_per_ml"), u).split(" ")[0]
        t.add_row(str(e.get("name")),
                  f"{lo}-{U.concentration(e.get('conc_max_ug_per_ml'), u)}",
                  f"{U.dose(e.get('soft_ng_per_day'), u).split(' ')[0]} / "
                  f"{U.dose(e.get('hard_ng_per_day'), u, per_day=True)}",
                  U.dose(e.get("max_bolus_ng"), u),
                  tit, U.dose(e.get("start_max_ng_per_day"), u, per_day=True))
    items: list[Any] = [t, "Drugs not listed need explicit hard and soft limits in the "
                           "prescription. Example values are not clinical guidance."]
    if sources:
        s = table("drug", "value", "source", title="Sources")
        for drug in sorted(sources):
            for key, text in sorted(sources[drug].items()):
                s.add_row(drug, key, text)
        items.append(s)
    return render(*items)


def library_review(rv: dict[str, Any]) -> str:
    cur = rv.get("current")
    lines = [f"Library review (nothing changes until --confirm): {rv.get('name')} "
             f"{rv.get('version')}, {rv.get('drugs')} drugs, checksum {rv.get('checksum')}",
             "  replaces: " + (f"{cur['name']} {cur['version']} ({cur['checksum']})"
                               if isinstance(cur, dict) else "no library (none loaded)")]
    for key, what in (("added", "added"), ("removed", "removed (programs then need explicit "
                                                        "limits)"), ("changed", "changed")):
        if rv.get(key):
            lines.append(f"  {what}: {', '.join(rv[key])}")
    if rv.get("loosens"):
        lines.append(f"  LOOSENS limits for: {', '.join(rv['loosens'])} "
                     "(commit needs --confirm-loosening)")
    return "\n".join(lines)


# --- titration plan --------------------------------------------------------------------------------
def plan(steps: list[Any], current: dict[str, int]) -> str:
    """A titration plan (pumphost.titration.Step list) as a table: when, dose per drug."""
    drugs = sorted({d for st in steps for d in st.daily_ng} | set(current))
    units_of: dict[str, str] = {}
    for st in steps:
        units_of.update(st.units)
    t = table("step", "earliest", *drugs, "basal rates", "confirm",
              title="Titration plan (a proposal within the library's rules: review each step)")
    if current:
        t.add_row("now", "-", *[U.dose(current.get(d), units_of.get(d, "ug"), per_day=True)
                                if d in current else "-" for d in drugs], "current", "")
    for st in steps:
        when = "at once" if st.after_ms == 0 else f"after {U.duration(st.after_ms)}"
        t.add_row(str(st.n), when,
                  *[U.dose(st.daily_ng.get(d), units_of.get(d, "ug"), per_day=True)
                    if d in st.daily_ng else "-" for d in drugs],
                  f"{U.number(st.scale_permille, 10, 1)} % of the new program's",
                  "soft limit" if st.soft_breaches else "")
    return render(t, f"{len(steps)} step(s); each is the new program with its basal rates scaled "
                     "(boluses as prescribed). Commit each with itpump program STEP.toml --confirm.")
