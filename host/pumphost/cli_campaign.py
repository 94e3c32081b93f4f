"""`itpump campaign run|scenario|show|report` (docs/campaigns.md).

``register(subparsers)`` adds the ``campaign`` command (cli.main calls it). Like cli_emulator,
pumphil (the emulator, Dask, pyarrow) is imported lazily inside the handlers, never when the
parser is built: the host CLI must work without loading them (tests/test_layering.py).

Exit status: 0 done (every run has a row and none failed), 1 done but some runs failed (their
rows hold the error and the seeds), 2 usage, 5 unreadable or invalid campaign file or results
directory, 130 interrupted (Ctrl-C or SIGTERM; what finished is kept, rerun to continue).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USAGE, EXIT_FILE, EXIT_INTERRUPTED = 0, 1, 2, 5, 130

HELP = "simulate a population of patients and faults on Dask; report detector performance"
DESC = """\
A campaign (TOML, docs/campaigns.md; example: docs/examples/campaign-detectors.toml) draws
thousands of simulated patients (plant figures from named distributions), faults (class, onset,
severity) and therapy programs from one campaign seed, runs each as a scenario on the emulator in
a Dask worker process, and reports, per fault class and rate band, sensitivity, time to alarm,
false alarms per patient-year and ROC curves of the detectors' statistics.
  itpump campaign run FILE --out DIR [--workers N | --scheduler tcp://HOST:8786]
  itpump campaign report DIR                 # DIR/report.html
  itpump campaign scenario FILE|DIR --run K  # run K as a scenario file: itpump simulate replays it
  itpump campaign show FILE                  # the runs per class and program, without running
Research/education software, not a medical device: the figures are simulation results."""


def _campaign_from(path: str) -> Any:
    """A campaign file, or a results directory (its saved campaign.toml)."""
    from pumphil.campaign import spec, store

    p = Path(path)
    if p.is_dir():
        return store.load_campaign(p)
    return spec.load(p)


def _file_error(e: Exception) -> int:
    print(f"error: {getattr(e, 'reason', 'campaign')}: {e}", file=sys.stderr)
    return EXIT_FILE


def run(args: argparse.Namespace) -> int:
    from pumphil.campaign import runner, spec, store

    try:
        c = spec.load(args.file)
    except spec.CampaignError as e:
        return _file_error(e)
    try:
        out = runner.run_campaign(c, args.out, workers=args.workers, scheduler=args.scheduler,
                                  retry_failed=args.retry_failed, flush_every=args.flush_every,
                                  progress=False if args.no_progress else None)
    except store.StoreError as e:
        return _file_error(e)
    left = out.total - out.done_before - out.ran
    if out.interrupted:
        print(f"stopped: {out.done_before + out.ran} of {out.total} runs kept in {args.out}; "
              f"run the same command again to do the other {left}", file=sys.stderr)
        return EXIT_INTERRUPTED
    table = store.read_table(args.out)
    failed = 0 if table is None else sum(1 for s in table["status"].to_pylist() if s != "ok")
    print(f"campaign {c.name!r}: {out.total} runs in {args.out}/results.parquet "
          f"({out.ran} run now in {out.wall_s:.1f} s, {out.done_before} before)"
          + (f"; {failed} failed (status and error in the table; "
             f"`itpump campaign scenario {args.out} --run K` replays one)" if failed else ""))
    print(f"report: itpump campaign report {args.out}")
    return EXIT_FAILED_RUNS if failed else EXIT_OK


def scenario(args: argparse.Namespace) -> int:
    from pumphil.campaign import spec, store

    try:
        c = _campaign_from(args.file)
    except (spec.CampaignError, store.StoreError) as e:
        return _file_error(e)
    if not 0 <= args.run < c.runs:
        print(f"error: bad_value: --run {args.run}: the campaign has runs 0..{c.runs - 1}",
              file=sys.stderr)
        return EXIT_USAGE
    text = spec.scenario_text(c, spec.draw(c, args.run))
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}: itpump simulate {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def show(args: argparse.Namespace) -> int:
    from pumphil.campaign import spec

    try:
        c = spec.load(args.file)
    except spec.CampaignError as e:
        return _file_error(e)
    print(f"campaign {c.name!r}: seed {c.seed}, {c.runs} runs, digest {c.digest[:12]}")
    print("programs: " + "; ".join(f"{p.name} ({p.daily_ul:g} uL/day, band {p.band})"
                                   for p in c.programs))
    first = 0
    for f in c.faults:
        what = f.kind + (f" ({f.severity})" if f.severity else "")
        onset = f"onset {f.onset.describe()} ms, observe {f.observe_ms // 1000} s" \
            if f.onset else f"duration {c.duration_ms // 1000} s"
        print(f"  runs {first}..{first + f.runs - 1}: {f.name!r}: {what}, {onset}"
              if f.runs else f"  (no runs): {f.name!r}")
        first += f.runs
    for name, d in sorted({**c.plant}.items()):
        print(f"  plant {name} ~ {d.describe()}")
    for f in c.faults:
        for name, d in sorted(f.plant.items()):
            print(f"  {f.name}: plant {name} ~ {d.describe()}")
    return EXIT_OK


def report(args: argparse.Namespace) -> int:
    from pumphil.campaign import report as creport
    from pumphil.campaign import store

    try:
        path = creport.write(args.dir, args.out)
    except store.StoreError as e:
        return _file_error(e)
    print(f"report: {path}")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return v


def _run_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None


def register(sub: Any) -> None:
    p = sub.add_parser("campaign", help=HELP, description=DESC,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = p.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)

    r = csub.add_parser("run", help="run (or resume) a campaign on Dask",
                        description="Run every run of FILE that has no row in DIR yet, each as "
                        "a task on Dask distributed; rows and statistics are written as runs "
                        "finish. Ctrl-C keeps what finished: the same command resumes.")
    r.add_argument("file", metavar="FILE", help="campaign TOML file")
    r.add_argument("--out", required=True, metavar="DIR", help="results directory")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                       help="worker processes of a LocalCluster on this machine (default: one "
                       "per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler, e.g. tcp://HOST:8786")
    r.add_argument("--retry-failed", action="store_true",
                   help="run again the runs whose row says error or refused")
    r.add_argument("--flush-every", type=_positive_int, default=16, metavar="N",
                   help="write the finished rows to DIR every N runs (and every 10 s)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar, even on a "
                   "terminal")
    r.set_defaults(handler=run)

    s = csub.add_parser("scenario", help="write one run as a scenario file (itpump simulate "
                        "replays it alone)")
    s.add_argument("file", metavar="FILE|DIR", help="campaign file, or a results directory")
    s.add_argument("--run", type=_run_number, required=True, metavar="K", help="run number")
    s.add_argument("--out", metavar="PATH", help="write here (default: standard output)")
    s.set_defaults(handler=scenario)

    sh = csub.add_parser("show", help="check a campaign file and list its runs, without running")
    sh.add_argument("file", metavar="FILE", help="campaign TOML file")
    sh.set_defaults(handler=show)

    rp = csub.add_parser("report", help="write the HTML report of a results directory")
    rp.add_argument("dir", metavar="DIR", help="results directory of `campaign run`")
    rp.add_argument("--out", metavar="PATH", help="report file (default: DIR/report.html)")
    rp.set_defaults(handler=report)
