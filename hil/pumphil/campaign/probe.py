"""The detectors' statistics, read from the outside after every judged stroke and sensing window.

The firmware's detectors (pumpcore.detect_occlusion, detect_catheter) leave each statistic they
compute in a plain int attribute (docs/detectors.md, "Statistics"). This probe wraps the three
detector entry points of a running App's supervisor — ``OcclusionDetector.stroke``,
``CatheterDetector.window`` and ``OcclusionDetector.window`` — with functions that call the
original and then copy those attributes and the returned verdict into growing arrays (one append per column).
It adds no code path to the firmware and changes no argument or result: the firmware's verdicts
are the authority, and the probe records them next to the statistics.

Attach with :meth:`DetectorProbe.attach_runner` (``simulate.run(..., on_runner=probe.attach_runner)``):
the probe wraps the current App and, through the virtual board's ``on_power_on`` hook, every App
after a reset. Times are recorded on the emulator's clock and moved to the run's t=0 by
:meth:`DetectorProbe.finish` once the run is over (negative: set-up and priming).

Columns (all ints; MISSING where a value does not exist, e.g. an elevation before a reference
was learned; written as null in the Parquet tables):
  strokes: t_ms, n (samples captured), cls (detect_occlusion class), rise_pa, ratio_pct, resid_pa
           (-1: the fit was not needed), elev_pa, flat_run, slow_count, event (+1 raised,
           -1 cleared, 0 none), active (0/1)
  windows: t_ms, baseline_pa, cardiac_pa, resp_pa, pulsatile (0/1), wclass (detect_catheter
           W_*), cat_event (+1 dislodgement raised, +2 leak raised, -1/-2 cleared, 0 none),
           cat_active (0 none, 1 dislodgement, 2 leak), occ_elev_pa, occ_event, occ_active
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

from pumpcore import detect_catheter as dc
from pumpcore import detect_occlusion as do

STROKE_COLUMNS = ("t_ms", "n", "cls", "rise_pa", "ratio_pct", "resid_pa", "elev_pa", "flat_run",
                  "slow_count", "event", "active")
WINDOW_COLUMNS = ("t_ms", "baseline_pa", "cardiac_pa", "resp_pa", "pulsatile", "wclass",
                  "cat_event", "cat_active", "occ_elev_pa", "occ_event", "occ_active")
MISSING = -(1 << 31)

_OCC_EVENT = {None: 0, do.EV_RAISE: 1, do.EV_CLEAR: -1}
_CAT_EVENT = {None: 0, dc.EV_DISLODGEMENT: 1, dc.EV_LEAK: 2, dc.EV_DISLODGEMENT_CLEAR: -1,
              dc.EV_LEAK_CLEAR: -2}
_CAT_ACTIVE = {None: 0, dc.DISLODGEMENT: 1, dc.LEAK: 2}


class DetectorProbe:
    def __init__(self) -> None:
        self.strokes: dict[str, array[int]] = {c: array("q") for c in STROKE_COLUMNS}
        self.windows: dict[str, array[int]] = {c: array("q") for c in WINDOW_COLUMNS}
        self.apps = 0                 # Apps wrapped (1 + resets)
        self._clock: Any = None
        self._runner: Any = None
        self._finished = False

    # --- attaching ----------------------------------------------------------------------------
    def attach_runner(self, runner: Any) -> None:
        """simulate.run's on_runner hook: wrap the running App now and every App after a reset."""
        self._runner = runner
        board = runner.emu.board
        self._clock = board.clock
        board.on_power_on = self.attach
        if board.app is not None:
            self.attach(board.app)

    def _now(self) -> int:
        return int(self._clock.now_ms) if self._clock is not None else 0

    def finish(self) -> None:
        """After the run: times from the emulator's clock to ms from the run's t=0 (the runner's
        t0, known once set-up is over). Idempotent."""
        if self._finished or self._runner is None:
            return
        t0 = int(self._runner.t0_emu_ms)
        for rows in (self.strokes, self.windows):
            ts = rows["t_ms"]
            for i in range(len(ts)):
                ts[i] -= t0
        self._finished = True

    def attach(self, app: Any) -> None:
        """Wrap this App's detector entry points (instance attributes shadow the methods)."""
        sup = app.supervisor
        occ, cat = sup.occlusion, sup.catheter
        self.apps += 1
        s = self.strokes
        w = self.windows
        occ_stroke: Callable[..., Any] = occ.stroke
        occ_window: Callable[..., Any] = occ.window
        cat_window: Callable[..., Any] = cat.window
        now = self._now

        def stroke(pre_pa: int, buf: Any, n: int) -> Any:
            had_ref = occ.has_ref
            ev = occ_stroke(pre_pa, buf, n)
            s["t_ms"].append(now())
            s["n"].append(occ.last_n)
            s["cls"].append(occ.last_class)
            s["rise_pa"].append(occ.last_rise_pa)
            s["ratio_pct"].append(occ.last_ratio_pct)
            s["resid_pa"].append(occ.last_resid_pa)
            s["elev_pa"].append(occ.last_elev_pa if had_ref else MISSING)
            s["flat_run"].append(occ.flat_run)
            s["slow_count"].append(occ.slow_count)
            s["event"].append(_OCC_EVENT[ev])
            s["active"].append(1 if occ.active else 0)
            return ev

        def window(buf: Any, stroke_in_window: bool = False) -> Any:
            ev = cat_window(buf, stroke_in_window)
            w["t_ms"].append(now())
            w["baseline_pa"].append(cat.baseline_pa)
            w["cardiac_pa"].append(cat.cardiac_pa)
            w["resp_pa"].append(cat.resp_pa)
            w["pulsatile"].append(1 if cat.pulsatile else 0)
            w["wclass"].append(cat.last_class)
            w["cat_event"].append(_CAT_EVENT[ev])
            w["cat_active"].append(_CAT_ACTIVE[cat.active])
            # filled by the occlusion detector's window() that the supervisor calls next
            w["occ_elev_pa"].append(MISSING)
            w["occ_event"].append(0)
            w["occ_active"].append(1 if occ.active else 0)
            return ev

        def occ_win(baseline_pa: int, pulsatile: bool) -> Any:
            had_ref = occ.has_ref
            ev = occ_window(baseline_pa, pulsatile)
            if len(w["t_ms"]):
                w["occ_elev_pa"][-1] = occ.last_window_elev_pa if had_ref else MISSING
                w["occ_event"][-1] = _OCC_EVENT[ev]
                w["occ_active"][-1] = 1 if occ.active else 0
            return ev

        occ.stroke = stroke
        occ.window = occ_win
        cat.window = window
