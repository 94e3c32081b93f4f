"""Serve the virtual instruments alone (no virtual board) for trying drivers or pyvisa by hand.

    python -m pumphil.instruments [--seed N] [--stroke-every S] [--duration S]

Plant time follows the wall clock; ``--stroke-every`` makes a stroke every S seconds so the balance
and the supply's current have something to show. Prints one ``role VISA-resource`` line per
instrument, then runs until Ctrl-C (or ``--duration`` seconds).
"""

from __future__ import annotations

import argparse
import sys
import time

from ..plant import Plant
from .rig import VirtualRig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pumphil.instruments", description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stroke-every", type=float, default=0.0, metavar="S")
    ap.add_argument("--duration", type=float, default=0.0, metavar="S")
    args = ap.parse_args(argv)
    plant = Plant(args.seed)
    with VirtualRig(plant, seed=args.seed) as rig:
        for role, res in rig.resources.items():
            print(role, res)
        sys.stdout.flush()
        start = time.monotonic()
        next_stroke = args.stroke_every
        try:
            while True:
                elapsed = time.monotonic() - start
                if args.duration and elapsed >= args.duration:
                    break
                if args.stroke_every and elapsed >= next_stroke:
                    plant.stroke(max(plant.now_ms, int(next_stroke * 1000)))
                    next_stroke += args.stroke_every
                plant.advance_to(max(plant.now_ms, int(elapsed * 1000)))
                time.sleep(0.01)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
