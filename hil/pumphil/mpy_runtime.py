"""Bridge to the real MicroPython interpreter on a laptop.

The interpreter is the official WebAssembly build (npm package
``@micropython/micropython-webassembly-pyscript``, pinned in the project's package.json) run by
Node through ``pumphil/mpy/runner.mjs``. It is 32-bit with 31-bit small ints like the Pico's rp2
port, so integer-overflow and allocation behaviour of pumpcore is exercised for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

RUNNER = Path(__file__).resolve().parent / "mpy" / "runner.mjs"
REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_ROOT / "firmware"


class MicroPythonUnavailable(RuntimeError):
    """Node or the pinned npm package is missing (run `make setup`)."""

    reason = "micropython_unavailable"


@dataclass(frozen=True)
class MicroPythonResult:
    returncode: int
    stdout: str
    stderr: str


def node_executable() -> str:
    wanted = os.environ.get("ITPUMP_NODE") or "node"
    node = shutil.which(wanted)
    if not node:
        raise MicroPythonUnavailable(f"{wanted!r} not found: install Node.js >= 18 (or set "
                                     "ITPUMP_NODE to its path)")
    return node


def check_available() -> None:
    """Raise MicroPythonUnavailable with a clear message unless the runtime can start."""
    node_executable()
    package = REPO_ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
    if not package.is_dir():
        raise MicroPythonUnavailable(f"{package} missing: run `make setup` (npm ci)")


def run_micropython(
    script: str | os.PathLike[str],
    args: list[str] | None = None,
    mounts: dict[str | os.PathLike[str], str] | None = None,
    heap_bytes: int = 8 * 1024 * 1024,
    timeout_s: float = 600.0,
    then: list[str] | None = None,
) -> MicroPythonResult:
    """Run SCRIPT under MicroPython. ``mounts`` maps host directories to interpreter paths
    (default: firmware/ at /firmware); each mount is on sys.path. Arguments reach the script as the
    global ``ARGV``. ``then``: code run after the script, each piece as its own top-level call in
    the script's globals; this build's garbage collector frees nothing while Python code runs,
    only between such calls (runner.mjs). Never raises for a failing script: inspect
    ``returncode``/``stderr``."""
    check_available()
    if mounts is None:
        mounts = {FIRMWARE_DIR: "/firmware"}
    cmd = [node_executable(), str(RUNNER), "--heap", str(heap_bytes)]
    for host_dir, mp_dir in mounts.items():
        cmd += ["--mount", f"{Path(host_dir).resolve()}:{mp_dir}"]
    for code in then or ():
        cmd += ["--then", code]
    cmd += [str(script), *(args or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT)
    return MicroPythonResult(proc.returncode, proc.stdout, proc.stderr)
