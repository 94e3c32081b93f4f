"""The emulated rig served like a bench: the emulator in wall-clock time x ``speed``, its virtual
instruments on loopback TCP, the pump's serial port as RFC 2217 (pumphil.hil.rfc2217). What
``make hil-farm`` exports through labgrid, and what the suite's own tests drive as a "real" rig
(``--rig rig.toml`` with ``time_scale = speed``).

    python -m pumphil.hil.served --speed 60 --rig-file build/rig.toml \
        [--exporter-config F --place NAME]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import tomli_w

from .config import RigConfig, SafeState, virtual_instruments
from .rfc2217 import Rfc2217Server


class ServedRig:
    def __init__(self, speed: float = 60.0, seed: int = 0, state_dir: Path | None = None) -> None:
        from ..emulator import Emulator
        self.speed = speed
        self.emu = Emulator(state_dir=state_dir, seed=seed, speed=speed)
        self.instruments: Any = None
        self.rfc2217: Rfc2217Server | None = None

    def start(self) -> ServedRig:
        from ..instruments import VirtualRig
        self.emu.start()
        self.instruments = VirtualRig(self.emu.plant, seed=self.emu.seed, lock=self.emu.lock,
                                      balance_noise_mg=0.015, balance_evaporation_mg_per_h=0.05,
                                      balance_container_g=10.0).start()
        self.rfc2217 = Rfc2217Server(self.emu.serial_url).start()
        return self

    def close(self) -> None:
        if self.rfc2217 is not None:
            self.rfc2217.close()
        if self.instruments is not None:
            self.instruments.close()
        self.emu.close()

    def __enter__(self) -> ServedRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def config(self, key_file: bool = True) -> RigConfig:
        assert self.rfc2217 is not None, "start() first"
        res = self.instruments.resources
        return RigConfig(
            name=f"served emulated rig (x{self.speed:g})", pump_url=self.rfc2217.url,
            key_file=self.emu.key_file if key_file else None,
            instruments=virtual_instruments(res),
            safe_state=SafeState(), time_scale=self.speed)

    def write_rig_file(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(self.config().to_toml_dict()))
        return path

    def exporter_config(self, place: str) -> str:
        """A labgrid exporter configuration exporting this rig as group ``place``: the pump's
        port as a NetworkSerialPort (RFC 2217), each instrument as a PyVISADevice named by its
        role (the supply is the power resource; docs/hil.md)."""
        assert self.rfc2217 is not None
        lines = [f"{place}:", "  NetworkSerialPort:", f"    host: {self.rfc2217.host}",
                 f"    port: {self.rfc2217.port}", "    protocol: rfc2217", "    speed: 115200"]
        for role, res in self.instruments.resources.items():
            kind, rest = res.split("::", 1)
            lines += [f"  {role}:", "    cls: PyVISADevice", f"    type: {kind}",
                      f"    url: '{rest}'", "    backend: '@py'"]
        return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pumphil.hil.served", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--state-dir", type=Path)
    ap.add_argument("--rig-file", type=Path, required=True)
    ap.add_argument("--exporter-config", type=Path)
    ap.add_argument("--place", default="itpump-emu")
    args = ap.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    with ServedRig(args.speed, args.seed, args.state_dir) as rig:
        rig.write_rig_file(args.rig_file)
        if args.exporter_config:
            args.exporter_config.write_text(rig.exporter_config(args.place))
        print(f"pump {rig.config().pump_url}  keys {rig.emu.key_file}", flush=True)
        for role, res in rig.instruments.resources.items():
            print(f"{role} {res}", flush=True)
        print(f"rig file {args.rig_file}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
