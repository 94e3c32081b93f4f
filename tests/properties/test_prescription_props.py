"""Hypothesis properties of pumpcore.prescription (CPython only)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))

import rx_helpers as H  # noqa: E402
from library_helpers import core_library  # noqa: E402
from pumpcore import prescription as P  # noqa: E402
from pumpcore import schedule as S  # noqa: E402

LIB = core_library()
EXAMPLES = [H.morphine_rx, H.simple_rx, H.ziconotide_rx, H.baclofen_rx, H.admixture_rx, H.flex_rx]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                      st.text(max_size=6), st.floats(allow_nan=False))
json_like = st.recursive(
    json_leaf,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=25,
)


def _paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k in obj:
            out += _paths(obj[k], path + (k,))
    elif isinstance(obj, list):
        for i, x in enumerate(obj):
            out += _paths(x, path + (i,))
    return out


def _leaf_paths(obj: Any) -> list[tuple]:
    return [p for p in _paths(obj) if p and not isinstance(_get(obj, p), (dict, list))]


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _set(obj: Any, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _check_result(problems: Any, review: Any) -> None:
    assert isinstance(problems, list)
    for p in problems:
        assert isinstance(p, list) and len(p) == 3 and isinstance(p[2], dict)
        assert isinstance(p[0], str) and isinstance(p[1], str)
        assert p[1] != P.INTERNAL_FIELD, problems
    assert isinstance(review, dict)
    c = review["checksum"]
    assert isinstance(c, str) and len(c) == 16 and all(ch in "0123456789abcdef" for ch in c)


@FAST
@given(data=st.data(), which=st.integers(0, len(EXAMPLES) - 1))
def test_checksum_changes_when_any_leaf_changes(data: st.DataObject, which: int) -> None:
    rx = P.normalize(EXAMPLES[which]())
    c0 = P.checksum(rx)
    path = data.draw(st.sampled_from(_leaf_paths(rx)))
    old = _get(rx, path)
    new = data.draw(json_leaf.filter(lambda v: type(v) is not type(old) or v != old))
    mutated = copy.deepcopy(rx)
    _set(mutated, path, new)
    assert P.checksum(mutated) != c0
    # and the review of a stage reports the same checksum as checksum()
    assert P.validate(mutated, LIB)[1]["checksum"] == P.checksum(mutated)


@FAST
@given(data=st.data(), which=st.integers(0, len(EXAMPLES) - 1))
def test_review_changes_name_the_mutated_field(data: st.DataObject, which: int) -> None:
    rx = P.normalize(EXAMPLES[which]())
    int_paths = [p for p in _leaf_paths(rx) if type(_get(rx, p)) is int]
    path = data.draw(st.sampled_from(int_paths))
    old = _get(rx, path)
    new = data.draw(st.integers(0, 2**29).filter(lambda v: v != old))
    mutated = copy.deepcopy(rx)
    _set(mutated, path, new)
    ch = P.changes(rx, mutated)
    assert len(ch) == 1 and ch[0][1:] == [old, new]


@FAST
@given(rx=json_like)
def test_validate_never_raises_on_arbitrary_json(rx: Any) -> None:
    problems, review = P.validate(rx, LIB)
    _check_result(problems, review)
    assert problems  # nothing random is a valid program


@FAST
@given(data=st.data(), which=st.integers(0, len(EXAMPLES) - 1), value=json_like)
def test_validate_never_raises_on_mutated_programs(data: st.DataObject, which: int,
                                                   value: Any) -> None:
    rx = EXAMPLES[which]()
    path = data.draw(st.sampled_from(_paths(rx)[1:]))
    _set(rx, path, value)
    cur = EXAMPLES[data.draw(st.integers(0, len(EXAMPLES) - 1))]()
    problems, review = P.validate(rx, LIB, current=cur, last_increase_age_ms=0)
    _check_result(problems, review)
    # also as the "current" program of another validation
    problems, review = P.validate(cur, LIB, current=rx)
    _check_result(problems, review)


rate = st.one_of(st.just(0), st.integers(2000, 1_000_000))


@st.composite
def steps_strategy(draw: st.DrawFn) -> list[list[int]]:
    starts = sorted(draw(st.sets(st.integers(1, 1439), max_size=12)))
    return [[s, draw(rate)] for s in [0, *starts]]


def _rx_with(steps: list[list[int]], days: dict | None = None) -> dict:
    rx = H.simple_rx()
    rx["drugs"] = [{"name": "clonidine", "conc_ug_per_ml": 1000,
                    "hard_ng_per_day": 2**29, "soft_ng_per_day": 2**29}]
    rx["basal"] = {"steps": steps, "days": days}
    return rx


@FAST
@given(steps=steps_strategy(), data=st.data())
def test_projected_dose_monotonic_in_rates(steps: list[list[int]], data: st.DataObject) -> None:
    p0, r0 = P.validate(_rx_with(steps), LIB)
    assert p0 == []
    i = data.draw(st.integers(0, len(steps) - 1))
    bigger = copy.deepcopy(steps)
    bigger[i][1] = data.draw(st.integers(max(steps[i][1], 2000), 1_000_000))
    p1, r1 = P.validate(_rx_with(bigger), LIB)
    assert p1 == []
    assert r1["daily_ng"]["clonidine"] >= r0["daily_ng"]["clonidine"]
    assert r1["daily_volume_nl"] >= r0["daily_volume_nl"]


def _brute_rolling_max_numerator(basal: dict) -> int:
    per_min = []
    for wd in range(7):
        steps = S.profile_for(basal, wd)
        per_min += [S.rate_at(steps, m) for m in range(1440)]
    week = per_min + per_min[:1440]
    window = sum(week[:1440])
    best = window
    for a in range(1, 7 * 1440):
        window += week[a + 1439] - week[a - 1]
        best = max(best, window)
    return best


@settings(max_examples=40, deadline=None)
@given(steps=steps_strategy(),
       days=st.dictionaries(st.sampled_from(S.WEEKDAYS), steps_strategy(), max_size=3))
def test_projection_equals_brute_force_rolling_24h(steps: list[list[int]],
                                                   days: dict) -> None:
    rx = _rx_with(steps, days or None)
    problems, review = P.validate(rx, LIB)
    assert problems == []
    num = _brute_rolling_max_numerator(rx["basal"])
    assert review["daily_volume_nl"] == num // 60
    assert review["daily_ng"]["clonidine"] == num * 1000 // 60000
    # never below any calendar day's volume
    for wd in range(7):
        assert review["daily_volume_nl"] >= S.daily_volume_nl(S.profile_for(rx["basal"], wd))
