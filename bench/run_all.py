"""`make bench`: every benchmark script in bench/ (bench_*.py), one after another, figures printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        if rc != 0:
            failed.append(script.name)
        print(flush=True)
    if failed:
        print("benchmarks that failed:", ", ".join(failed))
        sys.exit(1)
