"""Per-device role keys: generation, storage (0600 JSON files), lookup.

File format (``itpump keys generate``)::

    {"format": 1, "device_id": "E6614103E7452D2F",
     "keys": {"clinician": "<64 hex>", "patient": "<64 hex>", "readonly": "<64 hex>"}}

A file may hold a subset of the roles (e.g. a patient's handset gets only the patient key).
Default location: ``$ITPUMP_HOME/keys/<device_id>.json``; ``ITPUMP_HOME`` defaults to
``~/.config/itpump``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from pumpcore.wire import ROLES

from .errors import PumpError

KEY_BYTES = 32


class KeyFileError(PumpError):
    """A key file is missing, unreadable, malformed or too permissive."""

    reason = "key_file"


@dataclass(frozen=True)
class KeySet:
    device_id: str
    keys: dict[str, bytes]

    def roles(self) -> list[str]:
        return [r for r in ROLES if r in self.keys]

    def to_json(self) -> str:
        return json.dumps({"format": 1, "device_id": self.device_id,
                           "keys": {r: self.keys[r].hex() for r in self.roles()}}, indent=2) + "\n"

    def hex_keys(self) -> dict[str, str]:
        return {r: self.keys[r].hex() for r in self.roles()}


def itpump_home() -> Path:
    return Path(os.environ.get("ITPUMP_HOME") or Path.home() / ".config" / "itpump")


def default_key_path(device_id: str) -> Path:
    if not device_id or any(c in device_id for c in "/\\\0") or device_id in (".", ".."):
        raise KeyFileError(f"device id {device_id!r} cannot name a key file")
    return itpump_home() / "keys" / f"{device_id}.json"


def generate(device_id: str, roles: tuple[str, ...] = ROLES) -> KeySet:
    """Fresh random keys (``secrets.token_bytes``), one per role."""
    return KeySet(device_id, {r: secrets.token_bytes(KEY_BYTES) for r in roles})


def save(keyset: KeySet, path: Path, overwrite: bool = False) -> Path:
    """Write the key file with mode 0600 (created that way: never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists (keys are not overwritten; pass --force)") from None
    with os.fdopen(fd, "w") as f:
        f.write(keyset.to_json())
    os.chmod(path, 0o600)
    return path


def load(path: Path) -> KeySet:
    """Read and validate a key file; refuse files readable by group/others."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as e:
        raise KeyFileError(f"{path}: {e.strerror or e}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: permissions {oct(mode & 0o777)} too open (chmod 600)")
    try:
        obj = json.loads(text)
        device_id = obj["device_id"]
        raw = obj["keys"]
        if obj.get("format") != 1 or not isinstance(device_id, str) or not isinstance(raw, dict):
            raise ValueError("format")
        keys = {}
        for role, hexkey in raw.items():
            if role not in ROLES:
                raise ValueError(f"unknown role {role}")
            key = bytes.fromhex(hexkey)
            if not 16 <= len(key) <= 64:
                raise ValueError(f"{role} key length")
            keys[role] = key
    except (ValueError, KeyError, TypeError) as e:
        raise KeyFileError(f"{path}: not an itpump key file ({e})") from None
    return KeySet(device_id, keys)
