"""The compiled emulator (pumphil/accel.py: mypyc build of the plant, virtual board and flash chip)
gives exactly what the plain-Python sources give, and is used only when it matches them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pumphil import accel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"

needs_build = pytest.mark.skipif(
    not accel.enabled, reason="no current mypyc build in build/accel (make setup builds it)")

# Runs a scenario in a fresh interpreter and prints which build ran, the JSON report and a digest
# of everything recorded on the way (every status sample, the pump log without the host's random
# request ids, the pressure windows).
_RUN = """
import hashlib, json, sys
from pumphil import accel, report, scenario, simulate
import pumphil.board, pumphil.flash, pumphil.plant.model
rec = simulate.run(scenario.load(sys.argv[1]))
files = [m.__file__ for m in (pumphil.board, pumphil.flash, pumphil.plant.model)]
log = [{k: v for k, v in e.items() if k != "id"} for e in rec.log]
digest = hashlib.sha256(repr((rec.samples, log, rec.pressure)).encode()).hexdigest()
print(json.dumps({"enabled": accel.enabled, "files": files, "digest": digest,
                  "report": report.build_report(rec)}))
"""


def _simulate(scenario: Path, accel_on: bool) -> dict:
    env = dict(os.environ, ITPUMP_ACCEL="1" if accel_on else "0")
    out = subprocess.run([sys.executable, "-c", _RUN, str(scenario)], env=env, check=True,
                         capture_output=True, text=True, timeout=240).stdout
    return json.loads(out)


@needs_build
@pytest.mark.parametrize("name", ["faults.toml", "occlusion.toml"])
def test_compiled_emulator_gives_the_same_simulation_as_the_sources(name: str) -> None:
    # faults: a leak, battery levels, a power cut (board reset, flash remount) and a motor stall;
    # occlusion: partial and complete occlusions with the pressure windows around them
    compiled = _simulate(EXAMPLES / name, True)
    plain = _simulate(EXAMPLES / name, False)
    assert compiled["enabled"] is True and plain["enabled"] is False
    assert all(f.endswith((".so", ".pyd")) for f in compiled["files"])
    assert all(f.endswith(".py") for f in plain["files"])
    assert compiled["report"]["delivered_ul"] > 0
    assert compiled["report"] == plain["report"]
    assert compiled["digest"] == plain["digest"]


def test_a_stale_or_missing_build_is_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "STAMP", tmp_path / "STAMP")
    assert not accel._usable()                       # no build at all
    (tmp_path / "STAMP").write_text(accel.source_digest() + "\n")
    assert accel._usable()                           # built from exactly these sources
    monkeypatch.setenv("ITPUMP_ACCEL", "0")
    assert not accel._usable()                       # forced off
    monkeypatch.delenv("ITPUMP_ACCEL")
    (tmp_path / "STAMP").write_text("0" * 64 + "\n")
    assert not accel._usable()                       # built from other sources (an edit since)


def test_the_source_digest_follows_every_compiled_module(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    base = accel.source_digest()
    fake = tmp_path / "pumphil"
    for rel in accel.ACCEL_MODULES:
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((accel.PACKAGE_DIR.parent / rel).read_bytes())
    monkeypatch.setattr(accel, "PACKAGE_DIR", fake)
    assert accel.source_digest() == base
    for rel in accel.ACCEL_MODULES:
        f = tmp_path / rel
        original = f.read_bytes()
        f.write_bytes(original + b"\n# edited\n")
        assert accel.source_digest() != base, rel
        f.write_bytes(original)
