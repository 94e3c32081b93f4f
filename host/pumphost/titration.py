"""Titration planning: the path from the current program to a new one within the library's step
and interval rules, judged by the firmware's own validation (pumpcore.prescription.validate).

Each step is the new program with its basal rates scaled down as little as the step rule allows
(the boluses are the new program's, unchanged), and comes when the interval rule allows the next
increase. The last step is the new program itself. Research/education software: a plan is a
proposal for a clinician to review, never a schedule the pump runs by itself.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pumpcore import prescription as P
from pumpcore import reasons as R
from pumpcore.library import Library

MAX_STEPS = 60
SCALE = 1000                     # basal scale in per mille
_STEP_RULES = (R.TITRATION_STEP, R.TITRATION_INTERVAL, R.START_DOSE)


class PlanError(ValueError):
    """No plan: the target itself is refused, or no step can move towards it."""

    def __init__(self, message: str, problems: list[list[Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Step:
    n: int
    after_ms: int                       # from now: the earliest time this step may be committed
    rx: dict[str, Any]
    scale_permille: int                 # of the target's basal rates
    daily_ng: dict[str, int]
    soft_breaches: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)


def _scaled(target: dict[str, Any], f: int) -> dict[str, Any]:
    rx = copy.deepcopy(P.normalize(target))

    def scale(steps: list[list[int]]) -> None:
        for st in steps:
            r = st[1] * f // SCALE
            st[1] = 0 if r == 0 else max(r, P.RATE_MIN_NL_PER_H)
    scale(rx["basal"]["steps"])
    for day_steps in (rx["basal"].get("days") or {}).values():
        scale(day_steps)
    return rx


def _blocking(problems: list[list[Any]]) -> list[list[Any]]:
    return [p for p in problems if p[0] not in _STEP_RULES]


def plan(current: dict[str, Any] | None, target: dict[str, Any], library: Library,
         increase_age_ms: dict[str, int | None] | None = None,
         stroke_nl: int = 250) -> list[Step]:
    """Steps from `current` (None: a first program) to `target`. increase_age_ms: ms since each
    drug's last increase as the pump reports it (None/missing: long ago)."""
    problems, rv = P.validate(target, library, None, None, stroke_nl)
    hard = _blocking(problems)
    if hard:
        raise PlanError("the new program is refused whatever the path", hard)
    ages = dict(increase_age_ms or {})
    steps: list[Step] = []
    prev = current
    t = 0
    for n in range(1, MAX_STEPS + 1):
        wait = _wait(prev, target, library, ages, stroke_nl)
        t += wait
        f = _largest_scale(prev, target, library, stroke_nl)
        rx = target if f == SCALE else _scaled(target, f)
        _p, srv = P.validate(rx, library, prev, None, stroke_nl)
        if prev is not None and n > 1 and not P.increased_drugs(rx, prev, library):
            raise PlanError("no step can increase the dose further (the boluses alone, or the "
                            "rate rounding, exceed one step)")
        steps.append(Step(n, t, P.normalize(rx), f, dict(srv["daily_ng"]),
                          list(srv["soft_breaches"]), dict(srv.get("units") or {})))
        if f == SCALE:
            return steps
        # the pump records the increase at commit: the next one waits the full interval
        for name in P.increased_drugs(rx, prev, library):
            ages[name] = 0
        prev = rx
    raise PlanError(f"more than {MAX_STEPS} steps")


def _wait(prev: dict[str, Any] | None, target: dict[str, Any], library: Library,
          ages: dict[str, int | None], stroke_nl: int) -> int:
    """ms until the interval rule allows increasing every drug that the next step increases."""
    if prev is None:
        return 0
    wait = 0
    for name in P.increased_drugs(target, prev, library):
        e = library.entry(name)
        age = ages.get(name)
        if e is not None and e.step_interval_ms is not None and age is not None \
                and age < e.step_interval_ms:
            wait = max(wait, e.step_interval_ms - age)
    for name in ages:
        a = ages[name]
        if a is not None:
            ages[name] = a + wait
    return wait


def _largest_scale(prev: dict[str, Any] | None, target: dict[str, Any], library: Library,
                   stroke_nl: int) -> int:
    def ok(f: int) -> bool:
        rx = target if f == SCALE else _scaled(target, f)
        problems, _ = P.validate(rx, library, prev, None, stroke_nl)
        if prev is None:     # a first program: only the start rule limits it
            return not [p for p in problems if p[0] == R.START_DOSE]
        return not [p for p in problems if p[0] in (R.TITRATION_STEP, R.START_DOSE)]
    if ok(SCALE):
        return SCALE
    lo, hi = 0, SCALE
    if not ok(0):
        raise PlanError("even without basal delivery the new program's boluses increase a drug "
                        "beyond one step: titrate the boluses separately")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
