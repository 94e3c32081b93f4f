"""Flash images for the emulated RP2040: the rp2 port's littlefs region (base 0xA0000, 352 blocks
of 4 KiB) holding the firmware as `itpump flash` deploys it, optionally provisioned, and reading
back what the board wrote.

The geometry is pumphil.flash's (the same as the Pico's filesystem); the build is pumphost.deploy's
(one build, one build id)."""

from __future__ import annotations

from pathlib import Path

from pumphost.deploy import BUILD_FILE, FirmwareBuild

from ..board import FIRMWARE_DIR  # noqa: F401  (importing it puts firmware/ on sys.path)
from ..flash import Flash


def _makedirs(fl: Flash, path: str) -> None:
    parts = [p for p in path.split("/")[:-1] if p]
    for i in range(len(parts)):
        d = "/" + "/".join(parts[:i + 1])
        try:
            fl.stat(d)
        except OSError:
            fl.lfs.mkdir(d)


def build_image(build: FirmwareBuild | None = None, files: dict[str, bytes] | None = None,
                provision: tuple[str, dict[str, str]] | None = None) -> bytes:
    """The filesystem region's bytes: the build's files and its /build.txt (as a verified
    `itpump flash` leaves them), extra ``files`` by device path, and with ``provision`` =
    (device_id, keys_hex) the factory records written by the firmware's own provisioning code."""
    fl = Flash(None)
    out = dict(files or {})
    if build is not None:
        for f in build.files:
            out[f.path] = f.data
        out[BUILD_FILE] = build.build_id.encode()
    for path, data in sorted(out.items()):
        _makedirs(fl, path)
        with fl.open(path, "wb") as fh:
            fh.write(data)
    if provision is not None:
        from pumpfw.storage import provision as fw_provision

        fw_provision(fl, provision[0], provision[1])
    return bytes(fl.lfs.context.buffer)


def read_image(path: Path) -> Flash:
    """The littlefs of a filesystem dump (Rp2Board.dump_flash), mounted read/write in memory."""
    return Flash(path)
