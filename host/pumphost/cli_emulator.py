"""Hook for the `itpump emulate` and `itpump simulate` subcommands.

STUB owned by the protocol/CLI helper until the emulator owner replaces this file. Contract:
``register(subparsers)`` adds the subcommands and sets ``handler=<callable(args) -> exit code>``
on each (cli.main calls it). pumphil must be imported lazily inside the handlers, never at module
import time (tests/test_layering.py: nothing imports pumphil except tests and these commands).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _not_yet(args: argparse.Namespace) -> int:
    print(f"error: not_available: `itpump {args.command}` is not yet available", file=sys.stderr)
    return 2


def register(sub: Any) -> None:
    for name, text in (("emulate", "run the pump emulator (virtual rig) on a TCP port"),
                       ("simulate", "simulate a therapy scenario faster than real time")):
        p = sub.add_parser(name, help=text, description=text + " (not yet available)")
        p.set_defaults(handler=_not_yet)
