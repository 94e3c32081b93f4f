"""Property tests of the scenario time strings (CPython only: hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from pumphil import scenario as S


@given(st.integers(min_value=0, max_value=400 * S.MS_PER_DAY // 1000))
def test_event_time_round_trips_through_format(seconds: int) -> None:
    ms = seconds * 1000
    text = S.format_ms(ms)                    # "<d>d HH:MM:SS"
    assert S.parse_at(text) == ms
    assert S.parse_at(f"{seconds}s") == ms


@given(st.integers(min_value=0, max_value=10 ** 6), st.integers(min_value=0, max_value=3),
       st.sampled_from(sorted(S.UNITS_MS)))
def test_duration_is_exact_or_refused(mantissa: int, decimals: int, unit: str) -> None:
    value = Decimal(mantissa).scaleb(-decimals)
    text = f"{value:f}{unit}"
    exact = value * S.UNITS_MS[unit]
    if exact == exact.to_integral_value():
        assert S.parse_duration(text) == int(exact)
    else:
        try:
            S.parse_duration(text)
        except ValueError:
            return
        raise AssertionError(f"{text} accepted though not a whole number of ms")


@given(st.integers(min_value=0, max_value=999), st.integers(min_value=0, max_value=23),
       st.integers(min_value=0, max_value=59), st.integers(min_value=0, max_value=59))
def test_day_clock_form(days: int, hh: int, mm: int, ss: int) -> None:
    ms = ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000
    assert S.parse_at(f"{days}d {hh:02d}:{mm:02d}:{ss:02d}") == ms
    assert S.parse_at(f"{days}d {hh}:{mm:02d}") == ms - ss * 1000
