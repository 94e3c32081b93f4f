"""`itpump emulate` and `itpump simulate` (docs/simulate.md, docs/emulator.md).

``register(subparsers)`` adds both subcommands with ``handler=<callable(args) -> exit code>``
(cli.main calls it). pumphil (the emulator) is imported lazily inside the handlers, never at module
import time: the host CLI must work without loading the emulator (tests/test_layering.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .cliargs import positive_float

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FILE = 0, 1, 2, 5
#: `simulate` only: the run completed and an expectation of the scenario failed
EXIT_EXPECTATION = 6

#: --runtime: the interpreter the firmware runs on (pumphil.emulator.RUNTIMES, which a test holds
#: equal; not imported from there: the CLI loads the emulator only when a handler runs)
RUNTIMES = ("cpython", "micropython")
RUNTIME_HELP = ("interpreter the firmware runs on: cpython (default, fastest) or micropython (the "
                "real MicroPython WebAssembly build in Node; docs/emulator.md, \"Runtimes\")")

EMULATE_HELP = "run the pump emulator (virtual rig: board, plant, instruments) on a TCP port"
EMULATE_DESC = """\
Start a virtual rig: the unchanged firmware on a virtual board with simulated hardware and plant
physics, its serial port on socket://HOST:PORT (and a pty with --pty), and the virtual lab
instruments (power supply, balance, CSF phantom, switch unit) for pyvisa. Prints the pump URL, the
key file it provisioned (also stored where the CLI looks, so
`itpump --port socket://127.0.0.1:PORT status` works with no extra flags) and the VISA resource
strings, then runs until Ctrl-C. Research/education software, not a medical device."""

SIMULATE_HELP = "simulate a therapy scenario in virtual time (a month in seconds)"
SIMULATE_DESC = """\
Run SCENARIO (TOML, docs/simulate.md; examples in docs/examples/) on a fresh emulator in virtual
time, through the real serial protocol, judge its [[expect]] rows and print a summary (or, with
--json, only the JSON report). --report DIR also writes index.html (open it in a browser),
report.json, summary.txt and PNG plots into DIR (checked writable before the run).
Exit status: 0 the run completed and every expectation passed (or none was stated); 6 the run
completed and an expectation failed; 1 the run could not be completed (the pump refused the
set-up, or the plant refused the scenario); 5 the scenario file is invalid or the report folder
cannot be written. Research/education software, not a medical device: not clinical advice."""


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    try:
        n = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text}") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {text}")
    return host or "127.0.0.1", n


def _minutes(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if not 1 <= v <= 24 * 60:
        raise argparse.ArgumentTypeError(f"must be 1..1440: {text}")
    return v


def emulate(args: argparse.Namespace) -> int:
    from pumphil.emulator import Emulator, StateDirInUse
    from pumphil.mpy_runtime import MicroPythonUnavailable

    from .keys import default_key_path

    state_dir = Path(args.state_dir) if args.state_dir else None
    try:
        emu = Emulator(state_dir=state_dir, seed=args.seed, speed=args.speed, listen=args.listen,
                       pty=args.pty, runtime=args.runtime, instruments=not args.no_instruments)
    except StateDirInUse as e:
        print(f"error: {e.reason}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except MicroPythonUnavailable as e:
        print(f"error: {e.reason}: {e}", file=sys.stderr)
        return EXIT_USAGE
    emu.start()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt   # SIGTERM stops like Ctrl-C (the flash image is written through)

    signal.signal(signal.SIGTERM, on_term)
    try:
        info: dict[str, Any] = {"url": emu.serial_url, "pty": emu.pty_path,
                                "device_id": emu.device_id, "key_file": str(emu.key_file),
                                "cli_key_file": str(default_key_path(emu.device_id)),
                                "visa": emu.visa_resources, "speed": args.speed,
                                "runtime": args.runtime,
                                "state_dir": str(emu.state_dir)}
        if getattr(args, "json", False):
            print(json.dumps(info, sort_keys=True), flush=True)
        else:
            print("itpump emulator (virtual rig) - research/education software, "
                  "not a medical device")
            print(f"  pump:      {info['url']}" + (f"  (pty {info['pty']})" if info["pty"]
                                                   else ""))
            print(f"  device id: {info['device_id']}")
            print(f"  runtime:   {info['runtime']}")
            print(f"  key file:  {info['key_file']}")
            print(f"             (copy where the CLI looks: {info['cli_key_file']})")
            print(f"  speed:     {args.speed:g} x real time"
                  + ("  (priming 150 uL takes 9 min at 1x: --speed 60 makes it 9 s)"
                     if args.speed < 10 else ""))
            for name, res in sorted(info["visa"].items()):
                print(f"  {name + ':':10} {res}")
            print(f"try: itpump --port {info['url']} status      (Ctrl-C stops the emulator)",
                  flush=True)
        deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else min(0.2, max(0.0, deadline
                                                                  - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        emu.close()
    return EXIT_OK


def simulate(args: argparse.Namespace) -> int:
    from pumphil import report, scenario
    from pumphil import simulate as sim
    from pumphil.mpy_runtime import MicroPythonUnavailable
    from pumphil.progress import day_progress

    try:
        sc = scenario.load(args.scenario)
    except scenario.ScenarioError as e:
        print(f"error: scenario: {e}", file=sys.stderr)
        return EXIT_FILE
    if args.report:
        try:
            report.check_writable(args.report)
        except report.ReportDirError as e:
            print(f"error: report: {e}", file=sys.stderr)
            return EXIT_FILE
    sample_ms = None if args.sample_min is None else args.sample_min * 60000
    t = time.perf_counter()
    try:
        with day_progress(sc.days, sc.name) as progress:
            rec = sim.run(sc, sample_ms=sample_ms, runtime=args.runtime, progress=progress)
    except sim.SimulationError as e:
        print(f"error: {e.reason}: {e.message}", file=sys.stderr)
        return EXIT_REFUSED
    except MicroPythonUnavailable as e:
        print(f"error: {e.reason}: {e}", file=sys.stderr)
        return EXIT_USAGE
    wall = time.perf_counter() - t
    try:
        rep = report.write_report(rec, args.report) if args.report else report.build_report(rec)
    except report.ReportDirError as e:
        print(f"error: report: {e}", file=sys.stderr)
        return EXIT_FILE
    code = EXIT_EXPECTATION if rep["verdict"] == report.FAIL else EXIT_OK
    if getattr(args, "json", False):
        print(report.dumps(rep))
        return code
    print(report.summary_text(rec, rep))
    ratio = sc.duration_ms / 1000 / wall if wall > 0 else 0.0
    print(f"Simulated {sc.duration_ms / 86_400_000:g} day(s) in {wall:.1f} s "
          f"({ratio:,.0f}x real time)")
    if args.report:
        print(f"Report: {Path(args.report) / report.HTML} (open it in a browser), "
              f"{Path(args.report) / 'report.json'}, summary.txt and {', '.join(report.PLOTS)}")
    return code


def register(sub: Any) -> None:
    p = sub.add_parser("emulate", help=EMULATE_HELP, description=EMULATE_DESC,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", type=_host_port, default=("127.0.0.1", 0), metavar="HOST:PORT",
                   help="serial endpoint address (default 127.0.0.1 and a free port)")
    p.add_argument("--pty", action="store_true", help="also offer the serial port as a pty")
    p.add_argument("--speed", type=positive_float, default=1.0, metavar="X",
                   help="virtual time runs X times real time (default 1)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="keep the flash image and keys here (default: a temporary directory)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="plant noise seed (0)")
    p.add_argument("--runtime", choices=RUNTIMES, default="cpython", help=RUNTIME_HELP)
    p.add_argument("--no-instruments", action="store_true",
                   help="do not start the virtual lab instruments")
    p.add_argument("--exit-after", type=positive_float, default=None, metavar="S",
                   help="stop after S seconds of real time (scripts, tests)")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print the endpoints as one JSON line")
    p.set_defaults(handler=emulate)

    p = sub.add_parser("simulate", help=SIMULATE_HELP, description=SIMULATE_DESC,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", metavar="SCENARIO", help="scenario TOML file")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print only the JSON report")
    p.add_argument("--report", metavar="DIR",
                   help="write index.html, report.json, summary.txt and PNG plots into DIR")
    p.add_argument("--sample-min", type=_minutes, default=None, metavar="M",
                   help="status sample interval in minutes (default: 1-12 h by duration)")
    p.add_argument("--runtime", choices=RUNTIMES, default="cpython", help=RUNTIME_HELP)
    p.set_defaults(handler=simulate)
