"""Campaign files (TOML; docs/campaigns.md): what population, which faults, which programs, how many
runs, and one campaign seed from which every run's seeds are derived.

A campaign is a list of runs numbered 0..N-1: the fault classes in file order, each with its
``runs`` count; within a class, run j uses program ``j mod P`` (the programs in file order), so
every class meets every program as evenly as the counts allow. Run k is drawn from its own seeds
(:func:`run_seeds`), never from a shared stream, so it is the same run whichever worker runs it,
in whatever order, and it can be replayed alone: :func:`scenario_text` writes it as an ordinary
scenario file (docs/simulate.md) with the drawn plant figures in its ``[plant]`` table, the fault
as a timed event and the prescription inline. The campaign runs exactly that scenario
(:func:`scenario_for` parses the same document), so the file and the run cannot drift apart.

Distributions draw by inverse CDF from ``random.Random(seed).random()`` (the one method whose
sequence Python guarantees across versions) through ``statistics.NormalDist`` where a normal
quantile is needed; bounds truncate the distribution (no rejection loop).

Every problem in a file is reported at once in :class:`CampaignError` (field, reason), like
scenario and prescription files.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import tomli_w
from pumphost.prescription_file import PrescriptionError
from pumphost.prescription_file import convert as convert_rx

from ..plant.params import OVERRIDE_RANGES
from ..scenario import (
    DEFAULT_START,
    FAULT_ALARMS,
    MAX_DURATION_MS,
    MS_PER_DAY,
    MS_PER_S,
    Scenario,
    format_ms,
    parse_duration,
)
from ..scenario import parse as parse_scenario

#: fault kinds -> the plant action that injects them and the alarm code the firmware must raise
#: (the scenario vocabulary's FAULT_ALARMS)
FAULT_KINDS: dict[str, tuple[str | None, str | None]] = {
    "none": (None, None),
    **{kind: (action, FAULT_ALARMS[action][0]) for kind, action in (
        ("occlusion", "occlusion"), ("dislodgement", "dislodge"), ("leak", "leak"))},
}
SEVERITIES = ("partial", "complete")
#: campaign-only plant names: rates counted per minute, drawn as whole numbers and set as Hz.
#: Whole beats/breaths per minute repeat within a minute at integer ms, which keeps the plant's
#: tone-table fast path (pumphil.plant.model); a cardiac_hz drawn directly works, more slowly.
PER_MINUTE = {"csf.heart_rate_per_min": "csf.cardiac_hz",
              "csf.respiratory_rate_per_min": "csf.respiratory_hz"}
DISTRIBUTIONS = {
    "constant": ("value",),
    "uniform": ("min", "max"),
    "loguniform": ("min", "max"),
    "triangular": ("min", "mode", "max"),
    "normal": ("mean", "sd", "min", "max"),
    "lognormal": ("median", "gsd", "min", "max"),
    "choice": ("values",),
}
DEFAULT_OBSERVE_MS = MS_PER_DAY
DEFAULT_RATE_BANDS_UL_PER_DAY = (150, 600)
MAX_RUNS = 1_000_000
_P_EPS = 1e-12


class CampaignError(ValueError):
    """The campaign file is unreadable or invalid; ``problems`` lists (field, reason)."""

    reason = "campaign"

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(f"{f}: {why}" if f else why
                                                 for f, why in problems))


@dataclass(frozen=True)
class Distribution:
    """A named distribution with bounds ``lo``..``hi`` (inclusive). ``params`` by DISTRIBUTIONS;
    ``step``: draws are rounded to a multiple of it (None: not rounded)."""

    kind: str
    params: dict[str, Any]
    lo: float
    hi: float
    step: float | None = None

    def draw(self, u: float) -> float:
        """The value at quantile u in [0, 1) (inverse CDF, truncated to lo..hi)."""
        k, p = self.kind, self.params
        if k == "constant":
            x = float(p["value"])
        elif k == "choice":
            vals, cum = p["values"], p["cum_weights"]
            i = next((i for i, c in enumerate(cum) if u * cum[-1] < c), len(vals) - 1)
            x = float(vals[i])
        elif k == "uniform":
            x = self.lo + (self.hi - self.lo) * u
        elif k == "loguniform":
            x = math.exp(math.log(self.lo) + (math.log(self.hi) - math.log(self.lo)) * u)
        elif k == "triangular":
            a, c, b = self.lo, float(p["mode"]), self.hi
            fc = (c - a) / (b - a)
            x = a + math.sqrt(u * (b - a) * (c - a)) if u < fc else \
                b - math.sqrt((1 - u) * (b - a) * (b - c))
        else:  # normal / lognormal, truncated by inverse CDF
            if k == "normal":
                nd, f = NormalDist(float(p["mean"]), float(p["sd"])), (lambda v: v)
            else:
                nd, f = NormalDist(math.log(p["median"]), math.log(p["gsd"])), math.log
            fa, fb = nd.cdf(f(self.lo)), nd.cdf(f(self.hi))
            q = min(max(fa + (fb - fa) * u, _P_EPS), 1 - _P_EPS)
            x = nd.inv_cdf(q)
            x = x if k == "normal" else math.exp(x)
        if self.step:
            x = round(x / self.step) * self.step
        x = min(max(x, self.lo), self.hi)
        return float(f"{x:.6g}")       # six significant digits: readable scenario files

    def describe(self) -> str:
        shown = {k: v for k, v in self.params.items() if k != "cum_weights"}
        return self.kind + "(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"


@dataclass(frozen=True)
class Program:
    """A therapy program: a prescription (file format ``doc``, wire form ``rx``), its mean basal
    volume per day and the rate band that volume falls in."""

    name: str
    doc: dict[str, Any]
    rx: dict[str, Any]
    daily_ul: float
    band: str


@dataclass(frozen=True)
class FaultClass:
    """``kind`` in FAULT_KINDS; ``onset`` in ms from t=0 (None for kind "none"); ``observe_ms``:
    how long a run goes on after the onset; ``plant``: the class's own plant distributions
    (severity figures such as partial_occlusion_factor), drawn after the population's."""

    name: str
    kind: str
    runs: int
    severity: str | None = None
    onset: Distribution | None = None
    observe_ms: int = DEFAULT_OBSERVE_MS
    plant: dict[str, Distribution] = field(default_factory=dict)

    @property
    def expected_alarm(self) -> str | None:
        return FAULT_KINDS[self.kind][1]


@dataclass(frozen=True)
class Campaign:
    name: str
    seed: int
    duration_ms: int              # the fault-free class's runs; faulted runs: onset + observe
    start_time: _dt.datetime
    programs: tuple[Program, ...]
    plant: dict[str, Distribution]
    faults: tuple[FaultClass, ...]
    rate_bands_ul_per_day: tuple[float, ...]
    worst_runs: int
    path: str
    digest: str                   # SHA-256 of the resolved campaign (prescriptions included)
    doc: dict[str, Any]           # the resolved campaign: the file with prescriptions inline

    def resolved_text(self) -> str:
        """The campaign as a self-contained TOML file (prescriptions inline): same digest."""
        return (f"# Campaign {self.name!r} ({self.digest[:12]}), resolved from {self.path}: "
                "prescriptions inline.\n" + tomli_w.dumps(self.doc))

    @property
    def runs(self) -> int:
        return sum(f.runs for f in self.faults)

    def locate(self, run: int) -> tuple[FaultClass, int]:
        """Run number -> (its fault class, its index within the class)."""
        if not 0 <= run < self.runs:
            raise IndexError(f"run {run} is not in this campaign (0..{self.runs - 1})")
        for fc in self.faults:
            if run < fc.runs:
                return fc, run
            run -= fc.runs
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class RunSpec:
    """Everything drawn for one run. ``plant``: dotted plant figure -> value (population and
    class draws); ``onset_ms`` None for fault-free runs."""

    run: int
    fault_class: str
    kind: str
    severity: str | None
    program: str
    rate_band: str
    seed: int                     # the scenario seed (plant noise and drift)
    draw_seed: int                # the seed the figures below were drawn from
    plant: dict[str, float]
    onset_ms: int | None
    duration_ms: int
    expected_alarm: str | None


# --- seeds ----------------------------------------------------------------------------------------
def derive_seed(campaign_seed: int, fault_class: str, index: int, purpose: str) -> int:
    """A 62-bit seed for one purpose ("draw" or "plant") of run ``index`` of a fault class:
    the first 8 bytes of SHA-256 over the campaign seed, the class name, the index and the purpose.
    Independent of the run's position in the campaign, of other classes' counts and of any
    worker: a class's runs keep their seeds when another class is added or resized."""
    h = hashlib.sha256(f"itpump-campaign\0{campaign_seed}\0{fault_class}\0{index}\0{purpose}"
                       .encode()).digest()
    return int.from_bytes(h[:8], "big") >> 2


def run_seeds(c: Campaign, run: int) -> tuple[int, int]:
    """(draw seed, plant seed) of run ``run``."""
    fc, j = c.locate(run)
    return derive_seed(c.seed, fc.name, j, "draw"), derive_seed(c.seed, fc.name, j, "plant")


# --- drawing a run ------------------------------------------------------------------------------
def draw(c: Campaign, run: int) -> RunSpec:
    """Run ``run``'s figures: the population's plant distributions in name order, then the
    class's, then the onset, each from the next ``random()`` of the run's draw seed."""
    fc, j = c.locate(run)
    draw_seed, plant_seed = run_seeds(c, run)
    rng = random.Random(draw_seed)
    plant: dict[str, float] = {}
    for table in (c.plant, fc.plant):
        for name in sorted(table):
            v = table[name].draw(rng.random())
            if name in PER_MINUTE:
                plant[PER_MINUTE[name]] = v / 60.0
            else:
                plant[name] = v
    onset_ms = None
    if fc.onset is not None:
        onset_ms = int(round(fc.onset.draw(rng.random()) / MS_PER_S)) * MS_PER_S
        duration = onset_ms + fc.observe_ms
    else:
        duration = c.duration_ms
    prog = c.programs[j % len(c.programs)]
    return RunSpec(run=run, fault_class=fc.name, kind=fc.kind, severity=fc.severity,
                   program=prog.name, rate_band=prog.band, seed=plant_seed, draw_seed=draw_seed,
                   plant=plant, onset_ms=onset_ms, duration_ms=duration,
                   expected_alarm=fc.expected_alarm)


def _nested(flat: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(flat):
        *path, leaf = name.split(".")
        t = out
        for part in path:
            t = t.setdefault(part, {})
        t[leaf] = flat[name]
    return out


def scenario_doc(c: Campaign, spec: RunSpec) -> dict[str, Any]:
    """The run as a scenario document (the TOML of docs/simulate.md, as a dict)."""
    prog = next(p for p in c.programs if p.name == spec.program)
    doc: dict[str, Any] = {
        "name": f"{c.name} - run {spec.run} ({spec.fault_class}, {spec.program})",
        "duration": f"{spec.duration_ms // MS_PER_S}s",
        "seed": spec.seed,
        "start_time": c.start_time,
        "prescription": prog.doc,
    }
    if spec.plant:
        doc["plant"] = _nested(spec.plant)
    if spec.onset_ms is not None:
        action = FAULT_KINDS[spec.kind][0]
        ev: dict[str, Any] = {"at": f"{spec.onset_ms // MS_PER_S}s", "action": action}
        if spec.kind == "occlusion":
            ev["severity"] = spec.severity or "complete"
        doc["event"] = [ev]
    return doc


def scenario_text(c: Campaign, spec: RunSpec) -> str:
    """The run as a scenario file that `itpump simulate` replays alone."""
    onset = "none" if spec.onset_ms is None else format_ms(spec.onset_ms)
    head = (f"# Campaign {c.name!r} (campaign seed {c.seed}, {c.digest[:12]}), run {spec.run}:\n"
            f"# fault class {spec.fault_class!r} ({spec.kind}), onset {onset}, "
            f"program {spec.program!r}.\n"
            f"# Replay alone: itpump simulate THIS_FILE. Research/education software, not a\n"
            f"# medical device: drawn figures are simulation inputs, not clinical data.\n")
    return head + tomli_w.dumps(scenario_doc(c, spec))


def scenario_for(c: Campaign, spec: RunSpec) -> Scenario:
    """The Scenario the campaign runs for ``spec``: the parsed scenario document itself."""
    return parse_scenario(tomllib.loads(tomli_w.dumps(scenario_doc(c, spec))),
                 f"{c.path}#run-{spec.run}")


# --- parsing ------------------------------------------------------------------------------------
class _P:
    def __init__(self, path: str, base: Path) -> None:
        self.path = path
        self.base = base
        self.problems: list[tuple[str, str]] = []

    def bad(self, fld: str, why: str) -> None:
        self.problems.append((fld, why))

    def value(self, v: Any, fld: str, duration: bool) -> float | None:
        if duration:
            try:
                return float(parse_duration(v))
            except (TypeError, ValueError) as e:
                self.bad(fld, str(e))
                return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.bad(fld, "must be a number")
            return None
        return float(v)

    def dist(self, t: Any, fld: str, rng: tuple[float, float] | None,
             duration: bool = False) -> Distribution | None:
        """A distribution table; ``rng``: the range every draw must stay in (the plant's)."""
        if not isinstance(t, dict) or "dist" not in t:
            self.bad(fld, 'must be a distribution table such as {dist = "uniform", min = 1, '
                     "max = 2} (" + ", ".join(DISTRIBUTIONS) + ")")
            return None
        kind = t["dist"]
        if kind not in DISTRIBUTIONS:
            self.bad(f"{fld}.dist", f"unknown distribution {kind!r} (one of: "
                     + ", ".join(DISTRIBUTIONS) + ")")
            return None
        need = DISTRIBUTIONS[kind]
        n0 = len(self.problems)
        for k in t:
            if k != "dist" and k not in need and k not in ("step", "weights"):
                self.bad(f"{fld}.{k}", f"unknown key for {kind} (takes: {', '.join(need)}"
                         + (", weights" if kind == "choice" else "") + ", step)")
        for k in need:
            if k not in t:
                self.bad(f"{fld}.{k}", f"missing (required by {kind}: bounds keep every draw "
                         "physical)" if k in ("min", "max") else f"missing (required by {kind})")
        if len(self.problems) > n0:
            return None
        p: dict[str, Any] = {}
        if kind == "choice":
            vals = t["values"]
            if not isinstance(vals, list) or not vals:
                self.bad(f"{fld}.values", "must be a non-empty list")
                return None
            xs = [self.value(v, f"{fld}.values[{i}]", duration) for i, v in enumerate(vals)]
            w = t.get("weights", [1] * len(vals))
            if not isinstance(w, list) or len(w) != len(vals) or any(
                    isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0 for x in w) \
                    or sum(w) <= 0:
                self.bad(f"{fld}.weights", "must be as many non-negative numbers as values, "
                         "not all 0")
                return None
            if any(x is None for x in xs):
                return None
            nums = [float(x) for x in xs if x is not None]
            cum, s = [], 0.0
            for x in w:
                s += float(x)
                cum.append(s)
            p = {"values": nums, "weights": list(w), "cum_weights": cum}
            lo, hi = min(nums), max(nums)
        else:
            for k in need:
                # sd/gsd are spreads: durations too for onsets (e.g. sd = "12h")
                v = self.value(t[k], f"{fld}.{k}", duration and k != "gsd")
                if v is None:
                    return None
                p[k] = v
            if kind == "constant":
                lo = hi = p["value"]
            else:
                lo, hi = p["min"], p["max"]
                if not lo < hi:
                    self.bad(fld, "min must be below max")
                    return None
            if kind == "loguniform" and lo <= 0:
                self.bad(f"{fld}.min", "must be > 0 for loguniform")
                return None
            if kind == "triangular" and not lo <= p["mode"] <= hi:
                self.bad(f"{fld}.mode", "must be between min and max")
                return None
            if kind == "normal" and p["sd"] <= 0:
                self.bad(f"{fld}.sd", "must be > 0")
                return None
            if kind == "lognormal" and (p["median"] <= 0 or p["gsd"] <= 1 or lo <= 0):
                self.bad(fld, "lognormal needs median > 0, gsd > 1 and min > 0")
                return None
        step = None
        if "step" in t:
            step = self.value(t["step"], f"{fld}.step", duration)
            if step is not None and step <= 0:
                self.bad(f"{fld}.step", "must be > 0")
                return None
        if rng is not None and not (rng[0] <= lo and hi <= rng[1]):
            self.bad(fld, f"bounds {lo:g}..{hi:g} leave the plant's range "
                     f"{rng[0]:g}..{rng[1]:g}")
            return None
        return Distribution(kind, p, lo, hi, step)

    def plant(self, t: Any, fld: str) -> dict[str, Distribution]:
        out: dict[str, Distribution] = {}
        if not isinstance(t, dict):
            self.bad(fld, "must be a table of plant figures")
            return out

        def walk(tab: dict[str, Any], prefix: str) -> None:
            for k, v in tab.items():
                name = prefix + k
                if isinstance(v, dict) and "dist" not in v:
                    walk(v, name + ".")
                    continue
                if name in PER_MINUTE:
                    hz = OVERRIDE_RANGES[PER_MINUTE[name]]
                    rng = (hz[0] * 60, hz[1] * 60)
                    d = self.dist(v, f"{fld}.{name}", rng)
                    if d is not None:
                        d = Distribution(d.kind, d.params, d.lo, d.hi, d.step or 1.0)
                elif name in OVERRIDE_RANGES:
                    d = self.dist(v, f"{fld}.{name}", OVERRIDE_RANGES[name])
                else:
                    self.bad(f"{fld}.{name}", "unknown plant figure (one of: "
                             + ", ".join([*OVERRIDE_RANGES, *PER_MINUTE]) + ")")
                    continue
                if d is not None:
                    out[name] = d

        walk(t, "")
        for alias, real in PER_MINUTE.items():
            if alias in out and real in out:
                self.bad(f"{fld}.{alias}", f"give either {alias} or {real}, not both")
        return out

    def program(self, t: Any, i: int, bands: tuple[float, ...]) -> Program | None:
        fld = f"program[{i}]"
        if not isinstance(t, dict):
            self.bad(fld, "must be a table ([[program]])")
            return None
        for k in t:
            if k not in ("name", "prescription"):
                self.bad(f"{fld}.{k}", "unknown key (name, prescription)")
        src = t.get("prescription")
        doc: dict[str, Any] | None = None
        where = f"{self.path}:{fld}.prescription"
        if isinstance(src, str):
            pth = Path(src) if Path(src).is_absolute() else self.base / src
            where = str(pth)
            try:
                with pth.open("rb") as f:
                    doc = tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as e:
                self.bad(f"{fld}.prescription", f"{pth}: {getattr(e, 'strerror', None) or e}")
                return None
        elif isinstance(src, dict):
            doc = src
        else:
            self.bad(f"{fld}.prescription", "missing: a prescription file (relative to the "
                     "campaign file) or an inline table")
            return None
        try:
            rx = convert_rx(doc, where)
        except PrescriptionError as e:
            for where_, why in e.problems:
                self.bad(f"{fld}.prescription.{where_}", why)
            return None
        name = t.get("name", Path(src).stem if isinstance(src, str) else f"program {i}")
        if not isinstance(name, str) or not name:
            self.bad(f"{fld}.name", "must be a non-empty string")
            return None
        daily = daily_basal_ul(rx)
        return Program(name, doc, rx, daily, rate_band(daily, bands))

    def fault(self, t: Any, i: int) -> FaultClass | None:
        fld = f"fault[{i}]"
        if not isinstance(t, dict):
            self.bad(fld, "must be a table ([[fault]])")
            return None
        allowed = ("name", "kind", "severity", "runs", "onset", "observe", "plant")
        for k in t:
            if k not in allowed:
                self.bad(f"{fld}.{k}", "unknown key (" + ", ".join(allowed) + ")")
        n0 = len(self.problems)
        kind = t.get("kind")
        if kind not in FAULT_KINDS:
            self.bad(f"{fld}.kind", "must be one of: " + ", ".join(FAULT_KINDS))
            return None
        name = t.get("name", kind)
        if not isinstance(name, str) or not name:
            self.bad(f"{fld}.name", "must be a non-empty string")
        runs = t.get("runs")
        if isinstance(runs, bool) or not isinstance(runs, int) or not 0 <= runs <= MAX_RUNS:
            self.bad(f"{fld}.runs", f"must be a whole number 0..{MAX_RUNS}")
        severity = None
        if kind == "occlusion":
            severity = t.get("severity", "complete")
            if severity not in SEVERITIES:
                self.bad(f"{fld}.severity", 'must be "partial" or "complete"')
        elif "severity" in t:
            self.bad(f"{fld}.severity", "only occlusions have a severity (the plant figures "
                     "in [fault.plant] set the others')")
        onset = None
        observe_ms = DEFAULT_OBSERVE_MS
        if kind == "none":
            for k in ("onset", "observe"):
                if k in t:
                    self.bad(f"{fld}.{k}", "a fault-free class has no onset (it runs for the "
                             "campaign's duration)")
        else:
            if "onset" not in t:
                self.bad(f"{fld}.onset", 'missing (e.g. {dist = "uniform", min = "2h", '
                         'max = "5d"})')
            else:
                onset = self.dist(t["onset"], f"{fld}.onset", None, duration=True)
                if onset is not None and onset.lo < 0:
                    self.bad(f"{fld}.onset", "must not start before t=0")
            if "observe" in t:
                try:
                    observe_ms = parse_duration(t["observe"])
                except (TypeError, ValueError) as e:
                    self.bad(f"{fld}.observe", str(e))
            if onset is not None and onset.hi + observe_ms > MAX_DURATION_MS:
                self.bad(f"{fld}.onset", f"onset + observe exceeds {MAX_DURATION_MS // MS_PER_DAY}"
                         " days (the longest scenario)")
        plant = self.plant(t["plant"], f"{fld}.plant") if "plant" in t else {}
        if len(self.problems) > n0 or not isinstance(name, str) or not isinstance(runs, int):
            return None
        return FaultClass(name=name, kind=kind, runs=runs, severity=severity, onset=onset,
                          observe_ms=observe_ms, plant=plant)


def daily_basal_ul(rx: dict[str, Any]) -> float:
    """Mean basal volume per day over the week (uL), from the wire-form prescription."""
    from pumpcore import schedule

    total = sum(schedule.daily_volume_nl(schedule.profile_for(rx["basal"], wd)) for wd in range(7))
    return total / 7 / 1000


def rate_band(daily_ul: float, edges: tuple[float, ...]) -> str:
    """The band label of a daily volume: "<150", "150-600", ">=600" for edges (150, 600) (uL/day)."""
    if not edges:
        return "all"
    if daily_ul < edges[0]:
        return f"<{edges[0]:g}"
    for lo, hi in zip(edges, edges[1:], strict=False):
        if lo <= daily_ul < hi:
            return f"{lo:g}-{hi:g}"
    return f">={edges[-1]:g}"


TOP_KEYS = ("name", "seed", "duration", "start_time", "program", "plant", "fault", "report")


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _jsonable(v) for k, v in sorted(o.items())}
    if isinstance(o, list):
        return [_jsonable(v) for v in o]
    if isinstance(o, _dt.datetime):
        return o.isoformat()
    return o


def parse(doc: dict[str, Any], path: str = "<campaign>", base: Path | None = None) -> Campaign:
    """A TOML document -> Campaign; raises CampaignError listing every problem."""
    p = _P(path, base if base is not None else Path.cwd())
    for k in doc:
        if k not in TOP_KEYS:
            p.bad(k, "unknown key (check the spelling; one of: " + ", ".join(TOP_KEYS) + ")")
    name = doc.get("name", Path(path).stem)
    if not isinstance(name, str) or not name:
        p.bad("name", "must be a non-empty string")
        name = "campaign"
    seed = doc.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        p.bad("seed", "missing or not a whole number >= 0 (the campaign seed every run's "
              "seeds derive from)")
        seed = 0
    duration_ms = DEFAULT_OBSERVE_MS
    if "duration" in doc:
        try:
            duration_ms = parse_duration(doc["duration"])
            if not MS_PER_S <= duration_ms <= MAX_DURATION_MS:
                p.bad("duration", "must be between 1s and 366d")
        except (TypeError, ValueError) as e:
            p.bad("duration", str(e))
    start_time = DEFAULT_START
    if "start_time" in doc:
        v = doc["start_time"]
        if isinstance(v, _dt.datetime) and v.tzinfo is None and v.year >= 2000:
            start_time = v.replace(microsecond=0)
        else:
            p.bad("start_time", 'must be a local date and time "YYYY-MM-DDTHH:MM[:SS]" '
                  "(year 2000 or later), unquoted")
    report = doc.get("report", {})
    bands: tuple[float, ...] = DEFAULT_RATE_BANDS_UL_PER_DAY
    worst = 10
    if not isinstance(report, dict):
        p.bad("report", "must be a table")
    else:
        for k in report:
            if k not in ("rate_bands_ul_per_day", "worst_runs"):
                p.bad(f"report.{k}", "unknown key (rate_bands_ul_per_day, worst_runs)")
        if "rate_bands_ul_per_day" in report:
            edges = report["rate_bands_ul_per_day"]
            if not isinstance(edges, list) or any(
                    isinstance(x, bool) or not isinstance(x, (int, float)) for x in edges) \
                    or sorted(set(edges)) != list(edges):
                p.bad("report.rate_bands_ul_per_day", "must be a list of increasing numbers "
                      "(band edges in uL/day)")
            else:
                bands = tuple(float(x) for x in edges)
        if "worst_runs" in report:
            w = report["worst_runs"]
            if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 1000:
                p.bad("report.worst_runs", "must be a whole number 0..1000")
            else:
                worst = w
    programs: list[Program] = []
    progs = doc.get("program")
    if not isinstance(progs, list) or not progs:
        p.bad("program", "missing: at least one [[program]] with a prescription")
        progs = []
    for i, t in enumerate(progs):
        prog = p.program(t, i, bands)
        if prog is not None:
            programs.append(prog)
    if len({pr.name for pr in programs}) != len(programs):
        p.bad("program", "program names must differ")
    plant = p.plant(doc["plant"], "plant") if "plant" in doc else {}
    faults: list[FaultClass] = []
    fts = doc.get("fault")
    if not isinstance(fts, list) or not fts:
        p.bad("fault", "missing: at least one [[fault]] class (kind = \"none\" for false alarms)")
        fts = []
    for i, t in enumerate(fts):
        fc = p.fault(t, i)
        if fc is not None:
            faults.append(fc)
            clash = set(fc.plant) & set(plant)
            if clash:
                p.bad(f"fault[{i}].plant", "also drawn for the whole population: "
                      + ", ".join(sorted(clash)))
    if len({f.name for f in faults}) != len(faults):
        p.bad("fault", "fault class names must differ")
    if p.problems:
        raise CampaignError(path, p.problems)
    resolved = dict(doc)
    resolved["program"] = [{"name": pr.name, "prescription": pr.doc} for pr in programs]
    digest = hashlib.sha256(json.dumps(_jsonable(resolved), sort_keys=True).encode()).hexdigest()
    return Campaign(name=name, seed=seed, duration_ms=duration_ms, start_time=start_time,
                    programs=tuple(programs), plant=plant, faults=tuple(faults),
                    rate_bands_ul_per_day=bands, worst_runs=worst, path=path, digest=digest,
                    doc=resolved)


def load(path: str | Path) -> Campaign:
    """Read a campaign file; prescription file names are relative to its directory."""
    pth = Path(path)
    try:
        doc = tomllib.loads(pth.read_text())
    except OSError as e:
        raise CampaignError(str(pth), [("file", e.strerror or str(e))]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CampaignError(str(pth), [("toml", str(e))]) from None
    return parse(doc, str(pth), pth.parent)


def loads(text: str, path: str = "<campaign>", base: Path | None = None) -> Campaign:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CampaignError(path, [("toml", str(e))]) from None
    return parse(doc, path, base)
