"""The host's one unit converter: what people read and type <-> the pump's integer wire units.

Wire units (docs/architecture.md): nL, nL/h, ng, ng/day, ug/mL, ms, and the wall clock as
(day since 2000-01-01, ms of day) in LOCAL time. People read mL and uL, mg/day or ug/day (per
drug: its library's dose unit), mg/mL or ug/mL, minutes and hours, and local date and time.

Into the wire (`to_wire`) conversions are exact (decimal arithmetic): a value finer than the wire
unit, a string, a bool or a non-finite number is refused with a named error, never rounded.
Out of the wire (`volume`, `dose`, ...) values are shown with as many decimals as they need (up
to the wire resolution) and no trailing zeros; `dose_pair` adds decimals until a value and its
limit read differently. Who calls it: the CLI, the prescription and library file readers, the
refusal sentences (pumphost.explain), the titration planner.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal, InvalidOperation

NL_PER_ML = 1_000_000
NL_PER_UL = 1000
NG_PER_MG = 1_000_000
NG_PER_UG = 1000
MS_PER_MIN = 60_000
MS_PER_H = 3_600_000
MS_PER_DAY = 86_400_000
EPOCH = _dt.date(2000, 1, 1)    # wall-clock day 0 (docs/architecture.md "Time")


class UnitError(ValueError):
    """A value that cannot be converted exactly (message names what is wrong)."""


# --- into the wire -------------------------------------------------------------------------------
def decimal_of(value: object) -> Decimal:
    """A number people gave (int, float from TOML, Decimal) as a Decimal; strings and bools are
    refused: "20" is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise UnitError("must be a number, not " + ("a string" if isinstance(value, str)
                                                   else type(value).__name__))
    try:
        d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise UnitError("must be a number") from None
    if not d.is_finite():
        raise UnitError("must be a finite number")
    return d


def parse_decimal(text: str) -> Decimal:
    """A number typed on the command line ("0.5", "18")."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise UnitError(f"not a number: {text}") from None
    if not d.is_finite():
        raise UnitError(f"not a finite number: {text}")
    return d


def to_wire(value: object, factor: int) -> int:
    """value (in the human unit) x factor as an exact int (the wire unit), else UnitError."""
    d = decimal_of(value) * factor
    if d != d.to_integral_value():
        raise UnitError(f"too many decimals (resolution is 1/{factor} of the unit)")
    return int(d)


# --- out of the wire -----------------------------------------------------------------------------
def number(n: int | Decimal, per: int = 1, places: int | None = None) -> str:
    """n / per as a plain decimal: exact (or rounded to `places` decimals), no trailing zeros."""
    d = Decimal(n) / per
    if places is not None:
        d = d.quantize(Decimal(1).scaleb(-places))
    s = f"{d:f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s if s != "-0" else "0"


def volume(nl: int | None) -> str:
    """A volume: mL from 1 mL up (3 decimals), else uL."""
    if nl is None:
        return "unknown"
    if abs(nl) >= NL_PER_ML:
        return f"{number(nl, NL_PER_ML, 3)} mL"
    return f"{number(nl, NL_PER_UL, 3)} uL"


def rate(nl_per_h: int | None) -> str:
    """A flow: uL/h (and mL/day, how pump reports read it)."""
    if nl_per_h is None:
        return "unknown"
    if nl_per_h == 0:
        return "0 uL/h"
    return f"{number(nl_per_h, NL_PER_UL, 3)} uL/h ({number(nl_per_h * 24, NL_PER_ML, 3)} mL/day)"


def _per(unit: str) -> int:
    return NG_PER_MG if unit == "mg" else NG_PER_UG


def dose(ng: int | None, unit: str = "ug", per_day: bool = False, places: int = 3) -> str:
    """An amount of drug in the drug's unit ("mg" or "ug"): "36.4 mg/day", "900 ug"."""
    if ng is None:
        return "no limit"
    return f"{number(ng, _per(unit), places)} {unit}" + ("/day" if per_day else "")


def dose_pair(value: int, limit: int, unit: str, per_day: bool = True) -> tuple[str, str]:
    """value and limit worded with enough decimals to read differently when they differ."""
    places = 3
    while True:
        a = dose(value, unit, per_day, places)
        b = dose(limit, unit, per_day, places)
        if a != b or value == limit or places >= 6:
            return a, b
        places += 1


def concentration(ug_per_ml: int | None, unit: str = "ug") -> str:
    """A concentration in the drug's unit: "2 mg/mL", "500 ug/mL"."""
    if ug_per_ml is None:
        return "unknown"
    if unit == "mg":
        return f"{number(ug_per_ml, 1000, 3)} mg/mL"
    return f"{ug_per_ml} ug/mL"


def duration(ms: int | None) -> str:
    """A time span for people: "45 s", "23 min", "2 h 5 min", "3 days 4 h" (rounded up to the
    unit shown, so a wait is never under-stated)."""
    if ms is None:
        return "unknown"
    if ms < MS_PER_MIN:
        return f"{-(-ms // 1000)} s"
    mins = -(-ms // MS_PER_MIN)
    if mins < 60:
        return f"{mins} min"
    hours, m = divmod(mins, 60)
    if hours <= 72:
        return f"{hours} h" + (f" {m} min" if m else "")
    days, h = divmod(hours, 24)
    return f"{days} days" + (f" {h} h" if h else "")


# --- wall clock ----------------------------------------------------------------------------------
def local_naive(moment: _dt.datetime) -> _dt.datetime:
    """A time people gave, as the host's local wall time: an offset (2026-11-24T08:00+01:00) is
    honoured by converting that instant to local time, never dropped."""
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        return moment.astimezone().replace(tzinfo=None)
    return moment


def parse_local(text: str) -> _dt.datetime:
    """ISO date/time -> local naive datetime (see local_naive); UnitError names the format."""
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise UnitError(f"not an ISO time (2026-11-24T08:00, optionally +01:00): {text}") \
            from None
    return local_naive(moment)


def wall_clock_of(moment: _dt.datetime) -> tuple[int, int]:
    """(day since 2000-01-01, ms of day) of a local time, as `set_clock` expects (an aware
    datetime is converted to local time first)."""
    moment = local_naive(moment)
    day = (moment.date() - EPOCH).days
    ms = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000 \
        + moment.microsecond // 1000
    return day, ms


def wall_datetime(day: int, ms: int) -> _dt.datetime | None:
    """The local datetime of a pump wall-clock stamp; None for -1 (the clock was not set)."""
    if day is None or day < 0 or ms is None or ms < 0:
        return None
    return _dt.datetime.combine(EPOCH, _dt.time()) + _dt.timedelta(days=day, milliseconds=ms)


def wall_text(day: int, ms: int, seconds: bool = False) -> str:
    """"2026-11-24 08:00" (local time), or "clock not set"."""
    moment = wall_datetime(day, ms)
    if moment is None:
        return "clock not set"
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def at_after(ms: int, now: _dt.datetime | None = None) -> str:
    """When something `ms` from now happens, in local time: "14:32 (in 23 min)"."""
    now = now or _dt.datetime.now()
    when = now + _dt.timedelta(milliseconds=ms)
    fmt = "%H:%M" if when.date() == now.date() else "%Y-%m-%d %H:%M"
    return f"{when.strftime(fmt)} (in {duration(ms)})"


# --- numbers for reports (simulate/HIL reports, plots): floats in a fixed unit and the scale a
# report reads a drug amount in. People-facing text above; these feed JSON fields and axes.
def microlitres(nl: int) -> float:
    """nL as uL, 3 decimals (a report's volume fields)."""
    return round(nl / NL_PER_UL, 3)


def micrograms(ng: int) -> float:
    """ng as ug, 3 decimals (a report's drug amount fields)."""
    return round(ng / NG_PER_UG, 3)


def amount_scale(*ug: float | int | None) -> tuple[str, float]:
    """("mg", 1000) when the largest of the amounts (ug) is 1 mg or more, else ("ug", 1): one
    scale for a measured value and its limits."""
    top = max((abs(float(v)) for v in ug if v is not None), default=0.0)
    return ("mg", 1000.0) if top >= 1000 else ("ug", 1.0)


def amount(ug: float | int, label: str, per: float) -> str:
    """An amount (ug) in the scale amount_scale chose."""
    return f"{ug / per:,.4g} mg" if label == "mg" else f"{ug:,.4g} ug"


def dose_unit(hard_limit_ug: float | None) -> tuple[str, float]:
    """(unit label, ug per unit) for a drug's dose axis: mg/day unless the hard limit is below
    1 mg/day (then ug/day, so ziconotide's 19.2 ug/day does not read 0.0192)."""
    if hard_limit_ug is not None and hard_limit_ug < 1000:
        return "ug/day", 1.0
    return "mg/day", 1000.0
