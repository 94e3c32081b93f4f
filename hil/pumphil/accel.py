"""Optional compiled emulator: the typed plant, virtual board and flash chip built with mypyc.

Decision (issue 4, the 3-s month): the emulator side, which is typed host code, may run compiled;
the firmware never does (the virtual board runs the unchanged firmware/ sources, interpreted, as
the Pico interprets them). ``make setup`` runs ``tools/build_accel.py``, which compiles
ACCEL_MODULES with mypyc (it ships with the pinned mypy) into build/accel/ and writes the SHA-256
of their sources to build/accel/STAMP. Without a C compiler the build is skipped and everything
runs as plain Python; the results are identical either way (tests/emulator/test_accel.py).

The compiled modules are used only when the stamp matches the sources on disk, so an edited
model.py is never shadowed by a stale build; ``ITPUMP_ACCEL=0`` forces plain Python. Who calls
this: pumphil/__init__.py and pumphil/plant/__init__.py, once, before their submodules load.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent          # hil/pumphil
ROOT = PACKAGE_DIR.parents[1]                           # the repository (editable install)
BUILD_DIR = ROOT / "build" / "accel"
LIB_DIR = BUILD_DIR / "lib"                             # pumphil/... extension modules + shared lib
STAMP = BUILD_DIR / "STAMP"
# compiled modules, relative to hil/ (typed, hot in a simulation; params stays a plain dataclass)
ACCEL_MODULES = ("pumphil/plant/model.py", "pumphil/board.py", "pumphil/flash.py")
GROUP = "pumphil_accel"      # mypyc's shared runtime library: build/accel/lib/pumphil_accel__mypyc.*


def source_digest() -> str:
    """SHA-256 over the compiled modules' sources (path and content) and the Python ABI."""
    h = hashlib.sha256(sys.implementation.cache_tag.encode())
    for rel in ACCEL_MODULES:
        h.update(rel.encode() + b"\0")
        h.update((PACKAGE_DIR.parent / rel).read_bytes())
    return h.hexdigest()


def _usable() -> bool:
    if os.environ.get("ITPUMP_ACCEL", "1") == "0":
        return False
    try:
        return STAMP.read_text().strip() == source_digest()
    except OSError:
        return False


# None until decided; then True when the compiled modules are on the package paths
enabled: bool | None = None


def _load_runtime() -> bool:
    """Load the build's shared runtime library (a top-level module the compiled modules import
    by name) from its file. Decision: LIB_DIR itself is NOT put on sys.path, because it holds a
    pumphil/ directory: a child process that inherits sys.path (multiprocessing spawn, Dask
    worker processes) would import that as the pumphil namespace package before the installed
    one. False when the library is missing."""
    import importlib.machinery
    import importlib.util

    name = GROUP + "__mypyc"
    if name in sys.modules:
        return True
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = LIB_DIR / (name + suffix)
        if path.exists():
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                return False
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            return True
    return False


def install(package_path: list[str], subdir: str) -> bool:
    """Put build/accel/lib/<subdir> in front of a package's __path__ when the build is current.
    subdir: "pumphil" or "pumphil/plant". Returns whether the compiled modules will be used."""
    global enabled
    if enabled is None:
        enabled = _usable() and _load_runtime()
    if enabled:
        d = str(LIB_DIR / subdir)
        if d not in package_path:
            package_path.insert(0, d)
    return enabled


def describe() -> str:
    """One line for benchmarks and `itpump emulate`: which emulator build runs."""
    if enabled:
        return "compiled with mypyc (build/accel)"
    if os.environ.get("ITPUMP_ACCEL", "1") == "0":
        return "plain Python (ITPUMP_ACCEL=0)"
    return "plain Python (no current build in build/accel: make setup)"
