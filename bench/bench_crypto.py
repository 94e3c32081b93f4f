"""The protocol's crypto cost, and why it is HMAC-SHA256 and not an AEAD (docs/protocol.md,
"Choice of construction"): under the real MicroPython interpreter (the WebAssembly build on Node,
as tests/test_core_on_micropython.py runs it), the firmware's HMAC-SHA256 against a pure-Python
ChaCha20-Poly1305 (RFC 8439, checked against its test vector before timing) per frame, and one
authenticated request through the dispatcher; the same on CPython. Prints figures; asserts
nothing. The ratio is what carries over to a Pico (both run on the same interpreter there: C
sha256, Python everything else)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))

from proto_helpers import Signer, make  # noqa: E402
from pumpcore import auth  # noqa: E402
from pumphil.mpy_runtime import run_micropython  # noqa: E402


def micropython_figures() -> None:
    res = run_micropython(ROOT / "bench" / "mp_crypto_bench.py",
                          mounts={ROOT / "firmware": "/firmware",
                                  ROOT / "tests" / "core": "/tests/core"})
    if res.returncode != 0:
        print("MicroPython benchmark failed:", res.stderr[-500:])
        return
    fig = dict(line.split(" ", 1) for line in res.stdout.split("\n") if " " in line)
    print("MicroPython 1.27 (WebAssembly on Node), per frame:")
    for size in (100, 400, 2000):
        h, a = int(fig[f"hmac_us_{size}"]), int(fig[f"aead_us_{size}"])
        print(f"  {size:5d} bytes: HMAC-SHA256 tag {h:6d} us   ChaCha20-Poly1305 seal {a:7d} us"
              f"   ({a / max(h, 1):.0f}x)")
    print(f"  one authenticated status request through the dispatcher: "
          f"{int(fig['request_us'])} us (parse, verify, execute, tagged reply)")


def cpython_figures() -> None:
    mac = auth._Mac(bytes(range(32)))
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        mac.tag(b"x" * 400)
    dt = time.perf_counter() - t0
    d, _, _ = make()
    s = Signer()
    lines = [s.line("status", role="readonly") for _ in range(2000)]
    t1 = time.perf_counter()
    for ln in lines:
        d.handle_line(ln)
    dt1 = time.perf_counter() - t1
    print(f"CPython {sys.version.split()[0]}: firmware HMAC tag of 400 bytes {dt / n * 1e6:.1f} us;"
          f" an authenticated status request {dt1 / len(lines) * 1e6:.0f} us")


if __name__ == "__main__":
    micropython_figures()
    cpython_figures()
