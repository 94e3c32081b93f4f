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
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from pumpcore import commands as _commands
from pumpcore.wire import ROLES

from . import cli_campaign, cli_emulator, prescription_file
from . import keys as _keys
from .client import PumpClient, wall_clock_of
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
Exit status: 0 ok, 1 refused by the pump, 2 usage, 3 authentication, 4 link/protocol,
5 bad file. On failure one line "error: <reason>: <message>" goes to stderr.
"""


class CliError(PumpError):
    reason = "usage"


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
        d = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not d.is_finite() or d < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text}")
    return d


def _exact(d: Decimal, factor: int, what: str) -> int:
    v = d * factor
    if v != v.to_integral_value():
        raise CliError(f"{what}: too many decimals", "bad_value")
    return int(v)


# Commands of the command table the CLI does not offer as such: `version` says hello, `program`
# stages (in chunks when long) and commits.
HIDDEN = frozenset({_commands.HELLO, _commands.STAGE, _commands.STAGE_CHUNK})


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
        if a.kind == _commands.INT:
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
        if a.kind == _commands.INT:
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
    parser = argparse.ArgumentParser(
        prog="itpump", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(parser, top=True)
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
                           help="new admixture's prescription: staged and reviewed after the "
                                "refill (implies --new-admixture)")
            _commit_options(p)
    p = add("program", "stage a prescription file, show the pump's review, commit with --confirm",
            "Send FILE (TOML, see docs/examples) to the pump, which validates it and answers "
            "with a review:\ndaily dose per drug, soft-limit breaches, changes versus the running "
            "program.\nNothing changes on the pump until you run the same command with "
            "--confirm.")
    p.add_argument("file", metavar="FILE", help="prescription TOML file")
    _commit_options(p)
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
    return parser


def _commit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--confirm", action="store_true", help="commit the reviewed program")
    p.add_argument("--confirm-soft-limit", action="store_true",
                   help="accept a daily dose above a drug's soft limit (never above the hard)")
    p.add_argument("--bridge", action="store_true",
                   help="deliver the bridge bolus the review proposes (drug change)")


def _log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="0", metavar="SEQ|TIME",
                   help="only entries after log sequence number SEQ, or (ISO local time, e.g. "
                        "2026-11-24T08:00) entries stamped at or after that wall-clock time")
    p.add_argument("--format", choices=("csv", "json"), default="csv")


def _set_clock_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("time", nargs="?", metavar="ISO",
                   help="local time as 2026-11-24T08:00[:00] (default now)")


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


def _ug(ng: int) -> str:
    return f"{Decimal(ng) / 1000:f}"


def _val(v: Any) -> str:
    return "None" if v is None else (v if isinstance(v, str) else json.dumps(v))


def format_review(review: dict[str, Any]) -> str:
    """Human text of the pump's review (daily dose per drug, soft breaches, changes)."""
    lines = ["Pump review (nothing changes until --confirm):"]
    daily = review.get("daily_ng") or {}
    if daily:
        lines.append("  daily dose per drug:")
        for drug in sorted(daily):
            v = daily[drug]
            lines.append(f"    {drug}: {_ug(v) if isinstance(v, int) else v} ug/day")
    soft = review.get("soft_breaches") or []
    if soft:
        lines.append("  SOFT LIMIT BREACHES (commit needs --confirm-soft-limit):")
        for s in soft:
            lines.append(f"    {json.dumps(s)}")
    if review.get("bridge"):
        lines.append(f"  bridge bolus proposed (--bridge to deliver): {json.dumps(review['bridge'])}")
    for key in ("changes", "diff"):
        if review.get(key):
            lines.append("  changes versus the current program:")
            ch = review[key]
            items = ch if isinstance(ch, list) else [ch]
            for c in items:
                if isinstance(c, list) and len(c) == 3 and isinstance(c[0], str):
                    # [field, old, new] as the pump reports them (wire units)
                    lines.append(f"    {c[0]}: {_val(c[1])} -> {_val(c[2])}")
                else:
                    lines.append(f"    {json.dumps(c, sort_keys=True)}")
    shown = {"daily_ng", "soft_breaches", "bridge", "changes", "diff", "checksum"}
    for k in sorted(review):
        if k not in shown:
            lines.append(f"  {k}: {json.dumps(review[k], sort_keys=True)}")
    lines.append(f"  checksum: {review.get('checksum')}")
    return "\n".join(lines)


# --- commands -----------------------------------------------------------------------------------
def _client(args: argparse.Namespace) -> PumpClient:
    port = args.port or os.environ.get("ITPUMP_PORT")
    if not port:
        raise CliError("no port: pass --port URL or set ITPUMP_PORT")
    c = PumpClient.open(port, key_file=args.key_file, timeout_s=args.timeout, role=args.role)
    c.table = getattr(args, "table", None)
    return c


def _program(args: argparse.Namespace, client: PumpClient, rx: dict[str, Any]) -> dict[str, Any]:
    review = client.stage(rx)
    result: dict[str, Any] = {"review": review, "committed": False}
    if not args.json:
        print(format_review(review))
    if args.confirm:
        result["commit"] = client.commit(str(review.get("checksum")),
                                         confirm_soft=args.confirm_soft_limit, bridge=args.bridge)
        result["committed"] = True
        if not args.json:
            print("committed.")
    elif not args.json:
        print("not committed: run again with --confirm to commit this program.")
    return result


def _run(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "keys":
        return _keys_cmd(args)
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
    with _client(args) as c:
        if cmd == "program":
            result = _program(args, c, prescription_file.load(args.file))
            if args.json:
                _emit(args, result)
        elif cmd == "monitor":
            _monitor(args, c)
        else:
            name = args.wire_command
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
    _print_log(args, _log_entries(c, args.since))


def _run_set_clock(args: argparse.Namespace, c: PumpClient) -> None:
    moment = _dt.datetime.fromisoformat(args.time) if args.time else _dt.datetime.now()
    _emit(args, c.set_clock_to(moment), f"clock set to {moment.isoformat(' ')}")


def _run_review(args: argparse.Namespace, c: PumpClient) -> None:
    review = c.review()
    _emit(args, review, format_review(review))


def _run_refill(args: argparse.Namespace, c: PumpClient) -> None:
    row = _commands.find(_commands.REFILL, args.table)
    assert row is not None
    wire_args = table_args(row, args)
    new_rx = prescription_file.load(args.prescription) if args.prescription else None
    if new_rx is not None:
        wire_args["new_admixture"] = True
    res: dict[str, Any] = {"refill": c.request(_commands.REFILL, wire_args)}
    if not args.json:
        print(f"refill of {args.fill_ml} mL recorded")
    if new_rx is not None:
        res.update(_program(args, c, new_rx))
    if args.json:
        _emit(args, res)


#: table commands whose CLI is host work: (options, or None for the table's; runner)
_CUSTOM: dict[str, tuple[Callable[[argparse.ArgumentParser], None] | None,
                         Callable[[argparse.Namespace, PumpClient], None]]] = {
    _commands.LOG: (_log_options, _run_log),
    _commands.SET_CLOCK: (_set_clock_options, _run_set_clock),
    _commands.REVIEW: (_no_options, _run_review),
    _commands.REFILL: (None, _run_refill),
}


def _log_entries(c: PumpClient, since: str) -> list[list[Any]]:
    if since.isdigit():
        return c.log_all(int(since))
    try:
        moment = _dt.datetime.fromisoformat(since)
    except ValueError:
        raise CliError(f"--since: not a sequence number or ISO time: {since}") from None
    day, ms = wall_clock_of(moment)
    # entries carry the pump's wall clock as "day"/"ms" (-1 when the clock was not set);
    # entries without it are left out of a time-filtered listing
    return [[s, e] for s, e in c.log_all(0)
            if isinstance(e.get("day"), int) and e["day"] >= 0
            and (e["day"], e.get("ms", 0)) >= (day, ms)]


def _print_log(args: argparse.Namespace, entries: list[list[Any]]) -> None:
    # "log_seq" is the protocol log's sequence number (what --since takes); pump entries carry
    # their own "seq" (the pump's event counter) among their fields.
    if args.json or args.format == "json":
        sys.stdout.write(json.dumps([{"log_seq": s, **e} for s, e in entries], sort_keys=True)
                         + "\n")
        return
    keys: list[str] = []
    for _, e in entries:
        for k in e:
            if k not in keys:
                keys.append(k)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["log_seq", *keys])
    for s, e in entries:
        w.writerow([s, *(json.dumps(e[k]) if isinstance(e.get(k), (dict, list))
                         else e.get(k, "") for k in keys)])


def _monitor(args: argparse.Namespace, c: PumpClient) -> None:
    def show(event: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({"event": event}, sort_keys=True), flush=True)
        else:
            print("event " + json.dumps(event, sort_keys=True), flush=True)

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
                alarms = st.get("alarms") or st.get("active_alarms") or []
                print(f"{_dt.datetime.now():%H:%M:%S} state={st.get('state')} "
                      f"reservoir_nl={st.get('reservoir_nl')} alarms={json.dumps(alarms)}",
                      flush=True)
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
    if isinstance(err, (_keys.KeyFileError, prescription_file.PrescriptionError)):
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


def main(argv: list[str] | None = None,
         table: tuple[_commands.Command, ...] | None = None) -> int:
    """The `itpump` program. ``table``: the command table (default pumpcore.commands.COMMANDS)."""
    parser = build_parser(table)
    args = parser.parse_args(argv)
    args.table = table
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if not hasattr(args, "json"):
        args.json = False
    handler = getattr(args, "handler", None)
    try:
        if handler is not None:
            return int(handler(args))
        return _run(args)
    except PumpError as e:
        if args.json:
            print(json.dumps({"error": e.reason, "message": e.message, "data": e.data},
                             sort_keys=True))
        print(f"error: {e.reason}: {e.message}", file=sys.stderr)
        return exit_code_for(e)
    except ValueError as e:  # e.g. a malformed ISO time
        print(f"error: bad_value: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
