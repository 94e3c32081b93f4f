"""Run the emulated RP2040 board by hand (docs/hardware.md, "The emulated board"):

    .venv/bin/python -m pumphil.rp2               # firmware flashed and provisioned, plant-wired
    .venv/bin/python -m pumphil.rp2 --blank       # MicroPython only: try `itpump flash` on it

Prints the serial endpoints (socket:// for itpump/PumpClient, a pty for mpremote) and, when
provisioned, the device id and key file (stored where `itpump` looks), then runs at real time until
Ctrl-C. Research/education software, not a medical device.
"""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from pumphost import keys
from pumphost.deploy import build_firmware

from ..plant import Plant
from .image import build_image
from .target import Rp2Board


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pumphil.rp2", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blank", action="store_true",
                    help="erased flash: only MicroPython (as a new Pico), for itpump flash")
    ap.add_argument("--device-id", default="RP2-EMU", metavar="ID",
                    help="device id to provision (default RP2-EMU)")
    ap.add_argument("--speed", type=float, default=1.0, metavar="X",
                    help="virtual time at most X times wall time (default 1)")
    ap.add_argument("--no-plant", action="store_true",
                    help="fixed sensor values and the step output wired to the feedback input")
    ap.add_argument("--seed", type=int, default=0, help="plant noise seed (0)")
    args = ap.parse_args(argv)

    image = None
    key_path = None
    if not args.blank:
        build = build_firmware()
        keyset = keys.generate(args.device_id)
        key_path = keys.save(keyset, keys.default_key_path(args.device_id), overwrite=True)
        image = build_image(build, provision=(args.device_id, keyset.hex_keys()))
    plant = None if args.no_plant else Plant(seed=args.seed)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    with Rp2Board(image, plant=plant, speed=args.speed, wall_timeout_s=30 * 86400) as board:
        print("emulated RP2040: MicroPython v1.28.0 RPI_PICO on rp2040js (not a medical device)")
        print(f"  serial:   {board.serial_url}   (itpump --port ..., PumpClient)")
        print(f"  pty:      {board.open_pty()}   (mpremote connect ..., itpump flash --port ...)")
        if key_path is not None:
            print(f"  device:   {args.device_id}, host keys in {key_path}")
        print(f"  console:  {board.console_path}")
        print("Ctrl-C stops the board.", flush=True)
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
