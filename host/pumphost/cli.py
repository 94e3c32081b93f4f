"""`itpump`: drive an itpump pump from the command line (docs/cli.md).

Research and education software, not a medical device.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pumpcore import commands as _commands
from pumpcore import library as _library
from pumpcore import reasons as _reasons
from pumpcore.pump import Pump
from pumpcore.wire import ROLES

from . import (
    cli_campaign,
    cli_deploy,
    cli_emulator,
    explain,
    library_file,
    prescription_file,
    titration,
    views,
)
from . import keys as _keys
from . import units as U
from .client import PumpClient
from .errors import AuthError, ProtocolError, PumpError, RefusedError, TransportError

try:
    from importlib.metadata import version as _pkg_version

    HOST_VERSION = _pkg_version("itpump")
except Exception:  # noqa: BLE001  # pragma: no cover - not installed
    HOST_VERSION = "0+unknown"

#: exit codes (docs/cli.md)
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_AUTH, EXIT_LINK, EXIT_FILE = 0, 1, 2, 3, 4, 5

DESCRIPTION = """\
Drive an itpump intrathecal pump (research/education software, NOT a medical device).

Quick start with the emulator or a Pico on USB:
  itpump --port socket://127.0.0.1:5555 version      # who is there (no key needed)
  itpump --port /dev/ttyACM0 status                   # needs the pump's key file
  itpump keys generate --device-id E6614103E7452D2F   # make keys (provision them on the pump)

The port can also come from $ITPUMP_PORT. Keys are read from --key-file, else from
$ITPUMP_HOME/keys/<device id>.json (ITPUMP_HOME defaults to ~/.config/itpump).
Offline (no pump): itpump check RX.toml [--current OLD.toml] [--plan], itpump library show FILE.
Exit status: 0 ok, 1 refused by the pump (or by `check`), 2 usage, 3 authentication,
4 link/protocol, 5 bad file. On failure "error: <reason>: <sentence>" goes to stderr (one more
line per problem when the pump names several).
"""


class CliError(PumpError):
    reason = "usage"


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting, so usage errors are reported like
    every other error (and as JSON with --json)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see: {self.prog} --help)", "usage")


def _global_options(p: argparse.ArgumentParser, top: bool) -> None:
    d: Any = None if top else argparse.SUPPRESS
    p.add_argument("--port", default=d, metavar="URL",
                   help="serial device or pyserial URL: /dev/ttyACM0, socket://HOST:PORT, "
                        "rfc2217://HOST:PORT, hwgrep://2e8a:0005, loop:// (default "
                        "$ITPUMP_PORT)")
    p.add_argument("--key-file", default=d, metavar="PATH",
                   help="key file (default: looked up by the pump's device id)")
    p.add_argument("--json", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="machine-readable JSON output only")
    p.add_argument("--role", choices=ROLES, default=d,
                   help="role to sign with (default: the least-privileged role in the key file "
                        "that may run the command)")
    p.add_argument("--timeout", type=float, default=2.0 if top else argparse.SUPPRESS,
                   metavar="S", help="seconds to wait for each reply before resending (2)")


def _decimal(text: str) -> Decimal:
    try:
        d = U.parse_decimal(text)
    except U.UnitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if d < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text}")
    return d


def _exact(d: Decimal, factor: int, what: str) -> int:
    try:
        return U.to_wire(d, factor)
    except U.UnitError as e:
        raise CliError(f"{what}: {e}", "bad_value") from None


# Commands of the command table the CLI does not offer as such: `version` says hello, `program`
# stages (in chunks when long) and commits, `library push/show` stage, commit and show libraries,
# `log --stored` pages through the stored log.
HIDDEN = frozenset({_commands.HELLO, _commands.STAGE, _commands.STAGE_CHUNK, _commands.LOG_STORED,
                    _commands.LIBRARY_STAGE, _commands.LIBRARY_CHUNK, _commands.LIBRARY_COMMIT,
                    _commands.LIBRARY_SHOW})


def cli_name(cmd: str) -> str:
    """The subcommand of a wire command: clinician_bolus -> clinician-bolus."""
    return cmd.replace("_", "-")


def _option(arg: _commands.Arg) -> str:
    return "--" + arg.shown.replace("_", "-")


def _json_object(text: str) -> dict[str, Any]:
    try:
        v = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not JSON: {text}") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return v


def _table_options(p: argparse.ArgumentParser, row: _commands.Command) -> None:
    """One option per argument of a command table row, in the unit people use (its `shown`
    name): --volume-ul 0.5 is volume_nl=500; booleans are flags."""
    for a in row.args:
        opt = _option(a)
        extra = "" if a.scale == 1 else f" (sent as {a.name} = value x {a.scale})"
        if a.kind == _commands.BOOL:
            p.add_argument(opt, dest=a.shown, action="store_true", help=a.help or None)
            continue
        kind: Any = str
        metavar = a.shown.upper()
        if a.kind in (_commands.INT, _commands.INT_OR_NULL):
            kind = _decimal if a.scale != 1 else int
            metavar = "N"
        elif a.kind == _commands.OBJ:
            kind = _json_object
            metavar = "JSON"
        p.add_argument(opt, dest=a.shown, type=kind, required=a.required, default=None,
                       metavar=metavar, help=(a.help + extra) if (a.help or extra) else None)


def table_args(row: _commands.Command, args: argparse.Namespace) -> dict[str, Any]:
    """The wire arguments of a parsed subcommand: human units converted exactly, bounds checked
    (a clear usage error before anything is sent); options left out are left out."""
    out: dict[str, Any] = {}
    for a in row.args:
        v = getattr(args, a.shown, None)
        if a.kind == _commands.BOOL:
            if v:
                out[a.name] = True
            continue
        if v is None:
            continue
        if a.kind in (_commands.INT, _commands.INT_OR_NULL):
            n = _exact(v, a.scale, _option(a)) if isinstance(v, Decimal) else int(v)
            if (a.lo is not None and n < a.lo) or (a.hi is not None and n > a.hi):
                lo = Decimal(a.lo or 0) / a.scale
                hi = Decimal(a.hi or 0) / a.scale
                raise CliError(f"{_option(a)}: must be {lo:f}..{hi:f}", "bad_value")
            v = n
        out[a.name] = v
    return out


def build_parser(table: tuple[_commands.Command, ...] | None = None) -> argparse.ArgumentParser:
    """The `itpump` parser: one subcommand per command table row (default
    pumpcore.commands.COMMANDS) except HIDDEN, plus the host's own commands."""
    rows = table if table is not None else _commands.COMMANDS
    parser = _Parser(
        prog="itpump", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(parser, top=True)
    parser.add_argument("--version", action="version", version=f"itpump {HOST_VERSION}",
                        help="print this program's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, desc: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=desc or help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _global_options(p, top=False)
        return p

    for row in rows:
        if row.name in HIDDEN:
            continue
        p = add(cli_name(row.name), row.help + f" (roles: {', '.join(row.roles)})")
        p.set_defaults(wire_command=row.name)
        custom = _CUSTOM.get(row.name)
        if custom is not None and custom[0] is not None:
            custom[0](p)
        else:
            _table_options(p, row)
        if row.name == _commands.REFILL:
            p.add_argument("--prescription", metavar="FILE",
                           help="the new admixture's prescription: reviewed first; with "
                                "--confirm the refill and the program are recorded together "
                                "(nothing is recorded when the pump refuses either)")
            _commit_options(p)
    p = add("program", "stage a prescription file, show the pump's review, commit with --confirm",
            "Send FILE (TOML, see docs/examples) to the pump, which validates it and answers "
            "with a review:\ndaily dose per drug against its limits, what needs confirming, "
            "changes versus the running program.\nNothing changes on the pump until you run the "
            "same command with --confirm. --plan proposes\nthe titration steps from the running "
            "program instead (nothing is sent).")
    p.add_argument("file", metavar="FILE", help="prescription TOML file")
    _commit_options(p)
    _plan_options(p)
    p = add("check", "check a prescription offline with the firmware's own validation (no pump)",
            "Validate RX.toml exactly as the pump would (the firmware's own code runs here), "
            "against a library file\n(default: the project's example library) and, with "
            "--current, the program running now (titration).\nExit 0 only when the pump would "
            "accept it with the confirmations given (--confirm-soft-limit,\n--continuing). The "
            "titration interval is not checked offline: the pump knows when the last increase "
            "was.")
    p.add_argument("file", metavar="RX", help="prescription TOML file")
    p.add_argument("--library", metavar="FILE", help="library TOML file (default: the example)")
    p.add_argument("--current", metavar="RX", help="the program running now (TOML)")
    _commit_options(p, confirm=False)
    _plan_options(p)
    p = add("library", "show or load the drug library the pump enforces",
            "The drug library (hard and soft limits, concentration ranges, titration rules) is "
            "data the pump keeps:\n`library show` prints what the pump enforces (version, "
            "checksum), `library show FILE` a library file\nwith its sources, `library push "
            "FILE` loads a file (the pump reviews it; --confirm commits it).")
    lsub = p.add_subparsers(dest="library_command", metavar="ACTION", parser_class=_Parser)
    lsub.required = True
    ls = lsub.add_parser("show", help="the pump's library, or a library FILE with its sources")
    _global_options(ls, top=False)
    ls.add_argument("file", nargs="?", metavar="FILE",
                    help="a library TOML file (no pump needed); 'example' for the shipped one")
    lp = lsub.add_parser("push", help="load a library file onto the pump (review, then --confirm)",
                         description="Send FILE to the pump, which validates it and reviews the "
                                     "change (drugs added, removed,\nchanged, LOOSENED). Nothing "
                                     "changes until --confirm; a library that loosens any\n"
                                     "limit also needs --confirm-loosening. A library the running "
                                     "program does not fit\nis refused: program within it first.",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(lp, top=False)
    lp.add_argument("file", metavar="FILE", help="library TOML file")
    lp.add_argument("--confirm", action="store_true", help="commit the reviewed library")
    lp.add_argument("--confirm-loosening", action="store_true",
                    help="accept a library that allows more than the current one")
    p = add("monitor", "live status, alarms and events until Ctrl-C")
    p.add_argument("--interval", type=float, default=5.0, metavar="S",
                   help="seconds between status lines (5)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help=argparse.SUPPRESS)  # for tests: stop after S seconds
    p = add("keys", "generate or show key files")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    kg = ksub.add_parser("generate", help="make a new key file (one random key per role)",
                         description="Write a new key file (JSON, mode 0600) with one random "
                                     "32-byte key per role.\nProvision the same file on the pump "
                                     "(see docs/protocol.md).")
    kg.add_argument("--device-id", required=True, metavar="ID")
    kg.add_argument("--out", metavar="PATH",
                    help="default $ITPUMP_HOME/keys/<ID>.json")
    kg.add_argument("--roles", nargs="+", choices=ROLES, default=list(ROLES))
    kg.add_argument("--force", action="store_true", help="overwrite an existing file")
    kg.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    ks = ksub.add_parser("show", help="show a key file's device id, roles and fingerprints "
                                      "(no option: list all key files)")
    ks.add_argument("--device-id", metavar="ID")
    ks.add_argument("--key-file", metavar="PATH", default=argparse.SUPPRESS)
    ks.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    add("version", "show this program's version and, with a port, the pump's")
    # Hook for `emulate` / `simulate` (owned by the emulator; see cli_emulator.py)
    cli_emulator.register(sub)
    # Hook for `campaign` (owned by pumphil.campaign; see cli_campaign.py)
    cli_campaign.register(sub)
    cli_deploy.register(sub)          # `flash` / `provision` (cli_deploy.py)
    return parser


def _commit_options(p: argparse.ArgumentParser, confirm: bool = True) -> None:
    if confirm:
        p.add_argument("--confirm", action="store_true", help="commit the reviewed program")
    p.add_argument("--confirm-soft-limit", action="store_true",
                   help="accept a daily dose above a drug's soft limit, or a prescription's own "
                        "soft limit above the library's (never above the hard limit)")
    p.add_argument("--continuing", action="store_true",
                   help="a first program above a drug's starting dose is the patient's "
                        "continuing therapy (pump replacement, transfer): logged as such")
    p.add_argument("--bridge", action="store_true",
                   help="deliver the bridge bolus the review proposes (drug change)")


def _plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", action="store_true",
                   help="propose the titration steps from the current program to this one "
                        "within the library's step and interval rules (nothing is sent)")
    p.add_argument("--plan-dir", metavar="DIR",
                   help="with --plan: also write each step as a prescription file into DIR")


def _log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="0", metavar="SEQ|TIME",
                   help="only entries after log sequence number SEQ, or entries stamped at or "
                        "after a local time (2026-11-24T08:00; an offset such as +01:00 is "
                        "converted to local time)")
    p.add_argument("--until", metavar="TIME", help="only entries stamped before this local time")
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="only entries of this kind (command, alarm, state, refused, ...; "
                        "repeatable)")
    p.add_argument("--by-role", choices=ROLES, dest="by_role", metavar="ROLE",
                   help="only commands sent with this role (clinician, patient, readonly)")
    p.add_argument("--stored", action="store_true",
                   help="read the event log stored on the pump's flash (every entry it keeps, "
                        "across resets and power cuts; slower) instead of its recent RAM ring; "
                        "--since SEQ is then a pump event number (the entries' seq)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")


def _set_clock_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("time", nargs="?", metavar="ISO",
                   help="local time as 2026-11-24T08:00[:00] (default now); a time with an "
                        "offset (+01:00, Z) is converted to this computer's local time")


def _no_options(p: argparse.ArgumentParser) -> None:
    pass


# --- output helpers -----------------------------------------------------------------------------
def _emit(args: argparse.Namespace, data: Any, human: str | None = None,
          out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if args.json:
        out.write(json.dumps(data, sort_keys=True) + "\n")
    elif human is not None:
        out.write(human.rstrip("\n") + "\n")
    else:
        out.write(_pretty(data))


def _pretty(data: Any, indent: str = "") -> str:
    if isinstance(data, dict):
        if not data:
            return indent + "ok\n"
        lines = []
        for k in sorted(data):
            v = data[k]
            if isinstance(v, dict) and v:
                lines.append(f"{indent}{k}:\n" + _pretty(v, indent + "  ").rstrip("\n"))
            else:
                lines.append(f"{indent}{k}: {json.dumps(v)}")
        return "\n".join(lines) + "\n"
    return indent + json.dumps(data) + "\n"


def format_review(review: dict[str, Any], drugs: list[str] | None = None) -> str:
    """Human text of the pump's review (pumphost.views.review)."""
    return views.review(review, drugs)


def _drug_names(rx: dict[str, Any] | None) -> list[str]:
    try:
        return [str(d["name"]) for d in (rx or {}).get("drugs") or []]
    except (TypeError, KeyError):
        return []


# --- commands -----------------------------------------------------------------------------------
def _client(args: argparse.Namespace) -> PumpClient:
    port = args.port or os.environ.get("ITPUMP_PORT")
    if not port:
        raise CliError("no port: pass --port URL or set ITPUMP_PORT")
    c = PumpClient.open(port, key_file=args.key_file, timeout_s=args.timeout, role=args.role)
    c.table = getattr(args, "table", None)
    return c


def _commit_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {"confirm_soft": args.confirm_soft_limit, "bridge": args.bridge,
            "continuing": args.continuing}


def _program(args: argparse.Namespace, client: PumpClient, rx: dict[str, Any],
             refill_nl: int | None = None) -> dict[str, Any]:
    """Stage rx, print the review, commit with --confirm (with refill_nl: the refill that comes
    with the new admixture, recorded by the same commit)."""
    args.refused_command = _commands.STAGE
    review = client.stage(rx)
    result: dict[str, Any] = {"review": review, "committed": False}
    if not args.json:
        print(format_review(review, _drug_names(rx)))
    if args.confirm:
        args.refused_command = _commands.COMMIT
        extra: dict[str, Any] = _commit_flags(args)
        if refill_nl is not None:
            extra["refill_nl"] = refill_nl
        result["commit"] = client.commit(str(review.get("checksum")), **extra)
        result["committed"] = True
        if not args.json:
            print("committed." if refill_nl is None else
                  f"refill of {U.volume(refill_nl)} recorded and program committed.")
    elif not args.json:
        what = "nothing recorded" if refill_nl is not None else "not committed"
        print(f"{what}: run again with --confirm to commit this program"
              + (" and record the refill." if refill_nl is not None else "."))
    return result


def _library_of(args: argparse.Namespace) -> library_file.LibraryFile:
    return library_file.load(args.library) if getattr(args, "library", None) \
        else library_file.example()


def _check(args: argparse.Namespace) -> int:
    """`itpump check`: the firmware's own Pump, in this process, stages the program exactly as a
    pump would (after committing --current, if given) and commits it with the flags given."""
    lib_file = _library_of(args)
    lib = _library.Library.from_record(lib_file.record)
    rx = prescription_file.load(args.file)
    current = prescription_file.load(args.current) if args.current else None
    if args.plan:
        return _plan_out(args, current, rx, lib, None, lib_file.record)
    pump = Pump(library=lib)
    pump.boot()
    if current is not None:
        code, rv = pump.stage(current)
        if code == "ok":
            code, rv = pump.commit(rv["checksum"], confirm_soft=True, continuing=True)
        if code != "ok":
            raise RefusedError(f"{args.current} (--current) is itself refused: "
                               + " ".join(explain.sentences(code, rv, _commands.STAGE)),
                               code, rv or {})
        for _ in range(2):           # the interval rule is the pump's to check (see --help)
            pump.advance(4 * U.MS_PER_DAY)
    args.refused_command = _commands.STAGE
    code, review = pump.stage(rx)
    head = (f"offline check of {args.file} against {lib_file.record['name']} "
            f"{lib_file.record['version']} ({lib_file.checksum})"
            + (f", from {args.current}" if current is not None else ""))
    if code != "ok":
        raise RefusedError(head, code, review or {})
    args.refused_command = _commands.COMMIT
    ccode, cdata = pump.commit(review["checksum"], **_commit_flags(args))
    verdict = {"accepted": ccode == "ok", "reason": None if ccode == "ok" else ccode,
               "library": lib_file.checksum, "review": review}
    if args.json:
        _emit(args, verdict)
    else:
        print(head)
        print(format_review(review, _drug_names(rx)))
        if ccode == "ok":
            print("the pump would accept this program.")
    if ccode != "ok":
        if args.json:
            return EXIT_REFUSED
        raise RefusedError("the pump would not commit it with these confirmations", ccode,
                           cdata or {})
    return EXIT_OK


def _plan_out(args: argparse.Namespace, current: dict[str, Any] | None, rx: dict[str, Any],
              lib: _library.Library, ages: dict[str, Any] | None,
              record: dict[str, Any]) -> int:
    try:
        steps = titration.plan(current, rx, lib, ages)
    except titration.PlanError as e:
        if e.problems:
            raise RefusedError(f"no plan: {e}", e.problems[0][0], {"problems": e.problems}) \
                from None
        raise RefusedError(f"no plan: {e}", "no_plan") from None
    written: list[str] = []
    if args.plan_dir:
        folder = Path(args.plan_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for st in steps:
            path = folder / f"step-{st.n:02d}.toml"
            path.write_text(prescription_file.dump(
                st.rx, f"Titration step {st.n} of {len(steps)} towards {args.file}: commit no "
                       f"earlier than {U.duration(st.after_ms)} after step 1.\n"
                       "Proposed by itpump (research software, NOT clinical guidance)."))
            written.append(str(path))
    data = {"steps": [{"step": st.n, "after_ms": st.after_ms, "daily_ng": st.daily_ng,
                       "scale_permille": st.scale_permille, "soft_breaches": st.soft_breaches,
                       "rx": st.rx} for st in steps],
            "library": {"name": record.get("name"), "version": record.get("version")},
            "files": written}
    if args.json:
        _emit(args, data)
    else:
        print(views.plan(steps, current_doses(current, lib)))
        for w in written:
            print(f"wrote {w}")
    return EXIT_OK


def current_doses(rx: dict[str, Any] | None, lib: _library.Library) -> dict[str, int]:
    if rx is None:
        return {}
    from pumpcore import prescription as P
    return dict(P.validate(rx, lib, None, None)[1]["daily_ng"])


def _program_plan(args: argparse.Namespace, c: PumpClient, rx: dict[str, Any]) -> int:
    """`program FILE --plan`: the running program and the library from the pump, the plan here."""
    try:
        cur = c.request(_commands.SHOW_PROGRAM)
    except RefusedError as e:
        if e.reason != _reasons.NO_PROGRAM:
            raise
        cur = {"rx": None, "increase_age_ms": {}}
    rec = c.request(_commands.LIBRARY_SHOW)
    problems, lib = _library.validate_record({k: rec[k] for k in _library.RECORD_KEYS})
    if lib is None:
        raise ProtocolError(f"the pump's library does not validate here: {problems[:1]}")
    return _plan_out(args, cur.get("rx"), rx, lib, cur.get("increase_age_ms"), rec)


def _library_cmd(args: argparse.Namespace) -> int:
    if args.library_command == "show" and args.file:
        lf = library_file.example() if args.file == "example" else library_file.load(args.file)
        rec = dict(lf.record, checksum=lf.checksum)
        _emit(args, {"library": rec, "sources": lf.sources, "file": lf.path},
              views.library(rec, lf.sources))
        return EXIT_OK
    with _client(args) as c:
        if args.library_command == "show":
            rec = c.request(_commands.LIBRARY_SHOW)
            _emit(args, rec, views.library(rec))
            return EXIT_OK
        lf = library_file.load(args.file)
        args.refused_command = _commands.LIBRARY_STAGE
        rv = c.stage_library(lf.record)
        res: dict[str, Any] = {"review": rv, "committed": False}
        if not args.json:
            print(views.library_review(rv))
        if args.confirm:
            args.refused_command = _commands.LIBRARY_COMMIT
            res["commit"] = c.request(_commands.LIBRARY_COMMIT, {
                "checksum": rv["checksum"], "confirm_loosening": args.confirm_loosening})
            res["committed"] = True
            if not args.json:
                print(f"library {rv['name']} {rv['version']} ({rv['checksum']}) is now the one "
                      "the pump enforces.")
        elif not args.json:
            print("not loaded: run again with --confirm to load this library.")
        if args.json:
            _emit(args, res)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "keys":
        return _keys_cmd(args)
    if cmd == "check":
        return _check(args)
    if cmd == "library":
        return _library_cmd(args)
    if cmd == "version":
        info: dict[str, Any] = {"host": HOST_VERSION}
        if args.port or os.environ.get("ITPUMP_PORT"):
            with _client(args) as c:
                info["pump"] = c.hello()
                info["verified"] = c.info is not None
        human = f"itpump host {HOST_VERSION}"
        if "pump" in info:
            p = info["pump"]
            human += (f"\npump {p.get('device_id')}: firmware {p.get('firmware')}, board "
                      f"{p.get('board')}, protocol {p.get('protocol')}"
                      + ("" if info["verified"] else " (unverified: no key file for this pump)"))
            if p.get("locked"):
                human += f"\nLOCKED: {p['locked']} (re-key over USB, docs/protocol.md)"
        _emit(args, info, human)
        return EXIT_OK
    if cmd == "program" and args.plan:
        rx = prescription_file.load(args.file)
        with _client(args) as c:
            return _program_plan(args, c, rx)
    with _client(args) as c:
        if cmd == "program":
            result = _program(args, c, prescription_file.load(args.file))
            if args.json:
                _emit(args, result)
        elif cmd == "monitor":
            _monitor(args, c)
        else:
            name = args.wire_command
            args.refused_command = name
            custom = _CUSTOM.get(name)
            if custom is not None:
                custom[1](args, c)
            else:
                row = _commands.find(name, args.table)
                assert row is not None
                data = c.request(name, table_args(row, args))
                _emit(args, data, f"{cli_name(name)}: ok" + ("\n" + _pretty(data, "  ")
                                                            if data else ""))
    return EXIT_OK


def _run_log(args: argparse.Namespace, c: PumpClient) -> None:
    entries = _stored_entries(c, args.since) if args.stored else _log_entries(c, args.since)
    if args.until:
        end = U.wall_clock_of(U.parse_local(args.until))
        entries = [[s, e] for s, e in entries if (_stamp(e) or end) < end]
    if args.kind:
        entries = [[s, e] for s, e in entries if e.get("kind") in args.kind]
    if args.by_role:
        entries = [[s, e] for s, e in entries if e.get("role") == args.by_role]
    _print_log(args, entries)


def _stamp(e: dict[str, Any]) -> tuple[int, int] | None:
    day, ms = e.get("day"), e.get("ms")
    if isinstance(day, int) and isinstance(ms, int) and day >= 0:
        return day, ms
    return None


def _run_set_clock(args: argparse.Namespace, c: PumpClient) -> None:
    moment = U.parse_local(args.time) if args.time else _dt.datetime.now()
    given = f" ({args.time})" if args.time and moment.isoformat() != args.time else ""
    _emit(args, c.set_clock_to(moment),
          f"pump clock set to {moment:%Y-%m-%d %H:%M:%S} local time{given}")


def _run_review(args: argparse.Namespace, c: PumpClient) -> None:
    review = c.review()
    _emit(args, review, format_review(review))


def _run_status(args: argparse.Namespace, c: PumpClient) -> None:
    st = c.status()
    _emit(args, st, views.status(st, c.info))


def _run_show_program(args: argparse.Namespace, c: PumpClient) -> None:
    data = c.request(_commands.SHOW_PROGRAM)
    rx = data.get("rx") or {}
    human = views.review(dict(data.get("review") or {}, changes=[]), _drug_names(rx),
                         title=f"Committed program {(data.get('review') or {}).get('checksum')}")
    human += "\n" + prescription_file.dump(rx).rstrip() if rx else ""
    _emit(args, data, human)


def _run_prime(args: argparse.Namespace, c: PumpClient) -> None:
    row = _commands.find(_commands.PRIME, args.table)
    assert row is not None
    data = c.request(_commands.PRIME, table_args(row, args))
    ms = data.get("duration_ms")
    human = "prime: ok"
    if isinstance(ms, int):
        clock = c.status().get("clock") if not args.json else None
        now = U.wall_datetime(*clock) if isinstance(clock, list) else None
        human += f"; priming takes {U.duration(ms)} of pump time, done at {U.at_after(ms, now)}"
        if (c.info or {}).get("board") == "emulator" and ms > 2 * U.MS_PER_MIN:
            human += ("\n(an emulator runs at the speed it was started with: `itpump emulate "
                      f"--speed 60` would take about {U.duration(max(1000, ms // 60))})")
    _emit(args, data, human)


def _run_refill(args: argparse.Namespace, c: PumpClient) -> None:
    row = _commands.find(_commands.REFILL, args.table)
    assert row is not None
    wire_args = table_args(row, args)
    if args.prescription:
        # all or nothing: the pump reviews the new program first; the refill is recorded by
        # the same commit that makes the program active (nothing at all when either is refused)
        new_rx = prescription_file.load(args.prescription)
        res = _program(args, c, new_rx, refill_nl=wire_args["fill_nl"])
        if args.json:
            _emit(args, res)
        return
    res = {"refill": c.request(_commands.REFILL, wire_args)}
    _emit(args, res, f"refill of {U.volume(wire_args['fill_nl'])} recorded"
          + (": a new program must be committed before therapy starts"
             if wire_args.get("new_admixture") else ""))


#: table commands whose CLI is host work: (options, or None for the table's; runner)
_CUSTOM: dict[str, tuple[Callable[[argparse.ArgumentParser], None] | None,
                         Callable[[argparse.Namespace, PumpClient], None]]] = {
    _commands.LOG: (_log_options, _run_log),
    _commands.SET_CLOCK: (_set_clock_options, _run_set_clock),
    _commands.REVIEW: (_no_options, _run_review),
    _commands.REFILL: (None, _run_refill),
    _commands.STATUS: (_no_options, _run_status),
    _commands.SHOW_PROGRAM: (_no_options, _run_show_program),
    _commands.PRIME: (None, _run_prime),
}


def _log_entries(c: PumpClient, since: str) -> list[list[Any]]:
    if since.isdigit():
        return c.log_all(int(since))
    try:
        day, ms = U.wall_clock_of(U.parse_local(since))
    except U.UnitError as e:
        raise CliError(f"--since: not a sequence number or ISO time: {since}") from e
    # every entry carries the pump's wall clock as "day"/"ms" (-1 when it was not set; those
    # are left out of a time-filtered listing); command rows carry it too
    return [[s, e] for s, e in c.log_all(0) if (_stamp(e) or (-1, 0)) >= (day, ms)]


def _stored_entries(c: PumpClient, since: str) -> list[list[Any]]:
    """The flash log as [[position, entry]...]; a position reads "SEQ" for a pump event and
    "SEQ+K" for the K-th entry without a number after it (a command row, a security entry)."""
    def pos(p: list[int]) -> str:
        return str(p[0]) if p[1] == 0 else f"{p[0]}+{p[1]}"

    if since.isdigit():
        return [[pos(p), e] for p, e in c.log_stored_all(int(since), _commands.MAX_SEQ)]
    try:
        day, ms = U.wall_clock_of(U.parse_local(since))
    except U.UnitError as e:
        raise CliError(f"--since: not a sequence number or ISO time: {since}") from e
    return [[pos(p), e] for p, e in c.log_stored_all()
            if (_stamp(e) or (-1, 0)) >= (day, ms)]


def _print_log(args: argparse.Namespace, entries: list[list[Any]]) -> None:
    # "log_seq" is the protocol log's sequence number (what --since takes); pump entries carry
    # their own "seq" (the pump's event counter) among their fields.
    rows = [{"log_seq": s, **e} for s, e in entries]
    if args.json or args.format == "json":
        sys.stdout.write(json.dumps(rows, sort_keys=True) + "\n")
        return
    if args.format == "table":
        sys.stdout.write(views.log_table(rows) + "\n")
        return
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["log_seq", "time", "kind", "what", "details"])
    for r in rows:
        what, det = views.event_what(r)
        w.writerow([r["log_seq"], views.event_time(r), r.get("kind"), what, det])


def _monitor(args: argparse.Namespace, c: PumpClient) -> None:
    def show(event: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({"event": event}, sort_keys=True), flush=True)
        else:
            print("event " + views.event_line(event), flush=True)

    def issue(what: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({"event_issue": what}, sort_keys=True), flush=True)
        else:
            print("WARNING event lines " + json.dumps(what, sort_keys=True)
                  + " (check `itpump log`)", flush=True)

    c.on_event(show)
    c.on_event_issue(issue)
    end = None if args.duration is None else time.monotonic() + args.duration
    try:
        while end is None or time.monotonic() < end:
            st = c.status()
            if args.json:
                print(json.dumps({"status": st}, sort_keys=True), flush=True)
            else:
                print(views.status_line(st, f"{_dt.datetime.now():%H:%M:%S}"), flush=True)
            wait = args.interval if end is None else min(args.interval,
                                                         max(0.0, end - time.monotonic()))
            c.poll_events(0)
            stop_at = time.monotonic() + wait
            while time.monotonic() < stop_at:
                c.poll_events(stop_at - time.monotonic())
    except KeyboardInterrupt:
        pass


def _keys_cmd(args: argparse.Namespace) -> int:
    if args.keys_command == "generate":
        ks = _keys.generate(args.device_id, tuple(args.roles))
        path = Path(args.out) if args.out else _keys.default_key_path(args.device_id)
        _keys.save(ks, path, overwrite=args.force)
        _emit(args, {"path": str(path), "device_id": ks.device_id, "roles": ks.roles()},
              f"wrote {path} (mode 600) with keys for {', '.join(ks.roles())}")
        return EXIT_OK
    path_arg = getattr(args, "key_file", None)
    if path_arg:
        path = Path(path_arg)
    elif args.device_id:
        path = _keys.default_key_path(args.device_id)
    else:
        folder = _keys.itpump_home() / "keys"
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        listing = []
        for f in files:
            try:
                ks_f = _keys.load(f)
                listing.append({"path": str(f), "device_id": ks_f.device_id,
                                "roles": ks_f.roles()})
            except _keys.KeyFileError as e:
                listing.append({"path": str(f), "error": e.message})
        _emit(args, {"keys": listing}, "\n".join(
            f"{x['path']}: " + (f"device {x['device_id']}, roles {', '.join(x['roles'])}"
                                if "roles" in x else f"ERROR {x['error']}")
            for x in listing) or f"no key files in {folder}")
        return EXIT_OK
    ks = _keys.load(path)
    import hashlib

    fps = {r: hashlib.sha256(ks.keys[r]).hexdigest()[:16] for r in ks.roles()}
    _emit(args, {"path": str(path), "device_id": ks.device_id, "fingerprints": fps},
          f"{path}\ndevice {ks.device_id}\n" + "\n".join(
              f"  {r}: fingerprint {fp}" for r, fp in fps.items()))
    return EXIT_OK


def exit_code_for(err: PumpError) -> int:
    if isinstance(err, (_keys.KeyFileError, prescription_file.PrescriptionError,
                        library_file.LibraryFileError)):
        return EXIT_FILE
    if isinstance(err, AuthError):
        return EXIT_AUTH
    if isinstance(err, (TransportError, ProtocolError)):
        return EXIT_LINK
    if isinstance(err, RefusedError):
        return EXIT_REFUSED
    if isinstance(err, CliError):
        return EXIT_USAGE
    return EXIT_REFUSED


EXIT_PIPE = 141   # the reader went away (itpump log | head): 128 + SIGPIPE, as shells report it


def error_lines(err: PumpError, command: str | None = None) -> list[str]:
    """What a failure prints: "error: <reason>: <sentence>", one more line per problem when the
    pump named several (pumphost.explain words them)."""
    said = explain.sentences(err.reason, err.data, command) if err.data else []
    if isinstance(err, RefusedError) and not said and err.message == err.reason:
        said = explain.sentences(err.reason, {}, command)
    head = err.message if err.message and err.message != err.reason else ""
    if not said:
        return [f"error: {err.reason}: {head or err.reason}"]
    if len(said) == 1:
        return [f"error: {err.reason}: " + (f"{head}: " if head else "") + said[0]]
    return [f"error: {err.reason}: {head or 'the pump refused it'} ({len(said)} problems):"] \
        + [f"  - {x}" for x in said]


def _fail(err: PumpError, as_json: bool, command: str | None = None) -> int:
    lines = error_lines(err, command)
    if as_json:
        print(json.dumps({"error": err.reason, "message": lines[0].split(": ", 2)[-1],
                          "sentences": [x.lstrip(" -") for x in lines[1:]] or None,
                          "data": err.data}, sort_keys=True))
    print("\n".join(lines), file=sys.stderr)
    return exit_code_for(err)


def _quiet_stdout() -> None:
    # the reader closed the pipe: point stdout at /dev/null so the interpreter's final flush
    # cannot raise again (Python's documented recipe for SIGPIPE)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None,
         table: tuple[_commands.Command, ...] | None = None) -> int:
    """The `itpump` program. ``table``: the command table (default pumpcore.commands.COMMANDS).
    Bare `itpump` prints the help and exits 0 (asking for help is not an error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(argv, table)
        sys.stdout.flush()      # a closed pipe shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_PIPE


def _main(argv: list[str], table: tuple[_commands.Command, ...] | None) -> int:
    parser = build_parser(table)
    try:
        args = parser.parse_args(argv)
    except CliError as e:
        return _fail(e, "--json" in argv)
    args.table = table
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if not hasattr(args, "json"):
        args.json = False
    args.refused_command = getattr(args, "wire_command", None)
    handler = getattr(args, "handler", None)
    try:
        if handler is not None:
            return int(handler(args))
        return _run(args)
    except PumpError as e:
        return _fail(e, args.json, args.refused_command)
    except (ValueError, U.UnitError) as e:  # e.g. a malformed ISO time
        return _fail(CliError(str(e), "bad_value"), args.json)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
