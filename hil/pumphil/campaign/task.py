"""One campaign run, as a Dask task executes it in a worker process.

:func:`execute` draws run k (spec.draw), builds its scenario (the same document
`itpump campaign scenario` writes), runs it on a fresh emulator through the real protocol with
the detector probe attached, and returns a :class:`RunResult`: one row of the results table
(columns: :func:`schema`) and the run's per-stroke and per-window statistics as Parquet bytes.
Nothing here reads a wall clock into the row: the same campaign and run give the same row on any
worker (``wall_s`` travels beside the row, for progress and benchmarks only).

A run that fails is a result too: its row has status "refused" (the pump refused the set-up) or
"error" (an exception; ``error`` holds its type, message and the last frames), with its seeds, so
it can be replayed alone.

Definitions (docs/campaigns.md):
- onset: the fault's event time; exposure (fault-free therapy time) = onset, or the whole run
  without a fault (0 when the pump could not start at t=0); a *false alarm* is a detector alarm
  (DETECTOR_ALARMS) raised during the exposure; alarms raised during set-up (priming, before
  t=0, which the runner times at t=0) are ``setup_alarms``, counted per priming instead.
- evaluable: the pump was running at the onset with no detector alarm active, so the fault
  could be detected at all; detected: the class's alarm was raised at or after the onset (within
  ``observe``, the rest of the run); tta_s: seconds from onset to that alarm.
"""

from __future__ import annotations

import hashlib
import io
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import spec as _spec
from .probe import MISSING, STROKE_COLUMNS, WINDOW_COLUMNS, DetectorProbe
from .statistics import STATISTICS, observations, records

#: alarms a detector raises from a measurement: raised without their fault, they are false alarms
DETECTOR_ALARMS = ("occlusion", "dislodgement", "leak", "motor_stall", "over_infusion",
                   "under_infusion")
SCHEMA_VERSION = 1

_ALARM = pa.struct([("code", pa.string()), ("priority", pa.string()),
                    ("raised_s", pa.float64()), ("cleared_s", pa.float64())])
_RECORD = pa.struct([("t_s", pa.float64()), ("v", pa.int64())])


@dataclass
class RunResult:
    run: int
    row: dict[str, Any]
    strokes: bytes | None         # Parquet of the probe's stroke rows (None: nothing recorded)
    windows: bytes | None
    wall_s: float                 # worker time of the run (not in the table: not reproducible)


def plant_columns(c: _spec.Campaign) -> list[str]:
    """The drawn plant figures as result columns (real plant names), sorted."""
    names: set[str] = set()
    for table in [c.plant, *(f.plant for f in c.faults)]:
        names.update(_spec.PER_MINUTE.get(n, n) for n in table)
    return sorted(names)


def schema(c: _spec.Campaign) -> pa.Schema:
    fields = [
        ("run", pa.int32()), ("fault_class", pa.string()), ("kind", pa.string()),
        ("severity", pa.string()), ("program", pa.string()), ("rate_band", pa.string()),
        ("expected_alarm", pa.string()), ("seed", pa.int64()), ("draw_seed", pa.int64()),
        ("status", pa.string()), ("error", pa.string()),
        ("duration_s", pa.float64()), ("onset_s", pa.float64()), ("observe_s", pa.float64()),
        ("evaluable", pa.bool_()), ("detected", pa.bool_()), ("tta_s", pa.float64()),
        ("first_alarm_after_onset", pa.string()), ("wrong_alarms", pa.list_(pa.string())),
        ("started", pa.bool_()), ("setup_alarms", pa.list_(pa.string())),
        ("fa_count", pa.int32()), ("fa_first_s", pa.float64()), ("fa_first_code", pa.string()),
        ("exposure_s", pa.float64()), ("at_risk_s", pa.float64()),
        ("alarms", pa.list_(_ALARM)), ("delivered_ul", pa.float64()),
        ("final_state", pa.string()), ("strokes_judged", pa.int32()), ("windows", pa.int32()),
        ("firmware", pa.string()), ("firmware_digest", pa.string()),
    ]
    fields += [("plant." + n, pa.float64()) for n in plant_columns(c)]
    for st in STATISTICS:
        fields += [(f"sweep_{st.name}_pre", pa.list_(_RECORD)),
                   (f"sweep_{st.name}_post", pa.list_(_RECORD))]
    return pa.schema(fields, metadata={"itpump.schema_version": str(SCHEMA_VERSION),
                                       "itpump.campaign_digest": c.digest})


@lru_cache(maxsize=1)
def firmware_identity() -> tuple[str, str]:
    """(FIRMWARE_VERSION, first 16 hex of SHA-256 over the firmware sources this worker runs):
    a cluster whose workers run different firmware shows two digests in the table."""
    from .. import board

    h = hashlib.sha256()
    for p in sorted((board.FIRMWARE_DIR).rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        h.update(p.relative_to(board.FIRMWARE_DIR).as_posix().encode() + b"\0")
        h.update(p.read_bytes())
    return str(board.fw_board.FIRMWARE_VERSION), h.hexdigest()[:16]


def _base_row(c: _spec.Campaign, s: _spec.RunSpec) -> dict[str, Any]:
    fc, _ = c.locate(s.run)
    row: dict[str, Any] = {
        "run": s.run, "fault_class": s.fault_class, "kind": s.kind, "severity": s.severity,
        "program": s.program, "rate_band": s.rate_band, "expected_alarm": s.expected_alarm,
        "seed": s.seed, "draw_seed": s.draw_seed, "status": "ok", "error": None,
        "duration_s": s.duration_ms / 1000,
        "onset_s": None if s.onset_ms is None else s.onset_ms / 1000,
        "observe_s": None if s.onset_ms is None else fc.observe_ms / 1000,
    }
    for n in plant_columns(c):
        row["plant." + n] = s.plant.get(n)
    return row


def _table(cols: tuple[str, ...], data: dict[str, Any], run: int) -> bytes | None:
    n = len(data["t_ms"])
    if n == 0:
        return None
    arrays = [pa.array(np.full(n, run, dtype=np.int32))]
    for c in cols:
        a = np.frombuffer(data[c], dtype=np.int64) if len(data[c]) else np.zeros(0, np.int64)
        if c == "t_ms":
            arrays.append(pa.array(a))
        else:
            arrays.append(pa.array(a.astype(np.int32), mask=(a == MISSING)))
    table = pa.Table.from_arrays(arrays, names=["run", *cols])
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _evaluate(row: dict[str, Any], rep: dict[str, Any], rec: Any, s: _spec.RunSpec) -> None:
    """Fill the alarm columns of ``row`` from the report (the firmware's verdicts)."""
    alarms = rep["alarms"]
    row["alarms"] = [{"code": a["code"], "priority": a["priority"],
                      "raised_s": float(a["raised_s"]),
                      "cleared_s": None if a["cleared_s"] is None else float(a["cleared_s"])}
                     for a in alarms]
    row["delivered_ul"] = float(rep["delivered_ul"])
    row["final_state"] = (rep.get("final") or {}).get("state")
    onset_s = None if s.onset_ms is None else s.onset_ms / 1000
    # the runner times set-up (priming) log entries at t=0: alarms raised then are reported
    # apart (a probability per priming), not as false alarms per patient-year of therapy
    row["setup_alarms"] = [a["code"] for a in alarms if a["raised_s"] == 0.0]
    start = next((a for a in rec.actions if a.action == "start" and a.t_ms == 0), None)
    row["started"] = start is not None and start.result == "ok"
    # exposure: fault-free therapy time (none when the pump could not start at t=0)
    exposure = (onset_s if onset_s is not None else s.duration_ms / 1000) \
        if row["started"] else 0.0
    fas = [a for a in alarms if a["code"] in DETECTOR_ALARMS and 0.0 < a["raised_s"] < exposure]
    row["exposure_s"] = exposure
    row["fa_count"] = len(fas)
    row["fa_first_s"] = float(fas[0]["raised_s"]) if fas else None
    row["fa_first_code"] = fas[0]["code"] if fas else None
    row["at_risk_s"] = float(fas[0]["raised_s"]) if fas else exposure
    if onset_s is None:
        for k in ("evaluable", "detected", "tta_s", "first_alarm_after_onset"):
            row[k] = None
        row["wrong_alarms"] = []
        return
    at_onset = next((smp.status for smp in rec.samples
                     if smp.t_ms == s.onset_ms and smp.status is not None), None)
    active = [a[0] for a in (at_onset or {}).get("alarms") or []]
    row["evaluable"] = bool(at_onset is not None and at_onset.get("state") == "running"
                            and not any(code in DETECTOR_ALARMS for code in active))
    after = [a for a in alarms if a["raised_s"] >= onset_s]
    hit = next((a for a in after if a["code"] == s.expected_alarm), None)
    row["detected"] = hit is not None
    row["tta_s"] = round(float(hit["raised_s"]) - onset_s, 3) if hit is not None else None
    det = [a for a in after if a["code"] in DETECTOR_ALARMS]
    row["first_alarm_after_onset"] = det[0]["code"] if det else None
    row["wrong_alarms"] = sorted({a["code"] for a in det if a["code"] != s.expected_alarm})


def _sweeps(row: dict[str, Any], probe: DetectorProbe, s: _spec.RunSpec) -> None:
    st_rows = {k: v for k, v in probe.strokes.items()}
    w_rows = {k: v for k, v in probe.windows.items()}
    row["strokes_judged"] = sum(1 for t in st_rows["t_ms"] if t >= 0)
    row["windows"] = sum(1 for t in w_rows["t_ms"] if t >= 0)
    onset = s.onset_ms
    for stat in STATISTICS:
        obs = observations(stat, st_rows, w_rows)
        pre = records(stat, obs, 0, onset)
        post = records(stat, obs, onset, None) if onset is not None else []
        row[f"sweep_{stat.name}_pre"] = [{"t_s": t, "v": v} for t, v in pre]
        row[f"sweep_{stat.name}_post"] = [{"t_s": t, "v": v} for t, v in post]


def execute(c: _spec.Campaign, run: int) -> RunResult:
    """Run ``run`` of campaign ``c`` (in whatever process calls it) and return its result."""
    from .. import simulate
    from ..report import build_report

    t0 = time.perf_counter()
    s = _spec.draw(c, run)
    row = _base_row(c, s)
    row["firmware"], row["firmware_digest"] = firmware_identity()
    probe = DetectorProbe()
    try:
        sc = _spec.scenario_for(c, s)
        rec = simulate.run(sc, on_runner=probe.attach_runner)
        probe.finish()
        _evaluate(row, build_report(rec), rec, s)
        _sweeps(row, probe, s)
    except simulate.SimulationError as e:
        row["status"], row["error"] = "refused", f"{e.reason}: {e}"
    except Exception as e:  # noqa: BLE001 - a failed run is a recorded result, never dropped
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        row["status"] = "error"
        row["error"] = f"{type(e).__name__}: {e}\n" + "".join(tb[-3:])
    strokes = _table(STROKE_COLUMNS, probe.strokes, run)
    windows = _table(WINDOW_COLUMNS, probe.windows, run)
    return RunResult(run, row, strokes, windows, time.perf_counter() - t0)
