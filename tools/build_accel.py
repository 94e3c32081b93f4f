"""Compile the emulator's typed plant, virtual board and flash chip with mypyc (pumphil/accel.py).

    python tools/build_accel.py [--force] [--strict]

Writes build/accel/lib/ (extension modules) and build/accel/STAMP (the SHA-256 of the sources they
were built from). Up to date -> does nothing. A failed build (no C compiler, no Python headers)
leaves no stamp and the emulator runs as plain Python with identical results; the exit code is 0
unless --strict. Called by `make setup`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hil"))

from pumphil import accel  # noqa: E402


def _compile(stage: Path) -> list[Path]:
    """mypyc + setuptools build_ext --inplace inside a staging copy of hil/pumphil; returns the
    extension files it produced (relative to stage)."""
    from mypyc.build import mypycify
    from setuptools import setup

    shutil.copytree(ROOT / "hil" / "pumphil", stage / "pumphil",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.mjs", "*.yaml"))
    cwd = os.getcwd()
    os.chdir(stage)
    os.environ["MYPYPATH"] = str(ROOT / "firmware")   # the firmware the board imports (not compiled)
    try:
        ext = mypycify([*accel.ACCEL_MODULES, "--ignore-missing-imports", "--follow-imports=silent",
                        "--python-version", "3.11"], opt_level="3", group_name=accel.GROUP)
        setup(name="pumphil-accel", ext_modules=ext, script_args=[
            "--quiet", "build_ext", "--inplace", "--build-temp", str(stage / "tmp")])
    finally:
        os.chdir(cwd)
    suffixes = (".so", ".pyd")
    return [p.relative_to(stage) for p in stage.rglob("*") if p.suffix in suffixes
            and "tmp" not in p.relative_to(stage).parts and "build" not in p.relative_to(stage).parts]


def build(force: bool = False) -> bool:
    digest = accel.source_digest()
    if not force and accel.STAMP.exists() and accel.STAMP.read_text().strip() == digest:
        accel.STAMP.touch()           # newer than the sources for make
        print("build_accel: up to date (build/accel)")
        return True
    accel.STAMP.unlink(missing_ok=True)
    shutil.rmtree(accel.LIB_DIR, ignore_errors=True)
    stage = accel.BUILD_DIR / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    t = time.perf_counter()
    try:
        built = _compile(stage)
    except (Exception, SystemExit) as exc:  # setuptools reports a compiler failure as SystemExit
        print(f"build_accel: mypyc build failed ({exc!r}); the emulator runs as plain Python")
        return False
    want = {str(Path(m).with_suffix("")) for m in accel.ACCEL_MODULES}
    got = {str(p.parent / p.name.split(".")[0]) for p in built}
    if not want <= got:
        print(f"build_accel: missing extensions {sorted(want - got)}; the emulator runs as plain Python")
        return False
    for rel in built:
        dst = accel.LIB_DIR / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(stage / rel, dst)
    shutil.rmtree(stage, ignore_errors=True)
    accel.STAMP.write_text(digest + "\n")      # last: a half-copied build is never used
    print(f"build_accel: compiled {', '.join(accel.ACCEL_MODULES)} in {time.perf_counter() - t:.0f} s")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="rebuild even when up to date")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the build fails")
    args = ap.parse_args(argv)
    ok = build(args.force)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
