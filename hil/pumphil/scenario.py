"""Scenario files for `itpump simulate` (the TOML contract of issue 4; docs/simulate.md).

A scenario says what happens to one virtual patient: a prescription, a start, and timed events
(pump commands through the protocol, plant faults through the emulator). This module only parses
and validates; :mod:`pumphil.simulate` runs it.

Times are exact integers of milliseconds (decimal arithmetic, no float rounding):
- durations: ``<number><unit>`` with unit ``s``, ``min``, ``h`` or ``d`` ("30d", "90min", "1.5h");
- event times: ``"<days>d HH:MM[:SS]"`` ("1d 08:30") or a duration from the start ("36h").

Every problem is reported at once as ``(field, reason)`` pairs in :class:`ScenarioError`, whose
message starts with the file name (the same style as the host's prescription files).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pumpcore import commands as _commands
from pumphost.prescription_file import PrescriptionError
from pumphost.prescription_file import convert as convert_rx
from pumphost.prescription_file import load as load_rx

if TYPE_CHECKING:
    from .expect import Expectation

MS_PER_S = 1000
MS_PER_MIN = 60 * MS_PER_S
MS_PER_H = 60 * MS_PER_MIN
MS_PER_DAY = 24 * MS_PER_H
UNITS_MS = {"s": MS_PER_S, "min": MS_PER_MIN, "h": MS_PER_H, "d": MS_PER_DAY}

#: pump clock at t=0 when the scenario does not say (a Monday, 00:00)
DEFAULT_START = _dt.datetime(2026, 1, 5, 0, 0)
#: longest scenario accepted (a year): keeps runs and reports bounded
MAX_DURATION_MS = 366 * MS_PER_DAY

SEVERITIES = ("partial", "complete")

# Pump actions are the state-changing commands of the command table (pumpcore.commands), under
# their wire names, with each argument under its `shown` name in the human unit (volume_ul,
# duration_min, fill_ml, minutes...); `program` stands for stage + review + commit, `refill`
# also takes the prescription of a new admixture, and `set_clock` takes a local date and time
# (`wall`) that the runner sends as the command's day and ms of day.
TABLE_ACTIONS = tuple(c for c in _commands.COMMANDS if c.changes and c.name not in (
    _commands.STAGE, _commands.STAGE_CHUNK, _commands.COMMIT, _commands.LIBRARY_STAGE,
    _commands.LIBRARY_CHUNK, _commands.LIBRARY_COMMIT))   # programs: `program`; libraries: none
#: table commands whose scenario keys are not the table's (parsed by their own branch below)
OWN_KEYS = frozenset({_commands.SET_CLOCK})

# action -> {parameter: required?}. Parameters are the file's keys (unit-suffixed); the parsed
# Event carries them converted to wire units (see Event.params).
ACTIONS: dict[str, dict[str, bool]] = {
    # pump commands (through the protocol)
    **{c.name: {a.shown: a.required for a in c.args} for c in TABLE_ACTIONS},
    "program": {"prescription": True},
    "set_clock": {"wall": True},
    # host traffic: status (role "readonly") or hello (role "none") requests, back to back or
    # one every `every`
    "traffic": {"requests": True, "role": False, "every": False},
    # firmware faults (through the virtual board)
    "firmware_hang": {"seconds": True, "every_boot": False},
    # plant faults (through the emulator's plant)
    "occlusion": {"severity": False},
    "clear_occlusion": {},
    "dislodge": {},
    "reseat": {},
    "leak": {},
    "clear_leak": {},
    "power_cut": {},
    "power_restore": {},
    "battery": {"percent": True},
    "motor_stall": {},
    "clear_motor_stall": {},
}
ACTIONS[_commands.REFILL]["prescription"] = False
#: fault actions -> the alarm codes the firmware should raise for them (the report's fault-to-alarm
#: latencies; the campaign's fault kinds)
FAULT_ALARMS: dict[str, tuple[str, ...]] = {
    "occlusion": ("occlusion",),
    "dislodge": ("dislodgement",),
    "leak": ("leak",),
    "motor_stall": ("motor_stall",),
    "power_cut": ("unexpected_reset", "reset_loop"),
    "firmware_hang": ("watchdog_reset", "reset_loop"),
}
PUMP_ACTIONS = frozenset({c.name for c in TABLE_ACTIONS} | {"program", "traffic"})
TRAFFIC_ROLES = ("readonly", "none")
# any event may repeat: `repeat_every` (a duration) from `at` up to `until` (an event time,
# inclusive); at most MAX_REPEATS copies of one event
REPEAT_KEYS = ("repeat_every", "until")
MAX_REPEATS = 100_000
MAX_TRAFFIC_REQUESTS = 10_000_000
# any event may carry an `id` (a name [[expect]] rows refer to with `after`)
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|h|d)\s*$")
_DAY_TIME = re.compile(r"^\s*(\d+)\s*d\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


class ScenarioError(ValueError):
    """The scenario file is unreadable or invalid; ``problems`` lists (field, reason)."""

    reason = "scenario"

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        text = "; ".join(f"{f}: {why}" if f else why for f, why in problems)
        super().__init__(f"{path}: {text}")


@dataclass(frozen=True)
class Event:
    """One timed action. ``at_ms``: ms from t=0. ``params`` in wire units: for a pump command,
    every argument of its command-table row by wire name (an absent optional one at its
    default), e.g. clinician_bolus {"volume_nl", "duration_ms"}, ack {"alarm" or None}; refill
    adds "rx" (or None) and "source"; program {"rx", "source"}; set_clock {"wall" (datetime),
    "day", "ms"}; traffic {"requests", "role", "every_ms"}; firmware_hang {"ms", "every_boot"};
    occlusion {"severity"}; battery {"percent"}; every other action {}. ``index`` = position
    in the file (ties at the same time run in file order)."""

    at_ms: int
    action: str
    params: dict[str, Any]
    index: int
    id: str | None = None      # the event's `id` key (expectations name events by it)

    @property
    def is_pump_command(self) -> bool:
        return self.action in PUMP_ACTIONS


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_ms: int
    seed: int
    start_time: _dt.datetime
    rx: dict[str, Any]
    primed: bool = True        # prime the catheter through the protocol before t=0
    autostart: bool = True     # start infusion at t=0
    events: tuple[Event, ...] = ()
    path: str = "<scenario>"
    prescription_source: str = "inline"   # the file it came from, or "inline"
    #: plant figures that differ from the defaults, by dotted name (the file's [plant] table;
    #: pumphil.plant.params.OVERRIDE_RANGES lists them): {} = the default plant
    plant: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: the [[expect]] rows (pumphil.expect), in file order
    expectations: tuple[Expectation, ...] = ()
    #: SHA-256 (hex) of the scenario file's bytes (None: parsed from a table, not a file)
    sha256: str | None = None

    @property
    def days(self) -> int:
        """Number of report days: day k covers [k*24 h, (k+1)*24 h); a partial last day counts."""
        return max(1, -(-self.duration_ms // MS_PER_DAY))


# --- time strings ---------------------------------------------------------------------------------
def parse_duration(text: Any) -> int:
    """``"30d"``, ``"90min"``, ``"36h"``, ``"45s"``, ``"1.5h"`` -> ms (exact); ValueError."""
    if not isinstance(text, str):
        raise TypeError('must be a string like "30d", "90min", "36h" or "45s"')
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f'"{text}" is not <number><unit> with unit s, min, h or d')
    ms = Decimal(m.group(1)) * UNITS_MS[m.group(2)]
    if ms != ms.to_integral_value():
        raise ValueError(f'"{text}" is not a whole number of milliseconds')
    return int(ms)


def parse_at(text: Any) -> int:
    """Event time: ``"<days>d HH:MM[:SS]"`` or a duration (``"90min"``) -> ms from t=0."""
    if not isinstance(text, str):
        raise TypeError('must be a string like "1d 08:30" or "90min"')
    m = _DAY_TIME.match(text)
    if m is not None:
        days, hh, mm = int(m.group(1)), int(m.group(2)), int(m.group(3))
        ss = int(m.group(4)) if m.group(4) is not None else 0
        if hh > 23 or mm > 59 or ss > 59:
            raise ValueError(f'"{text}": time of day out of range (00:00:00..23:59:59)')
        return days * MS_PER_DAY + ((hh * 60 + mm) * 60 + ss) * MS_PER_S
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f'"{text}" is neither "<days>d HH:MM[:SS]" nor <number><unit> '
                         "(s, min, h, d)") from None


def format_ms(ms: int) -> str:
    """ms from t=0 -> ``"<days>d HH:MM:SS"`` (for summaries)."""
    d, rest = divmod(ms, MS_PER_DAY)
    s = rest // MS_PER_S
    return f"{d}d {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


# --- parsing --------------------------------------------------------------------------------------
class _P:
    def __init__(self, path: str, base: Path) -> None:
        self.path = path
        self.base = base
        self.problems: list[tuple[str, str]] = []

    def bad(self, fld: str, why: str) -> None:
        self.problems.append((fld, why))

    def prescription(self, v: Any, fld: str) -> tuple[dict[str, Any] | None, str]:
        try:
            if isinstance(v, str):
                p = Path(v)
                if not p.is_absolute():
                    p = self.base / p
                return load_rx(p), str(p)
            if isinstance(v, dict):
                return convert_rx(v, f"{self.path}:{fld}"), "inline"
        except PrescriptionError as e:
            for f, why in e.problems:
                where = e.path if e.path != f"{self.path}:{fld}" else ""
                self.bad(f"{fld}.{f}", f"{why} ({where})" if where else why)
            return None, ""
        self.bad(fld, "must be a file name (relative to the scenario) or an inline table")
        return None, ""

    def number(self, t: dict[str, Any], key: str, fld: str, factor: int, lo: Decimal,
               hi: Decimal) -> int | None:
        v = t[key]
        name = f"{fld}.{key}"
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            self.bad(name, "must be a number")
            return None
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            self.bad(name, "must be a number")
            return None
        if not d.is_finite() or not (lo <= d <= hi):
            self.bad(name, f"must be between {lo} and {hi}")
            return None
        scaled = d * factor
        if scaled != scaled.to_integral_value():
            self.bad(name, f"too many decimals (resolution is 1/{factor})")
            return None
        return int(scaled)

    def events(self, e: Any, i: int, duration_ms: int | None) -> list[Event]:
        """One [[event]] table -> its event, or its copies when it repeats."""
        ev = self.event(e, i, duration_ms)
        if ev is None or not isinstance(e, dict) or not any(k in e for k in REPEAT_KEYS):
            return [] if ev is None else [ev]
        fld = f"event[{i}]"
        if not all(k in e for k in REPEAT_KEYS):
            self.bad(fld, "repeat_every and until go together")
            return []
        try:
            every = parse_duration(e["repeat_every"])
            until = parse_at(e["until"])
        except (TypeError, ValueError) as err:
            self.bad(fld, f"repeat: {err}")
            return []
        if every <= 0 or until < ev.at_ms:
            self.bad(fld, "repeat_every must be > 0 and until not before at")
            return []
        if duration_ms is not None and until > duration_ms:
            self.bad(f"{fld}.until", f"{format_ms(until)} is after the end of the scenario")
            return []
        n = (until - ev.at_ms) // every + 1
        if n > MAX_REPEATS:
            self.bad(fld, f"repeats {n} times (at most {MAX_REPEATS})")
            return []
        return [Event(ev.at_ms + k * every, ev.action, ev.params, i, ev.id) for k in range(n)]

    def table_params(self, row: _commands.Command, e: dict[str, Any], fld: str,
                     params: dict[str, Any]) -> None:
        """A command table row's arguments from the event's keys (human units, the row's bounds)
        into params (wire names and units; an absent optional argument takes its default)."""
        for a in row.args:
            if a.shown not in e:
                if not a.required:
                    params[a.name] = a.default
                continue
            v = e[a.shown]
            if a.kind == _commands.INT:
                lo = Decimal(a.lo if a.lo is not None else 0) / a.scale
                hi = Decimal(a.hi if a.hi is not None else 10 ** 15) / a.scale
                params[a.name] = self.number(e, a.shown, fld, a.scale, lo, hi)
            elif a.kind == _commands.BOOL:
                if not isinstance(v, bool):
                    self.bad(f"{fld}.{a.shown}", "must be true or false")
                params[a.name] = v
            elif a.kind in (_commands.STR, _commands.STR_OR_NULL):
                if not isinstance(v, str):
                    self.bad(f"{fld}.{a.shown}", "must be a string")
                params[a.name] = v
            else:
                self.bad(f"{fld}.{a.shown}", "not settable from a scenario")

    def event(self, e: Any, i: int, duration_ms: int | None) -> Event | None:
        fld = f"event[{i}]"
        if not isinstance(e, dict):
            self.bad(fld, "must be a table ([[event]])")
            return None
        n0 = len(self.problems)
        at_ms = None
        if "at" not in e:
            self.bad(f"{fld}.at", "missing")
        else:
            try:
                at_ms = parse_at(e["at"])
            except (TypeError, ValueError) as err:
                self.bad(f"{fld}.at", str(err))
        action = e.get("action")
        if "action" not in e:
            self.bad(f"{fld}.action", "missing")
            return None
        if not isinstance(action, str) or action not in ACTIONS:
            self.bad(f"{fld}.action", f"unknown action {action!r} (one of: "
                     + ", ".join(ACTIONS) + ")")
            return None
        spec = ACTIONS[action]
        for k in e:
            if k not in ("at", "action", "id") and k not in spec and k not in REPEAT_KEYS:
                self.bad(f"{fld}.{k}", f"unknown key for action {action!r}"
                         + (f" (allowed: {', '.join(spec)})" if spec else " (takes none)"))
        for k, req in spec.items():
            if req and k not in e:
                self.bad(f"{fld}.{k}", f"missing (required by action {action!r})")
        params: dict[str, Any] = {}
        row = _commands.find(action) if action not in OWN_KEYS else None
        if row is not None:
            self.table_params(row, e, fld, params)
        if action == "program":
            if "prescription" in e:
                params["rx"], params["source"] = self.prescription(e["prescription"],
                                                                   f"{fld}.prescription")
        elif action == _commands.REFILL:
            params["rx"], params["source"] = (None, "")
            if "prescription" in e:
                params["rx"], params["source"] = self.prescription(e["prescription"],
                                                                   f"{fld}.prescription")
        elif action == "set_clock" and "wall" in e:
            v = e["wall"]
            wall = None
            if isinstance(v, _dt.datetime) and v.tzinfo is None:
                wall = v
            elif isinstance(v, str):
                try:
                    wall = _dt.datetime.fromisoformat(v)
                except ValueError:
                    wall = None
            if wall is None or wall.tzinfo is not None or wall.year < 2000:
                self.bad(f"{fld}.wall", 'must be a local date and time "YYYY-MM-DDTHH:MM[:SS]" '
                         "in year 2000 or later")
            else:
                day = (wall.date() - _dt.date(2000, 1, 1)).days
                ms = ((wall.hour * 60 + wall.minute) * 60 + wall.second) * MS_PER_S \
                    + wall.microsecond // 1000
                params.update(wall=wall, day=day, ms=ms)
        elif action == "traffic":
            v = e.get("requests")
            if "requests" in e:
                if isinstance(v, bool) or not isinstance(v, int) \
                        or not 1 <= v <= MAX_TRAFFIC_REQUESTS:
                    self.bad(f"{fld}.requests", f"must be a whole number 1..{MAX_TRAFFIC_REQUESTS}")
                else:
                    params["requests"] = v
            role = e.get("role", "readonly")
            if role not in TRAFFIC_ROLES:
                self.bad(f"{fld}.role", 'must be "readonly" (status polls) or "none" (hello polls)')
            params["role"] = role
            params["every_ms"] = 0
            if "every" in e:
                try:
                    params["every_ms"] = parse_duration(e["every"])
                except (TypeError, ValueError) as err:
                    self.bad(f"{fld}.every", str(err))
        elif action == "firmware_hang":
            if "seconds" in e:
                v = e["seconds"]
                if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 86400:
                    self.bad(f"{fld}.seconds", "must be a whole number of seconds 0..86400")
                else:
                    params["ms"] = v * MS_PER_S
            v = e.get("every_boot", False)
            if not isinstance(v, bool):
                self.bad(f"{fld}.every_boot", "must be true or false")
            params["every_boot"] = v is True
        elif action == "occlusion":
            v = e.get("severity", "complete")
            if v not in SEVERITIES:
                self.bad(f"{fld}.severity", 'must be "partial" or "complete"')
            params["severity"] = v
        elif action == "battery" and "percent" in e:
            params["percent"] = self.number(e, "percent", fld, 1, Decimal(0), Decimal(100))
        if at_ms is not None and duration_ms is not None and at_ms > duration_ms:
            self.bad(f"{fld}.at", f"{format_ms(at_ms)} is after the end of the scenario "
                     f"({format_ms(duration_ms)})")
        ev_id = e.get("id")
        if ev_id is not None and (not isinstance(ev_id, str) or not _ID.match(ev_id)):
            self.bad(f"{fld}.id", "must be a name of letters, digits, '_', '-' or '.'")
        if len(self.problems) > n0 or at_ms is None:
            return None
        return Event(at_ms, action, params, i, ev_id)


TOP_KEYS = {"name", "duration", "seed", "start_time", "prescription", "start", "event", "plant",
            "expect"}


def _plant_table(p: _P, doc: Any) -> dict[str, float]:
    """The optional [plant] table (nested tables such as [plant.csf] give dotted names) -> flat
    {dotted name: value}, each checked by the plant (params.override_problem)."""
    from .plant.params import override_problem

    flat: dict[str, float] = {}
    if not isinstance(doc, dict):
        p.bad("plant", "must be a table")
        return flat

    def walk(t: dict[str, Any], prefix: str) -> None:
        for k, v in t.items():
            name = prefix + k
            if isinstance(v, dict):
                walk(v, name + ".")
                continue
            why = override_problem(name, v)
            if why is not None:
                p.bad(f"plant.{name}", why)
            else:
                flat[name] = float(v)

    walk(doc, "")
    return flat


def _reservoir_checks(p: _P, rx: dict[str, Any], events: list[Event]) -> None:
    """The set-up prescription's reservoir is the plant's (a pump's reservoir does not change
    size): every refill must fit it, and a later prescription must describe the same one."""
    cap = rx["reservoir"]["capacity_nl"]
    seen: set[int] = set()
    for ev in events:
        if ev.index in seen:
            continue
        seen.add(ev.index)
        fill = ev.params.get("fill_nl") if ev.action == _commands.REFILL else None
        if isinstance(fill, int) and fill > cap:
            p.bad(f"event[{ev.index}].fill_ml", f"{fill / 1e6:g} mL does not fit the reservoir "
                  f"({cap / 1e6:g} mL, the prescription's capacity_ml, which sets the plant's)")
        new = ev.params.get("rx")
        if isinstance(new, dict) and new["reservoir"]["capacity_nl"] != cap:
            p.bad(f"event[{ev.index}].prescription.reservoir.capacity_ml",
                  f"{new['reservoir']['capacity_nl'] / 1e6:g} mL differs from the set-up "
                  f"prescription's {cap / 1e6:g} mL (the plant's reservoir does not change size)")


def parse(doc: dict[str, Any], path: str = "<scenario>", base: Path | None = None) -> Scenario:
    """A TOML document (as from tomllib) -> Scenario; raises ScenarioError listing problems.
    ``base``: directory that relative prescription file names are resolved against."""
    p = _P(path, base if base is not None else Path.cwd())
    for k in doc:
        if k not in TOP_KEYS:
            p.bad(k, "unknown key (check the spelling)")
    name = doc.get("name", Path(path).stem)
    if not isinstance(name, str) or not name:
        p.bad("name", "must be a non-empty string")
        name = "scenario"
    duration_ms: int | None = None
    if "duration" not in doc:
        p.bad("duration", 'missing (e.g. "30d")')
    else:
        try:
            duration_ms = parse_duration(doc["duration"])
            if not (MS_PER_S <= duration_ms <= MAX_DURATION_MS):
                p.bad("duration", "must be between 1s and 366d")
                duration_ms = None
        except (TypeError, ValueError) as err:
            p.bad("duration", str(err))
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        p.bad("seed", "must be a whole number >= 0")
        seed = 0
    start_time = DEFAULT_START
    if "start_time" in doc:
        v = doc["start_time"]
        if isinstance(v, _dt.datetime) and v.tzinfo is None:
            start_time = v
        elif isinstance(v, str):
            try:
                start_time = _dt.datetime.fromisoformat(v)
                if start_time.tzinfo is not None:
                    raise ValueError
            except ValueError:
                p.bad("start_time", 'must be a local date and time "YYYY-MM-DDTHH:MM[:SS]"')
        else:
            p.bad("start_time", 'must be a local date and time "YYYY-MM-DDTHH:MM[:SS]"')
        if start_time.year < 2000:
            p.bad("start_time", "must be in year 2000 or later (the pump's epoch)")
            start_time = DEFAULT_START
        start_time = start_time.replace(microsecond=start_time.microsecond // 1000 * 1000)
    rx: dict[str, Any] | None = None
    source = "inline"
    if "prescription" not in doc:
        p.bad("prescription", "missing (a file name or an inline [prescription] table)")
    else:
        rx, source = p.prescription(doc["prescription"], "prescription")
    primed, autostart = True, True
    if "start" in doc:
        st = doc["start"]
        if not isinstance(st, dict):
            p.bad("start", "must be a table")
        else:
            for k, v in st.items():
                if k not in ("primed", "autostart"):
                    p.bad(f"start.{k}", "unknown key (primed, autostart)")
                elif not isinstance(v, bool):
                    p.bad(f"start.{k}", "must be true or false")
            if isinstance(st.get("primed"), bool):
                primed = st["primed"]
            if isinstance(st.get("autostart"), bool):
                autostart = st["autostart"]
    plant = _plant_table(p, doc["plant"]) if "plant" in doc else {}
    events: list[Event] = []
    evs = doc.get("event", [])
    if not isinstance(evs, list):
        p.bad("event", "must be [[event]] tables")
        evs = []
    for i, e in enumerate(evs):
        events.extend(p.events(e, i, duration_ms))
    if rx is not None:
        _reservoir_checks(p, rx, events)
    ids: dict[str, int] = {}
    for i, e in enumerate(evs):
        ev_id = e.get("id") if isinstance(e, dict) else None
        if isinstance(ev_id, str):
            if ev_id in ids:
                p.bad(f"event[{i}].id", f"{ev_id!r} is also the id of event[{ids[ev_id]}]")
            ids[ev_id] = i
    expectations = []
    if "expect" in doc:
        from .expect import parse_rows

        expectations = parse_rows(doc["expect"], p.bad, events, ids, rx, duration_ms)
    if p.problems or rx is None or duration_ms is None:
        raise ScenarioError(path, p.problems or [("", "invalid")])
    events.sort(key=lambda ev: (ev.at_ms, ev.index))
    return Scenario(name=name, duration_ms=duration_ms, seed=seed, start_time=start_time,
                    rx=rx, primed=primed, autostart=autostart, events=tuple(events), path=path,
                    prescription_source=source, plant=plant, expectations=tuple(expectations))


def load(path: str | Path) -> Scenario:
    """Read a scenario TOML file; prescription file names are relative to its directory."""
    pth = Path(path)
    try:
        data = pth.read_bytes()
        doc = tomllib.loads(data.decode("utf-8"))
    except OSError as e:
        raise ScenarioError(str(pth), [("file", e.strerror or str(e))]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ScenarioError(str(pth), [("toml", str(e))]) from None
    sc = parse(doc, str(pth), pth.parent)
    return dataclasses.replace(sc, sha256=hashlib.sha256(data).hexdigest())


def loads(text: str, path: str = "<scenario>", base: Path | None = None) -> Scenario:
    """Parse scenario TOML text (tests, inline use)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(path, [("toml", str(e))]) from None
    sc = parse(doc, path, base)
    return dataclasses.replace(sc, sha256=hashlib.sha256(text.encode()).hexdigest())
