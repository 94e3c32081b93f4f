"""Prescriptions as the docs define them (docs/architecture.md rx dict, docs/prescription.md):
the example drug library, effective limits, the projected daily dose, the dose-related validation
rules (hard limit, soft limit, titration, start dose, max bolus) and the schedule by wall time.

Independent of pumpcore: weekdays come from Python's datetime (day 0 = 2000-01-01), the projected
dose is a brute-force maximum over every minute of the week rather than the firmware's
step-boundary evaluation.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

MS_PER_MIN = 60_000
MS_PER_H = 3_600_000
MS_PER_DAY = 86_400_000
EPOCH = dt.date(2000, 1, 1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIME_RATE_NL_PER_H = 1_000_000     # therapy.md: a priming bolus at 1 mL/h
UNKNOWN_CONC_MAX = 100_000


@dataclass(frozen=True)
class Entry:
    """A drug-library entry (prescription.md "Example drug library")."""

    conc_min: int
    conc_max: int
    soft: int | None
    hard: int | None
    max_bolus: int | None = None
    step_ng: int | None = None
    step_pct: int | None = None
    interval_ms: int | None = None
    start_max: int | None = None


# The example library the factory loads (prescription.md "The example library", as
# `itpump library show example` prints it), in ng/day, ng, ug/mL, ms. Drugs without an entry
# (midazolam, ...) need explicit hard and soft limits.
LIBRARY: dict[str, Entry] = {
    "baclofen": Entry(50, 2_000, 800_000, 1_000_000, 100_000, None, 30, 24 * MS_PER_H, 300_000),
    "bupivacaine": Entry(300, 30_000, 15_000_000, 20_000_000),
    "clonidine": Entry(10, 1_000, 480_000, 600_000),
    "hydromorphone": Entry(150, 15_000, 8_000_000, 10_000_000, None, None, 30, 24 * MS_PER_H),
    "morphine": Entry(500, 25_000, 15_000_000, 30_000_000, 1_000_000, 1_000_000, 30,
                      24 * MS_PER_H),
    "ziconotide": Entry(25, 100, 15_360, 19_200, 1_200, 2_400, None, 48 * MS_PER_H, 2_400),
}


@functools.lru_cache(maxsize=4096)
def weekday(day: int) -> int:
    """0 = Monday, for day = days since 2000-01-01."""
    return (EPOCH + dt.timedelta(days=day)).weekday()


def wall_parts(wall_ms: int) -> tuple[int, int]:
    return wall_ms // MS_PER_DAY, wall_ms % MS_PER_DAY


def wall_of(moment: dt.datetime) -> int:
    return ((moment.date() - EPOCH).days * MS_PER_DAY
            + ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000)


@dataclass
class Program:
    """A validated, committed prescription, with what the model needs from it."""

    rx: dict[str, Any]
    checksum: str = ""                                        # the pump's, once staged
    drugs: dict[str, int] = field(default_factory=dict)       # name -> ug/mL, in rx order
    hard: dict[str, int | None] = field(default_factory=dict)
    soft: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def of(cls, rx: dict[str, Any]) -> Program:
        p = cls(rx)
        for d in rx["drugs"]:
            name = d["name"]
            p.drugs[name] = d["conc_ug_per_ml"]
            p.soft[name], p.hard[name] = effective_limits(name, d.get("soft_ng_per_day"),
                                                          d.get("hard_ng_per_day"))
        return p

    @property
    def basal(self) -> dict[str, Any]:
        return self.rx["basal"]

    @property
    def periodic(self) -> list[dict[str, Any]]:
        return self.rx.get("periodic") or []

    @property
    def patient(self) -> dict[str, Any] | None:
        return self.rx.get("patient")

    @property
    def catheter_nl(self) -> int:
        return self.rx["catheter"]["volume_nl"]

    def steps_for(self, weekday_i: int) -> list[list[int]]:
        days = self.basal.get("days") or {}
        prof = days.get(WEEKDAYS[weekday_i])
        return prof if prof else self.basal["steps"]

    def rate_at(self, wall_ms: int) -> int:
        day, ms = wall_parts(wall_ms)
        minute = ms // MS_PER_MIN
        rate = 0
        for start, r in self.steps_for(weekday(day)):
            if start <= minute:
                rate = r
        return rate

    def next_rate_change(self, wall_ms: int) -> int:
        """The next wall ms (> wall_ms) at a step start or midnight (a weekday profile changes)."""
        day, ms = wall_parts(wall_ms)
        minute = ms // MS_PER_MIN
        for start, _ in self.steps_for(weekday(day)):
            if start > minute:
                return day * MS_PER_DAY + start * MS_PER_MIN
        return (day + 1) * MS_PER_DAY

    def max_basal_rate(self) -> int:
        rates = [r for _, r in self.basal["steps"]]
        for prof in (self.basal.get("days") or {}).values():
            if prof:
                rates += [r for _, r in prof]
        return max(rates)

    def periodic_times(self) -> dict[int, tuple[int, int]]:
        """start minute -> (volume_nl, duration_ms), all periodic programs together."""
        out = {}
        for p in self.periodic:
            for t in p["times_min"]:
                out[t] = (p["volume_nl"], p["duration_ms"])
        return out


def effective_limits(name: str, soft: int | None, hard: int | None) -> tuple[int | None, int | None]:
    """prescription.md rules 9-11: an explicit hard limit only tightens the library's; an
    explicit soft limit may lie anywhere up to the hard limit; an explicit hard below the
    library's soft lowers the effective soft to it."""
    e = LIBRARY.get(name)
    eff_hard = hard if hard is not None else (e.hard if e else None)
    eff_soft = soft if soft is not None else (e.soft if e else None)
    if eff_hard is not None and eff_soft is not None and eff_soft > eff_hard:
        eff_soft = eff_hard
    return eff_soft, eff_hard


_NUMERATORS: dict[str, int] = {}


def basal_numerator(program: Program) -> int:
    """max over every rolling 24-h window of the weekly schedule of sum(rate x minutes)
    (prescription.md "Projected daily dose"), by brute force over the 10,080 minutes of a week."""
    key = repr([program.steps_for(wd) for wd in range(7)])
    got = _NUMERATORS.get(key)
    if got is None:
        got = _NUMERATORS[key] = _basal_numerator(program)
        if len(_NUMERATORS) > 4096:
            _NUMERATORS.clear()
    return got


def _basal_numerator(program: Program) -> int:
    week: list[int] = []
    for wd in range(7):
        steps = program.steps_for(wd)
        for i, (start, r) in enumerate(steps):
            end = steps[i + 1][0] if i + 1 < len(steps) else 1440
            week.extend([r] * (end - start))
    n = len(week)
    run = sum(week[:1440])
    best = run
    for s in range(1, n):
        run += week[(s + 1439) % n] - week[s - 1]
        if run > best:
            best = run
    return best


def projected_numerator(program: Program) -> int:
    num = basal_numerator(program)
    bol = sum(len(p["times_min"]) * p["volume_nl"] for p in program.periodic)
    pat = program.patient
    if pat:
        bol += pat["max_per_24h"] * pat["volume_nl"]
    return num + 60 * bol


def projected_daily_ng(program: Program) -> dict[str, int]:
    num = projected_numerator(program)
    return {d: num * c // 60_000 for d, c in program.drugs.items()}


def predict_problems(program: Program, current: Program | None,
                     last_increase_age_ms: dict[str, int | None],
                     ) -> tuple[set[str], dict[str, int], list[str]]:
    """The dose-related refusals (prescription.md rules 18, 19, 21-23) of a structurally valid
    program, its daily dose per drug and its soft-limit breaches. A first program above a start
    rule is not refused: its commit needs `continuing` (see start_breaches)."""
    problems: set[str] = set()
    daily = projected_daily_ng(program)
    cur_daily = projected_daily_ng(current) if current is not None else {}
    soft_breaches = []
    for d, c in program.drugs.items():
        e = LIBRARY.get(d)
        if program.hard[d] is not None and daily[d] > program.hard[d]:   # type: ignore[operator]
            problems.add("hard_limit")
        if program.soft[d] is not None and daily[d] > program.soft[d]:   # type: ignore[operator]
            soft_breaches.append(d)
        if e is None:
            continue
        if e.max_bolus is not None:
            vols = [p["volume_nl"] for p in program.periodic]
            if program.patient:
                vols.append(program.patient["volume_nl"])
            if any(v * c // 1000 > e.max_bolus for v in vols):
                problems.add("bolus_amount")
        cur = cur_daily.get(d, 0)
        starts = current is None or d not in current.drugs or cur == 0
        if starts and current is not None:
            if e.start_max is not None and daily[d] > e.start_max:
                problems.add("start_dose")
        # a starting drug has the start rule, not titration (prescription.md: "percent-only
        # titration cannot start from 0", so the start limit stands in for it)
        if not starts and daily[d] > cur:
            if e.step_ng is not None or e.step_pct is not None:
                allowed = max(e.step_ng or 0, cur * (e.step_pct or 0) // 100)
                if daily[d] - cur > allowed:
                    problems.add("titration_step")
            age = last_increase_age_ms.get(d)
            if e.interval_ms is not None and age is not None and age < e.interval_ms:
                problems.add("titration_interval")
    return problems, daily, sorted(soft_breaches)


def start_breaches(program: Program) -> list[str]:
    """Drugs of a FIRST program above their start rule: the commit needs `continuing`
    (therapy.md: a pump replacement continues an existing therapy)."""
    daily = projected_daily_ng(program)
    return sorted(d for d in program.drugs
                  if (e := LIBRARY.get(d)) is not None and e.start_max is not None
                  and daily[d] > e.start_max)


def soft_raised(program: Program) -> list[str]:
    """Drugs whose explicit soft limit lies above the library's (the commit needs confirm_soft)."""
    out = []
    for d in program.rx["drugs"]:
        e = LIBRARY.get(d["name"])
        soft = d.get("soft_ng_per_day")
        if e is not None and e.soft is not None and soft is not None and soft > e.soft:
            out.append(d["name"])
    return sorted(out)
