"""Benchmark: campaigns on Dask (issue 15) - runs per minute on 1 and 2 LocalCluster workers and
the scheduling overhead per run.

The same 16-run campaign (a day per run: fault-free, complete and partial occlusion,
dislodgement, leak) is run three ways, side by side in one process: serially in this process
(the work itself), then on a LocalCluster with 1 and with 2 worker processes. Printed per way:
wall time, cluster start-up, runs per minute (start-up excluded), and the overhead per run =
(wall after start-up x workers - the runs' own worker seconds) / runs: what Dask, the transfer
of rows and statistics and the Parquet writing cost per run. Figures, not assertions.

    .venv/bin/python bench/bench_campaign.py [--runs-per-class N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pumphil import accel
from pumphil.campaign import runner, spec, task

ROOT = Path(__file__).resolve().parents[1]
RX = (ROOT / "docs" / "examples" / "rx-morphine.toml").as_posix()


def campaign_text(per_class: int) -> str:
    onset = '{ dist = "uniform", min = "2h", max = "20h" }'
    faults = "".join(f"""
[[fault]]
name = "{name}"
kind = "{kind}"
runs = {per_class}
{extra}onset = {onset}
observe = "4h"
""" for name, kind, extra in (("complete occlusion", "occlusion", 'severity = "complete"\n'),
                              ("partial occlusion", "occlusion", 'severity = "partial"\n'),
                              ("dislodgement", "dislodgement", ""), ("leak", "leak", "")))
    return f"""
name = "bench"
seed = 3
duration = "1d"
[[program]]
name = "morphine"
prescription = "{RX}"
[plant.csf]
baseline_pa = {{ dist = "normal", mean = 1300, sd = 150, min = 900, max = 1800 }}
heart_rate_per_min = {{ dist = "uniform", min = 50, max = 120 }}
[[fault]]
name = "none"
kind = "none"
runs = {per_class}
""" + faults


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs-per-class", type=int, default=3)
    args = ap.parse_args()
    c = spec.loads(campaign_text(args.runs_per_class), "bench.toml")
    print(f"campaign: {c.runs} runs of ~1 day each; emulator: {accel.describe()}")
    t = time.perf_counter()
    serial = [task.execute(c, k).wall_s for k in range(c.runs)]
    wall = time.perf_counter() - t
    print(f"  serial, in this process : {wall:6.1f} s, {60 * c.runs / wall:6.1f} runs/min "
          f"(mean {sum(serial) / len(serial):.2f} s per run)")
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as d:
            out = runner.run_campaign(c, Path(d) / "out", workers=n, progress=False,
                                      say=lambda m: None)
        assert out.complete and out.ran == c.runs
        busy = out.wall_s - out.startup_s
        overhead = (busy * n - sum(out.task_wall_s)) / c.runs
        print(f"  LocalCluster, {n} worker{'s' if n > 1 else ' '}: {out.wall_s:6.1f} s "
              f"(start-up {out.startup_s:.1f} s), {60 * c.runs / busy:6.1f} runs/min, "
              f"overhead {1000 * overhead:6.0f} ms per run "
              f"(runs took {sum(out.task_wall_s) / c.runs:.2f} s each in the workers)")


if __name__ == "__main__":
    main()
