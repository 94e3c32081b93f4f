"""Provision or re-key a Raspberry Pi Pico running itpump over USB (the physical channel,
docs/protocol.md "Lifecycle"), with mpremote. The host key file goes to
$ITPUMP_HOME/keys/<device_id>.json (0600) so `itpump --port /dev/ttyACM0 status` finds it.

    python tools/provision_pico.py --port /dev/ttyACM0 [--device-id ID]
    python tools/provision_pico.py --port /dev/ttyACM0 --rekey [--roles patient ...]

Factory provisioning (once per board, after `make flash`): a device key, the security record for
new role keys (fresh key ids, counters zero), the factory state record and the drug library
record (--library FILE, default the example library) are prepared by the firmware's own
pumpfw.storage.provision on the host and copied onto the board; old v1 files
(keys.json, auth.json) are removed. The pump's program and logs are reset to factory state.

Re-keying (--rekey): new keys for the given roles (default all), applied ON the board by
pumpfw.storage.rekey, which keeps the device key and the pump state: the way out of a locked pump
(damaged security record: every role must be re-keyed) or an exhausted counter.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))

from pumpcore.wire import ROLES  # noqa: E402
from pumpfw.storage import provision  # noqa: E402  (the firmware's own record format)
from pumphost import keys as host_keys  # noqa: E402
from pumphost import library_file  # noqa: E402


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


REMOVE_V1 = ("import os\nfor f in ('keys.json', 'auth.json'):\n    try:\n        os.remove(f)\n"
             "    except OSError:\n        pass\n")


def mpremote(port: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args], check=True)


def factory(port: str, device_id: str, library: str | None = None) -> host_keys.KeySet:
    keyset = host_keys.generate(device_id)
    lib = library_file.load(library) if library else library_file.example()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        provision(DirFs(root), device_id, keyset.hex_keys(), library=lib.record)
        cmd = ["exec", REMOVE_V1, "+"]
        for name in sorted(p.name for p in root.iterdir()):
            cmd += ["cp", str(root / name), ":" + name, "+"]
        mpremote(port, *cmd, "reset")
    return keyset


def rekey(port: str, device_id: str, roles: list[str]) -> host_keys.KeySet:
    path = host_keys.default_key_path(device_id)
    old = host_keys.load(path).keys if path.exists() else {}
    fresh = host_keys.generate(device_id, tuple(roles))
    code = ("from pumpfw.hal_rp2 import OsFs\nfrom pumpfw.storage import rekey\n"
            f"print(rekey(OsFs(), {json.dumps(fresh.hex_keys())}))\n")
    mpremote(port, "exec", code, "+", "reset")
    return host_keys.KeySet(device_id, {**old, **fresh.keys})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", required=True, help="the Pico's serial device, e.g. /dev/ttyACM0")
    ap.add_argument("--device-id", default=None,
                    help="default: PICO-<random hex> (with --rekey: the pump's device id)")
    ap.add_argument("--rekey", action="store_true", help="re-key roles, keep the pump state")
    ap.add_argument("--roles", nargs="+", choices=ROLES, default=list(ROLES))
    ap.add_argument("--library", metavar="FILE",
                    help="the drug library to provision (default: the example library, NOT "
                         "clinical guidance; replace it later with `itpump library push`)")
    args = ap.parse_args()
    if args.rekey:
        if not args.device_id:
            ap.error("--rekey needs --device-id (itpump version shows it)")
        keyset = rekey(args.port, args.device_id, args.roles)
    else:
        keyset = factory(args.port, args.device_id or "PICO-" + secrets.token_hex(6).upper(),
                         args.library)
    path = host_keys.save(keyset, host_keys.default_key_path(keyset.device_id), overwrite=True)
    print(f"{'re-keyed' if args.rekey else 'provisioned'} {keyset.device_id} "
          f"({', '.join(args.roles if args.rekey else ROLES)}); host keys in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
