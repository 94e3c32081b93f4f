"""Hypothesis strategies for the stateful test: valid prescriptions near and over the limits
(prescription.md rules), mono- and multi-drug admixtures, and the sequence's set-up.

Programs are structurally valid (rules 1-18 hold by construction) so that what the pump decides
about them is about doses: the hard/soft limits (explicit limits are drawn relative to the
program's own projected daily dose, from 10 % under it to 3 times over), titration and start rules
of the library drugs. Rates stay low on the whole (a sequence must simulate in well under a
second); limits are tight so that the rolling 24 h reaches them within a sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from refmodel.rx import LIBRARY, MS_PER_H, MS_PER_MIN, Program, projected_daily_ng

# within the example library's ranges (prescription.md); midazolam has no entry: explicit limits,
# any concentration up to 100 mg/mL, no titration rules
CONCS = {
    "ziconotide": (25, 100), "morphine": (500, 10_000, 25_000), "baclofen": (50, 500, 2_000),
    "clonidine": (10, 40, 1_000), "bupivacaine": (300, 7_500), "hydromorphone": (150, 2_500),
    "midazolam": (4, 40, 1_000, 3_333),
}
RATES = (0, 2_000, 3_000, 5_000, 8_000, 12_000, 20_000, 40_000)
FAST_RATES = (100_000,)
LIMIT_FACTORS = (0.9, 1.0, 1.0, 1.02, 1.1, 1.5, 3.0)


@dataclass(frozen=True)
class Setup:
    drugs: tuple[tuple[str, int], ...]      # (name, ug/mL), the first admixture
    catheter_nl: int
    capacity_nl: int
    fill_nl: int
    low_alert_nl: int
    empty_nl: int
    start_wall_ms: int
    seed: int
    bias_pct: int = 0                       # the mechanism's true stroke: nominal + this %


@st.composite
def admixtures(draw: Any, names: tuple[str, ...] | None = None) -> tuple[tuple[str, int], ...]:
    if names is None:
        n = draw(st.sampled_from((1, 1, 2, 3)))
        pool = list(CONCS) + ["midazolam"] * 2       # the free drug more often
        names = tuple(dict.fromkeys(draw(st.permutations(pool))))[:n]
    return tuple((d, draw(st.sampled_from(CONCS[d]))) for d in names)


@st.composite
def setups(draw: Any) -> Setup:
    empty = draw(st.sampled_from((0, 100_000, 500_000)))
    low = empty + draw(st.sampled_from((50_000, 500_000, 2_000_000)))
    small = draw(st.booleans()) and draw(st.booleans())
    fill = low + (draw(st.integers(10, 400)) * 250 if small else 10_000_000)
    day = draw(st.integers(9_400, 9_800))              # 2025-2026
    minute = draw(st.integers(0, 1439))
    return Setup(drugs=draw(admixtures()),
                 catheter_nl=draw(st.sampled_from((5_000, 12_500, 30_000, 60_000))),
                 capacity_nl=20_000_000, fill_nl=min(fill, 20_000_000), low_alert_nl=low,
                 empty_nl=empty, start_wall_ms=day * 86_400_000 + minute * MS_PER_MIN,
                 seed=draw(st.integers(0, 2**16)),
                 # nominal, SynchroMed's +1 %, and the board's documented worst case (+5 %,
                 # safety.md: the pump counts every stroke at +5 %)
                 bias_pct=draw(st.sampled_from((0, 1, 5, 5))))


def _max_bolus_nl(drugs: tuple[tuple[str, int], ...]) -> int:
    cap = 200_000
    for d, c in drugs:
        e = LIBRARY.get(d)
        if e is not None and e.max_bolus is not None:
            cap = min(cap, (e.max_bolus * 1000 + 999) // c)
    return max(250, cap)


@st.composite
def steps_lists(draw: Any, fast: bool) -> list[list[int]]:
    n = draw(st.integers(1, 4))
    starts = sorted(set([0] + draw(st.lists(st.integers(1, 1439), max_size=n - 1))))
    rates = RATES + (FAST_RATES if fast else ())
    return [[s, draw(st.sampled_from(rates))] for s in starts]


@st.composite
def bolus_shapes(draw: Any, cap_nl: int) -> tuple[int, int]:
    vol = draw(st.sampled_from((250, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000)))
    vol = max(250, min(vol, cap_nl))
    mins = draw(st.sampled_from((1, 2, 5, 15, 30, 60)))
    dur = max(mins * MS_PER_MIN, -(-vol * MS_PER_H // 1_000_000))   # rate <= 1 mL/h
    return vol, dur


def _no_overlap(times: list[tuple[int, int]]) -> bool:
    """Periodic starts (minute, duration_ms) never overlap, over midnight too (rule 16)."""
    ts = sorted(times)
    for i, (m, dur) in enumerate(ts):
        nxt = ts[(i + 1) % len(ts)][0] + (1440 if i + 1 == len(ts) else 0)
        if len(ts) > 1 and m * MS_PER_MIN + dur + MS_PER_MIN > nxt * MS_PER_MIN:
            return False
        if len(ts) == 1 and dur + MS_PER_MIN > 1440 * MS_PER_MIN:
            return False
    return True


@st.composite
def programs(draw: Any, setup: Setup, drugs: tuple[tuple[str, int], ...] | None = None,
             near: bool = True) -> dict[str, Any]:
    """A valid prescription for the set-up's catheter and reservoir."""
    drugs = drugs or setup.drugs
    fast = draw(st.integers(0, 9)) == 0
    cap = _max_bolus_nl(drugs)
    basal: dict[str, Any] = {"steps": draw(steps_lists(fast)), "days": None}
    if draw(st.integers(0, 4)) == 0:
        basal["days"] = {draw(st.sampled_from(("sat", "sun", "mon"))): draw(steps_lists(fast))}
    periodic: list[dict[str, Any]] = []
    if draw(st.booleans()):
        vol, dur = draw(bolus_shapes(cap))
        times = sorted(set(draw(st.lists(st.integers(0, 1439), min_size=1, max_size=3))))
        if _no_overlap([(t, dur) for t in times]):
            periodic.append({"times_min": times, "volume_nl": vol, "duration_ms": dur})
    patient = None
    if draw(st.booleans()):
        vol, dur = draw(bolus_shapes(cap))
        lockout = max(dur, draw(st.sampled_from((MS_PER_MIN, 10 * MS_PER_MIN, MS_PER_H,
                                                 4 * MS_PER_H))))
        patient = {"volume_nl": vol, "duration_ms": dur, "lockout_ms": lockout,
                   "max_per_24h": draw(st.integers(1, 6))}
    rx: dict[str, Any] = {
        "reservoir": {"capacity_nl": setup.capacity_nl, "fill_nl": setup.fill_nl,
                      "low_alert_nl": setup.low_alert_nl, "empty_nl": setup.empty_nl},
        "catheter": {"volume_nl": setup.catheter_nl},
        "drugs": [{"name": d, "conc_ug_per_ml": c, "hard_ng_per_day": None,
                   "soft_ng_per_day": None} for d, c in drugs],
        "basal": basal, "periodic": periodic, "patient": patient,
    }
    daily = projected_daily_ng(Program.of(_with_placeholder_limits(rx)))
    for entry in rx["drugs"]:
        d = entry["name"]
        e = LIBRARY.get(d)
        factor = draw(st.sampled_from(LIMIT_FACTORS)) if near else 3.0
        hard = max(1, int(daily[d] * factor))
        if e is not None:
            if draw(st.booleans()) or e.hard is None or hard > e.hard:
                continue                       # the library's limits
            entry["hard_ng_per_day"] = hard
            if e.soft is not None and e.soft > hard:
                entry["soft_ng_per_day"] = hard
        else:
            entry["hard_ng_per_day"] = hard
            entry["soft_ng_per_day"] = draw(st.sampled_from((hard, max(1, hard * 4 // 5))))
    return rx


def _with_placeholder_limits(rx: dict[str, Any]) -> dict[str, Any]:
    out = dict(rx)
    out["drugs"] = [dict(d, hard_ng_per_day=d["hard_ng_per_day"] or 10**9,
                         soft_ng_per_day=d["soft_ng_per_day"] or 10**9) for d in rx["drugs"]]
    return out
