"""Protocol round-trip latency: PumpClient -> TCP -> Dispatcher + Pump -> reply.

Prints the median and p99 of N round trips for `hello` (no authentication), an authenticated
`status` (read) and `set_clock` (state-changing: the counter is persisted before it runs), against
the emulator (the unchanged firmware on the virtual board: flash writes through littlefs
included) and against the bare dispatcher + Pump behind the in-process TCP server of
tests/host/pump_server.py (protocol cost alone). ITPUMP_BENCH_URL=socket://... with
ITPUMP_BENCH_KEYS=<key file> measures any other pump (a real Pico on /dev/ttyACM0 too).

Run: .venv/bin/python bench/bench_protocol.py [N]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "host"))


def _measure(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def _report(name: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:<28} n={len(ms):5d}  median {statistics.median(ms):7.3f} ms  "
          f"p99 {p99:7.3f} ms  max {ms[-1]:7.3f} ms")


def _run(url: str, keyset: object, target: str, n: int) -> None:
    from pumphost.client import PumpClient
    from pumphost.errors import PumpError

    print(f"protocol round trips against {target}")
    with PumpClient.open(url, keyset=keyset, timeout_s=2.0) as c:  # type: ignore[arg-type]
        c.hello()
        _report("hello (nonce, verified)", _measure(c.hello, n))
        _report("status (readonly, HMAC)", _measure(lambda: c.status(role="readonly"), n))

        refusals: list[str] = []

        def write() -> None:
            try:
                c.set_clock(9824, 8 * 3600000)
            except PumpError as e:  # a refusal is still a full round trip
                refusals.append(e.reason)
        _report("set_clock (clinician, persisted)", _measure(write, n))
        print(f"resends: {c.resends}; refusals: {sorted(set(refusals)) or 'none'}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    from pumphost import keys

    url = os.environ.get("ITPUMP_BENCH_URL")
    if url:
        _run(url, keys.load(Path(os.environ["ITPUMP_BENCH_KEYS"])), url, n)
        return
    with tempfile.TemporaryDirectory() as home:
        os.environ["ITPUMP_HOME"] = home
        from pumphil.emulator import Emulator
        with Emulator() as emu:
            _run(emu.serial_url, keys.load(emu.key_file),
                 f"the emulator ({emu.serial_url}, firmware on the virtual board)", n)
    from pump_server import INFO, PumpServer, core_library
    from pumpcore.pump import Pump
    keyset = keys.generate(INFO["device_id"])
    pump = Pump(library=core_library())
    pump.boot()
    server = PumpServer(keyset, pump=pump)
    _run(server.url, keyset, f"in-process TCP server ({server.url}, dispatcher + Pump only)", n)
    server.close()


if __name__ == "__main__":
    main()
