"""Key files: random per-role keys, 0600, refusal of permissive or malformed files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from pumphost import keys


def test_generate_save_load(itpump_home: Path) -> None:
    ks = keys.generate("DEV1")
    assert ks.roles() == ["clinician", "patient", "readonly"]
    assert len({ks.keys[r] for r in ks.roles()}) == 3
    assert all(len(k) == 32 for k in ks.keys.values())
    path = keys.save(ks, keys.default_key_path("DEV1"))
    assert path == itpump_home / "keys" / "DEV1.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.load(path) == ks
    with pytest.raises(keys.KeyFileError):
        keys.save(keys.generate("DEV1"), path)           # never overwritten silently
    keys.save(keys.generate("DEV1"), path, overwrite=True)
    assert keys.load(path) != ks


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ITPUMP_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keys.default_key_path("X") == tmp_path / ".config" / "itpump" / "keys" / "X.json"
    for bad in ["", "../x", "a/b", ".."]:
        with pytest.raises(keys.KeyFileError):
            keys.default_key_path(bad)


def test_load_refuses_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "k.json"
    keys.save(keys.generate("D"), p)
    os.chmod(p, 0o644)
    with pytest.raises(keys.KeyFileError) as ei:
        keys.load(p)
    assert "too open" in str(ei.value)
    os.chmod(p, 0o600)
    for content in ["{", json.dumps({"format": 1, "device_id": "D", "keys": {"admin": "00" * 32}}),
                    json.dumps({"format": 1, "device_id": "D", "keys": {"patient": "0" * 10}}),
                    json.dumps({"format": 2, "device_id": "D", "keys": {}}),
                    json.dumps({"format": 1, "keys": {}})]:
        p.write_text(content)
        with pytest.raises(keys.KeyFileError):
            keys.load(p)
    with pytest.raises(keys.KeyFileError):
        keys.load(tmp_path / "missing.json")
