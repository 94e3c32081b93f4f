"""Prescription files (TOML, unit-suffixed keys) -> the rx dict of docs/architecture.md.

The conversion is exact (decimal arithmetic): mL -> nL (x 1e6), µL -> nL (x 1000), µg -> ng
(x 1000), min -> ms, "HH:MM" -> minute of day. A value that does not convert to a whole number of
the wire unit, an unknown key (typo), a missing required key or a wrong type is an error naming
the file, the field and the reason. Range and dose checks are the pump's job (it is the final
authority): `itpump program` shows the pump's verdict.

Defaults the file may omit: ``reservoir.empty_ml`` = 0.5 (example value for research use, not
clinical guidance); ``drug.*_limit_ug_per_day`` = none (use the pump's drug library);
``basal.days`` = none (every day uses ``basal.steps``); no periodic boluses; no patient bolus.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import tomli_w

from . import tomlfile, units
from .tomlfile import FileProblems

DEFAULT_EMPTY_ML = "0.5"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PrescriptionError(FileProblems):
    """The prescription file is unreadable or invalid; ``problems`` lists (field, reason)."""

    reason = "prescription"


class _Conv:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[tuple[str, str]] = []

    def bad(self, field: str, why: str) -> None:
        self.problems.append((field, why))

    def table(self, obj: Any, field: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(obj, dict):
            self.bad(field, "must be a table")
            return {}
        for k in obj:
            if k not in allowed:
                self.bad(f"{field}.{k}" if field else k, "unknown key (check the spelling)")
        for k in sorted(required):
            if k not in obj:
                self.bad(f"{field}.{k}" if field else k, "missing")
        return obj

    def scaled(self, obj: dict[str, Any], key: str, field: str, factor: int,
               required: bool = True, default: str | None = None) -> int | None:
        """Number (int or float; a string such as "20" is refused) x factor -> exact int, else
        an error (pumphost.units.to_wire)."""
        name = f"{field}.{key}"
        if key not in obj:
            if default is not None:
                return units.to_wire(Decimal(default), factor)
            return None  # a missing required key was reported by table()
        try:
            return units.to_wire(obj[key], factor)
        except units.UnitError as e:
            self.bad(name, str(e))
            return None

    def integer(self, obj: dict[str, Any], key: str, field: str) -> int | None:
        v = obj.get(key)
        if key not in obj:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            self.bad(f"{field}.{key}", "must be a whole number")
            return None
        return v

    def hhmm(self, v: Any, field: str) -> int | None:
        if isinstance(v, str) and len(v) == 5 and v[2] == ":" and v[:2].isdigit() \
                and v[3:].isdigit():
            h, m = int(v[:2]), int(v[3:])
            if h < 24 and m < 60:
                return h * 60 + m
        self.bad(field, 'must be a time "HH:MM" (00:00..23:59)')
        return None

    def steps(self, v: Any, field: str) -> list[list[int]] | None:
        if not isinstance(v, list) or not v:
            self.bad(field, "must be a non-empty list of { start, rate_ul_per_h }")
            return None
        out = []
        for i, step in enumerate(v):
            name = f"{field}[{i}]"
            t = self.table(step, name, {"start", "rate_ul_per_h"}, {"start", "rate_ul_per_h"})
            start = self.hhmm(t.get("start"), f"{name}.start") if "start" in t else None
            rate = self.scaled(t, "rate_ul_per_h", name, 1000)
            if start is not None and rate is not None:
                out.append([start, rate])
        return out


def convert(doc: dict[str, Any], path: str = "<prescription>") -> dict[str, Any]:
    """TOML document (as from tomllib) -> rx dict; raises PrescriptionError listing problems."""
    c = _Conv(path)
    top = c.table(doc, "", {"reservoir", "catheter", "drug", "basal", "periodic_bolus",
                            "patient_bolus"}, {"reservoir", "catheter", "drug", "basal"})
    rx: dict[str, Any] = {}

    res = c.table(top.get("reservoir", {}), "reservoir",
                  {"capacity_ml", "fill_ml", "low_alert_ml", "empty_ml"},
                  {"capacity_ml", "fill_ml", "low_alert_ml"})
    rx["reservoir"] = {
        "capacity_nl": c.scaled(res, "capacity_ml", "reservoir", 10 ** 6),
        "fill_nl": c.scaled(res, "fill_ml", "reservoir", 10 ** 6),
        "low_alert_nl": c.scaled(res, "low_alert_ml", "reservoir", 10 ** 6),
        "empty_nl": c.scaled(res, "empty_ml", "reservoir", 10 ** 6, default=DEFAULT_EMPTY_ML),
    }
    cat = c.table(top.get("catheter", {}), "catheter", {"volume_ul"}, {"volume_ul"})
    rx["catheter"] = {"volume_nl": c.scaled(cat, "volume_ul", "catheter", 1000)}

    drugs_in = top.get("drug", [])
    if not isinstance(drugs_in, list):
        c.bad("drug", "must be [[drug]] tables")
        drugs_in = []
    drugs = []
    for i, d in enumerate(drugs_in):
        name = f"drug[{i}]"
        t = c.table(d, name, {"name", "concentration_ug_per_ml", "hard_limit_ug_per_day",
                              "soft_limit_ug_per_day"}, {"name", "concentration_ug_per_ml"})
        dname = t.get("name")
        if "name" in t and (not isinstance(dname, str) or not dname
                            or not all(0x20 <= ord(ch) <= 0x7E for ch in dname)):
            c.bad(f"{name}.name", "must be a non-empty printable ASCII string")
        drugs.append({
            "name": dname,
            "conc_ug_per_ml": c.integer(t, "concentration_ug_per_ml", name),
            "hard_ng_per_day": c.scaled(t, "hard_limit_ug_per_day", name, 1000, required=False),
            "soft_ng_per_day": c.scaled(t, "soft_limit_ug_per_day", name, 1000, required=False),
        })
    rx["drugs"] = drugs

    basal = c.table(top.get("basal", {}), "basal", {"steps", "days"}, {"steps"})
    steps = c.steps(basal.get("steps"), "basal.steps") if "steps" in basal else None
    days = None
    if "days" in basal:
        dt = c.table(basal["days"], "basal.days", set(DAYS), set())
        days = {}
        for day in DAYS:
            if day in dt:
                days[day] = c.steps(dt[day], f"basal.days.{day}")
    rx["basal"] = {"steps": steps, "days": days}

    periodic = []
    per_in = top.get("periodic_bolus", [])
    if not isinstance(per_in, list):
        c.bad("periodic_bolus", "must be [[periodic_bolus]] tables")
        per_in = []
    for i, p in enumerate(per_in):
        name = f"periodic_bolus[{i}]"
        t = c.table(p, name, {"times", "volume_ul", "duration_min"},
                    {"times", "volume_ul", "duration_min"})
        times = t.get("times")
        mins = []
        if "times" in t:
            if not isinstance(times, list) or not times:
                c.bad(f"{name}.times", 'must be a list of "HH:MM"')
            else:
                for j, tm in enumerate(times):
                    m = c.hhmm(tm, f"{name}.times[{j}]")
                    if m is not None:
                        mins.append(m)
        periodic.append({"times_min": mins,
                         "volume_nl": c.scaled(t, "volume_ul", name, 1000),
                         "duration_ms": c.scaled(t, "duration_min", name, 60000)})
    rx["periodic"] = periodic

    if "patient_bolus" in top:
        name = "patient_bolus"
        t = c.table(top["patient_bolus"], name,
                    {"volume_ul", "duration_min", "lockout_min", "max_per_24h"},
                    {"volume_ul", "duration_min", "lockout_min", "max_per_24h"})
        rx["patient"] = {"volume_nl": c.scaled(t, "volume_ul", name, 1000),
                         "duration_ms": c.scaled(t, "duration_min", name, 60000),
                         "lockout_ms": c.scaled(t, "lockout_min", name, 60000),
                         "max_per_24h": c.integer(t, "max_per_24h", name)}
    else:
        rx["patient"] = None

    if c.problems:
        raise PrescriptionError(path, c.problems)
    return rx


def load(path: str | Path) -> dict[str, Any]:
    """Read a TOML prescription file -> rx dict (PrescriptionError names file and field)."""
    return convert(tomlfile.read(path, PrescriptionError), str(Path(path)))


def _human(n: int, per: int) -> int | float:
    # a wire value in the file's unit: an int when whole, else the exact decimal as a float
    # (its shortest repr reads back exactly through Decimal(str(float)))
    d = Decimal(n) / per
    return int(d) if d == d.to_integral_value() else float(d)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def dump(rx: dict[str, Any], comment: str = "") -> str:
    """An rx dict as a prescription file (the inverse of convert: convert(tomllib.loads(dump(rx)))
    == normalize(rx)). comment: lines put first as TOML comments."""
    doc: dict[str, Any] = {}
    r = rx["reservoir"]
    doc["reservoir"] = {"capacity_ml": _human(r["capacity_nl"], units.NL_PER_ML),
                        "fill_ml": _human(r["fill_nl"], units.NL_PER_ML),
                        "low_alert_ml": _human(r["low_alert_nl"], units.NL_PER_ML),
                        "empty_ml": _human(r["empty_nl"], units.NL_PER_ML)}
    doc["catheter"] = {"volume_ul": _human(rx["catheter"]["volume_nl"], units.NL_PER_UL)}
    drugs = []
    for d in rx["drugs"]:
        e: dict[str, Any] = {"name": d["name"], "concentration_ug_per_ml": d["conc_ug_per_ml"]}
        if d.get("hard_ng_per_day") is not None:
            e["hard_limit_ug_per_day"] = _human(d["hard_ng_per_day"], units.NG_PER_UG)
        if d.get("soft_ng_per_day") is not None:
            e["soft_limit_ug_per_day"] = _human(d["soft_ng_per_day"], units.NG_PER_UG)
        drugs.append(e)
    doc["drug"] = drugs

    def steps(st: list[list[int]]) -> list[dict[str, Any]]:
        return [{"start": _hhmm(a), "rate_ul_per_h": _human(b, units.NL_PER_UL)} for a, b in st]
    basal: dict[str, Any] = {"steps": steps(rx["basal"]["steps"])}
    days = rx["basal"].get("days")
    if days:
        basal["days"] = {k: steps(v) for k, v in days.items() if v is not None}
    doc["basal"] = basal
    if rx.get("periodic"):
        doc["periodic_bolus"] = [{"times": [_hhmm(t) for t in p["times_min"]],
                                  "volume_ul": _human(p["volume_nl"], units.NL_PER_UL),
                                  "duration_min": _human(p["duration_ms"], units.MS_PER_MIN)}
                                 for p in rx["periodic"]]
    pat = rx.get("patient")
    if pat is not None:
        doc["patient_bolus"] = {"volume_ul": _human(pat["volume_nl"], units.NL_PER_UL),
                                "duration_min": _human(pat["duration_ms"], units.MS_PER_MIN),
                                "lockout_min": _human(pat["lockout_ms"], units.MS_PER_MIN),
                                "max_per_24h": pat["max_per_24h"]}
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    return head + tomli_w.dumps(doc)
