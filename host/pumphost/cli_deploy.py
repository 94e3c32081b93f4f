"""`itpump flash` and `itpump provision`: put the firmware on a Pico and give it its identity
(docs/hardware.md). ``register(subparsers)`` adds both with ``handler=<callable(args) -> exit
code>`` (cli.main calls it); the work is pumphost.deploy's.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path
from typing import Any

from pumpcore.wire import ROLES

from . import deploy
from . import keys as _keys
from . import library_file as _library_file
from .cliargs import positive_float
from .client import PumpClient
from .errors import PumpError

EXIT_OK = 0

FLASH_HELP = "compile the firmware for the RP2040 and copy it to a Pico, verified by sha256"
FLASH_DESC = """\
Compile firmware/pumpcore and firmware/pumpfw with mpy-cross for the RP2040 (armv6m; main.py
stays source), check that the board's MicroPython loads that .mpy ABI (sys.implementation._mpy)
before writing anything, copy the changed files with mpremote and remove stale ones, read back
every file's sha256 on the board, reset it, and wait for the pump's hello to report the build
("<version>+<build id>"). The pump application is stopped while this runs (its watchdog is fed)
and restarts from its persisted state after the reset. --dry-run checks and lists what would be
written, then resets the board without writing."""

PROVISION_HELP = "give a flashed Pico its device id, per-role keys and factory state"
PROVISION_DESC = """\
Generate a device id (or take --device-id) and one random key per role, and write the identity
(with a device key the board makes itself), the security record, the factory state record and
the drug library (--library, default the project's example library) onto the board with the
firmware's own provisioning code (docs/protocol.md, "Lifecycle"); reset it, check its hello
reports the new id and that a signed status works, and store the host key file as
$ITPUMP_HOME/keys/<device id>.json (mode 0600). A board that is already provisioned is left alone
unless --force: re-provisioning replaces its keys and resets it to its factory state (no
program). --rekey gives the --roles of the provisioned board --device-id fresh keys and
counters, keeping its device key and pump state: the way out of a locked pump or an exhausted
counter. USB only: this is the physical channel."""


class DeployUsageError(PumpError):
    reason = "usage"


def _port(args: argparse.Namespace) -> str:
    port = getattr(args, "port", None) or os.environ.get("ITPUMP_PORT")
    if not port:
        raise DeployUsageError("no port: pass --port (e.g. /dev/ttyACM0) or set ITPUMP_PORT")
    return str(port)


def _say(args: argparse.Namespace) -> Any:
    if getattr(args, "json", False):
        return None
    return lambda msg: print(msg, flush=True)


def flash(args: argparse.Namespace) -> int:
    port = _port(args)
    fw_dir = Path(args.firmware) if args.firmware else deploy.FIRMWARE_DIR
    build = deploy.build_firmware(fw_dir)
    say = _say(args)
    if say:
        say(f"build {build.firmware_string}: {len(build.files)} files, "
            f"{sum(len(f.data) for f in build.files)} B")
    plan, hello = deploy.flash(port, build, dry_run=args.dry_run, timeout_s=args.timeout,
                               hello_timeout_s=args.hello_timeout, progress=say)
    result = {"firmware": build.firmware_string, "build_id": build.build_id,
              "write": plan.write, "unchanged": plan.unchanged, "remove": plan.stale,
              "dry_run": args.dry_run, "board": plan.implementation.get("build"),
              "hello": hello}
    if getattr(args, "json", False):
        print(json.dumps(result, sort_keys=True))
    elif args.dry_run:
        print(f"dry run: would write {len(plan.write)} files, remove {len(plan.stale)}, keep "
              f"{len(plan.unchanged)} unchanged")
        for path in plan.write:
            print(f"  write  {path}")
        for path in plan.stale:
            print(f"  remove {path}")
    else:
        print(f"flashed {build.firmware_string}")
    return EXIT_OK


UNPROVISIONED = "unprovisioned"     # the device id a pump without identity reports (pumpfw.app)


def _running_device_id(port: str) -> str | None:
    try:
        with PumpClient.open(port, timeout_s=3.0, retries=1, lookup_keys=False) as c:
            return str(c.hello().get("device_id"))
    except PumpError:
        return None       # no pump application answering (a bare MicroPython, a halted board)


def provision(args: argparse.Namespace) -> int:
    if args.rekey:
        return _rekey(args)
    port = _port(args)
    device_id = args.device_id or "PICO-" + secrets.token_hex(6).upper()
    key_path = _keys.default_key_path(device_id)     # refuses ids that cannot name a file
    keyset = _keys.generate(device_id)
    # checked before the board is touched: a bad library file changes nothing
    library = _library_file.load(args.library) if args.library else _library_file.example()
    say = _say(args)
    if not args.force:
        # a running pump says who it is without being interrupted
        have = _running_device_id(port)
        if have is not None and have != UNPROVISIONED:
            raise DeployUsageError(f"the board is already provisioned as {have}; --force "
                                   "replaces its keys and resets it to its factory state",
                                   "already_provisioned")
    with deploy.board_session(port, args.timeout) as board:
        have = deploy.provisioned_identity(board)
        if have is not None and not args.force:
            raise DeployUsageError(f"the board is already provisioned as {have}; --force "
                                   "replaces its keys and resets it to its factory state",
                                   "already_provisioned")
        deploy.provision_on_board(board, device_id, keyset.hex_keys(), library.record)
        if say:
            say(f"wrote identity {device_id} (device key made on the board), the security "
                f"record, the factory state record and the drug library "
                f"{library.record['name']!r} (version {library.record['version']})")
    return _check_and_save(args, port, keyset, key_path, "provisioned")


def _rekey(args: argparse.Namespace) -> int:
    port = _port(args)
    if not args.device_id:
        raise DeployUsageError("--rekey needs --device-id (itpump version shows it)")
    key_path = _keys.default_key_path(args.device_id)
    old = _keys.load(key_path).keys if key_path.exists() else {}
    fresh = _keys.generate(args.device_id, tuple(args.roles))
    with deploy.board_session(port, args.timeout) as board:
        have = deploy.provisioned_identity(board)
        if have != args.device_id:
            raise DeployUsageError(f"the board is {have or 'not provisioned'}, not "
                                   f"{args.device_id}: nothing changed", "wrong_device")
        deploy.rekey_on_board(board, fresh.hex_keys())
    keyset = _keys.KeySet(args.device_id, {**old, **fresh.keys})
    return _check_and_save(args, port, keyset, key_path, f"re-keyed {', '.join(args.roles)} of")


def _check_and_save(args: argparse.Namespace, port: str, keyset: _keys.KeySet, key_path: Path,
                    done: str) -> int:
    """After the reset: hello must name the device; the host key file is stored; a signed status
    proves the keys."""
    hello = deploy.wait_for_hello(port, args.hello_timeout)
    if hello.get("device_id") != keyset.device_id:
        raise deploy.DeployError(f"after the reset the pump reports device "
                                 f"{hello.get('device_id')!r}, expected {keyset.device_id!r}",
                                 "verify_failed", {"hello": hello})
    path = _keys.save(keyset, key_path, overwrite=True)
    with PumpClient.open(port, keyset=keyset, timeout_s=5.0) as c:
        state = c.status().get("state")
    result = {"device_id": keyset.device_id, "key_file": str(path), "state": state,
              "firmware": hello.get("firmware")}
    if getattr(args, "json", False):
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"{done} {keyset.device_id} (firmware {hello.get('firmware')}, state {state}); "
              f"host keys in {path}")
    return EXIT_OK


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", default=argparse.SUPPRESS, metavar="PORT",
                   help="the board's serial port: /dev/ttyACM0, a pty, socket://HOST:PORT "
                        "(default $ITPUMP_PORT)")
    p.add_argument("--timeout", type=positive_float, default=10.0, metavar="S",
                   help="seconds to wait for the board's REPL at each step (10)")
    p.add_argument("--hello-timeout", type=positive_float, default=60.0, metavar="S",
                   help="seconds to wait for the pump's hello after the reset (60)")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print only a JSON summary")


def register(sub: Any) -> None:
    p = sub.add_parser("flash", help=FLASH_HELP, description=FLASH_DESC,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--dry-run", action="store_true",
                   help="check the board and list what would change; write nothing")
    p.add_argument("--firmware", metavar="DIR",
                   help=f"firmware source folder (default {deploy.FIRMWARE_DIR})")
    p.set_defaults(handler=flash)

    p = sub.add_parser("provision", help=PROVISION_HELP, description=PROVISION_DESC,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--device-id", metavar="ID", help="default PICO-<12 random hex digits>")
    p.add_argument("--force", action="store_true",
                   help="re-provision a provisioned board (new keys, factory state)")
    p.add_argument("--library", metavar="FILE",
                   help="the drug library the factory loads (a library TOML file, "
                        "docs/prescription.md; default: the project's example library)")
    p.add_argument("--rekey", action="store_true",
                   help="re-key roles of the provisioned board --device-id, keeping its state "
                        "(a lost handset, an exhausted counter, a locked pump)")
    p.add_argument("--roles", nargs="+", choices=ROLES, default=list(ROLES),
                   help="roles to re-key (default all)")
    p.set_defaults(handler=provision)

