"""`make demo` / `python -m pumphil.demo`: simulate the example month and show where the report is.

Runs docs/examples/month-morphine-clonidine.toml (a month of flex-schedule morphine + clonidine
with periodic and patient boluses, a clinician bolus, a suspend and a refill) on the emulator in
virtual time through the real serial protocol, judges the scenario's expectations, prints the
summary and writes index.html (open it in a browser), report.json, summary.txt and the PNG plots
into build/demo-report/ (or --report DIR). Exit status as `itpump simulate` (docs/simulate.md):
0 when every expectation passed. Research/education software, not a medical device.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import report, scenario, simulate
from .progress import day_progress

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = ROOT / "docs" / "examples" / "month-morphine-clonidine.toml"
DEFAULT_REPORT = Path("build") / "demo-report"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pumphil.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(DEFAULT_SCENARIO), help="scenario TOML file")
    ap.add_argument("--report", default=str(DEFAULT_REPORT), metavar="DIR",
                    help="report directory (default build/demo-report)")
    args = ap.parse_args(argv)
    try:
        sc = scenario.load(args.scenario)
    except scenario.ScenarioError as e:
        print(f"error: scenario: {e}", file=sys.stderr)
        return 5
    try:
        report.check_writable(args.report)
    except report.ReportDirError as e:
        print(f"error: report: {e}", file=sys.stderr)
        return 5
    print(f"Simulating '{sc.name}' ({args.scenario}) on the emulator through the serial "
          "protocol...", flush=True)
    t = time.perf_counter()
    try:
        with day_progress(sc.days, sc.name) as progress:
            rec = simulate.run(sc, progress=progress)
    except simulate.SimulationError as e:
        print(f"error: {e.reason}: {e.message}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - t
    try:
        rep = report.write_report(rec, args.report)
    except report.ReportDirError as e:
        print(f"error: report: {e}", file=sys.stderr)
        return 5
    print()
    print(report.summary_text(rec, rep))
    print()
    print(f"Simulated {sc.duration_ms / 86_400_000:g} days in {wall:.1f} s "
          f"({sc.duration_ms / 1000 / wall:,.0f}x real time).")
    out = Path(args.report).resolve()
    print(f"Report written to {out}/ (open index.html in a browser):")
    for name in (report.HTML, "report.json", "summary.txt", *report.PLOTS):
        print(f"  {out / name}")
    print("Next: itpump simulate docs/examples/occlusion.toml --report build/occlusion "
          "(see docs/simulate.md)")
    return 6 if rep["verdict"] == report.FAIL else 0


if __name__ == "__main__":
    sys.exit(main())
