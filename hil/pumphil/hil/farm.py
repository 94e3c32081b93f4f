"""A labgrid farm on this machine: a real ``labgrid-coordinator`` and ``labgrid-exporter`` on
127.0.0.1 exporting the emulated rig (pumphil.hil.served) as the place ``itpump-emu``.

    make hil-farm            # python -m pumphil.hil.farm; Ctrl-C stops everything
    pytest tests/hil --rig labgrid://127.0.0.1:20408/itpump-emu     # in another terminal

The test suite starts the same farm on free ports (tests/hil/test_labgrid.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .labgridplace import client
from .served import ServedRig


def _bin(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(exe).exists():
        raise RuntimeError(f"{name} not found (pip install labgrid)")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"labgrid-coordinator exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"labgrid-coordinator not listening on {port}: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def farm(workdir: Path, speed: float = 60.0, port: int | None = None, place: str = "itpump-emu",
         seed: int = 0, timeout_s: float = 30.0) -> Iterator[tuple[str, ServedRig]]:
    """Yields (coordinator address, the served rig) with the place created, matched to the
    exporter's group and tagged with the rig's time scale; everything stops on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    coord = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "LG_COORDINATOR": coord}
    with ServedRig(speed=speed, seed=seed, state_dir=workdir / "emulator") as rig:
        try:
            clog = workdir / "coordinator.log"
            procs.append(subprocess.Popen([_bin("labgrid-coordinator"), "-l", coord],
                                          cwd=workdir, env=env, stdout=clog.open("wb"),
                                          stderr=subprocess.STDOUT))
            _wait_port(port, procs[0], clog, timeout_s)
            cfg = workdir / "exporter.yaml"
            cfg.write_text(rig.exporter_config(place))
            elog = workdir / "exporter.log"
            procs.append(subprocess.Popen(
                [_bin("labgrid-exporter"), "-c", coord, "--name", "itpump-farm", str(cfg)],
                cwd=workdir, env=env, stdout=elog.open("wb"), stderr=subprocess.STDOUT))
            client(coord, place, "create")
            client(coord, place, "add-match", f"itpump-farm/{place}/*")
            client(coord, place, "set-tags", f"time_scale={speed:g}")
            deadline = time.monotonic() + timeout_s
            while "NetworkSerialPort" not in client(coord, place, "show"):
                if procs[1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the exporter's resources never reached the place: "
                                       f"{elog.read_text()[-2000:]}")
                time.sleep(0.2)
            yield coord, rig
        finally:
            for p in reversed(procs):
                _stop(p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pumphil.hil.farm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=20408)
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--dir", type=Path, default=Path("build/hil-farm"))
    args = ap.parse_args(argv)
    with farm(args.dir, args.speed, args.port) as (coord, rig):
        print(f"coordinator {coord}; place itpump-emu (the emulated rig at x{args.speed:g}); "
              f"logs in {args.dir}", flush=True)
        print(f"  pytest tests/hil --rig labgrid://{coord}/itpump-emu", flush=True)
        print(f"  ITPUMP_HOME={os.environ.get('ITPUMP_HOME', '~/.config/itpump')} holds the "
              f"pump's keys ({rig.emu.key_file.name})", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
