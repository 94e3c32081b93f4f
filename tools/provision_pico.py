"""Provision a Raspberry Pi Pico running itpump: device identity, per-role keys and the factory
state records, written to the board's flash with mpremote. The host key file goes to
$ITPUMP_HOME/keys/<device_id>.json (0600) so `itpump --port /dev/ttyACM0 status` finds it.

    python tools/provision_pico.py --port /dev/ttyACM0 [--device-id ID]

Run it once per board, after `make flash`. Re-provisioning replaces the keys and resets the pump
to its factory state (its program and logs are kept on the host side only).
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))

from pumpfw.storage import provision  # noqa: E402  (the firmware's own record format)
from pumphost import keys as host_keys  # noqa: E402


class DirFs:
    """A local directory with the os-like surface the firmware's storage uses."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def open(self, path: str, mode: str):  # noqa: ANN201
        return open(self._p(path), mode)

    def rename(self, src: str, dst: str) -> None:
        self._p(src).replace(self._p(dst))

    def remove(self, path: str) -> None:
        self._p(path).unlink()

    def stat(self, path: str) -> tuple[int, ...]:
        st = self._p(path).stat()
        return (st.st_mode, 0, 0, 0, 0, 0, st.st_size, 0, 0, 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", required=True, help="the Pico's serial device, e.g. /dev/ttyACM0")
    ap.add_argument("--device-id", default=None, help="default: PICO-<random hex>")
    args = ap.parse_args()
    device_id = args.device_id or "PICO-" + secrets.token_hex(6).upper()
    keyset = host_keys.generate(device_id)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        provision(DirFs(root), device_id, keyset.hex_keys())
        files = sorted(p.name for p in root.iterdir())
        cmd = [sys.executable, "-m", "mpremote", "connect", args.port]
        for name in files:
            cmd += ["cp", str(root / name), ":" + name, "+"]
        cmd += ["reset"]
        subprocess.run(cmd, check=True)
    path = host_keys.save(keyset, host_keys.default_key_path(device_id), overwrite=True)
    print(f"provisioned {device_id}; host keys in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
