"""The guardian: a separate process that makes a bench safe when the test process dies.

The plugin starts ``python -m pumphil.hil.guard LOG`` for every bench target (a real rig, a
labgrid place) in its own session (so a Ctrl-C on the terminal does not reach it), writes the rig
as one JSON line on its stdin and keeps the pipe open. When the test process ends normally it
writes ``release`` first (teardown has already made the rig safe). When the pipe closes without
it (the test process was killed: SIGKILL, pytest-timeout's thread method calling os._exit, a
crash), the guardian opens the instruments and the pump itself and applies the safe state
(pumphil.hil.safestate: supply as configured, infusion stopped, valves open, phantom at
baseline), then exits. What it did goes to LOG.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from .config import RigConfig, parse


def _config_doc(cfg: RigConfig) -> dict[str, Any]:
    doc = cfg.to_toml_dict()
    doc["name"] = cfg.name
    return doc


class Guardian:
    """The test process's end of the pipe."""

    def __init__(self, cfg: RigConfig, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "pumphil.hil.guard", str(log)],
                                     stdin=subprocess.PIPE, start_new_session=True, text=True)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(_config_doc(cfg)) + "\n")
        self.proc.stdin.flush()

    def release(self, timeout_s: float = 10.0) -> None:
        stdin = self.proc.stdin
        if stdin is not None:
            try:
                stdin.write("release\n")
                stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def watch(stdin: IO[str], log: IO[str]) -> int:
    cfg = parse(json.loads(stdin.readline()), "<guardian>")
    log.write(f"{time.strftime('%H:%M:%S')} guarding {cfg.name} ({cfg.pump_url})\n")
    log.flush()
    released = False
    for line in stdin:
        if line.strip() == "release":
            released = True
    if released:
        log.write(f"{time.strftime('%H:%M:%S')} released by the test process\n")
        return 0
    log.write(f"{time.strftime('%H:%M:%S')} test process gone: making the rig safe\n")
    log.flush()
    from .safestate import make_safe
    res = make_safe(cfg)
    for d in res.done:
        log.write(f"  done: {d}\n")
    for f in res.failed:
        log.write(f"  FAILED: {f}\n")
    log.write("safe\n" if res.ok else "NOT SAFE\n")
    return 0 if res.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with open(args[0], "a", encoding="utf-8") as log:
        return watch(sys.stdin, log)


if __name__ == "__main__":
    raise SystemExit(main())
