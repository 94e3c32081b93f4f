"""`itpump flash` and `itpump provision` against the real rp2 port: a board with an erased flash
(only MicroPython, as a new Pico) gets the firmware, verified, then its identity and keys: a dry
run, a build the board cannot load, a flash whose read-back catches a corrupted file, the flash
that repairs it, provisioning, and a refused re-provisioning.

One board for the module; the tests run in file order and each leaves it as the next expects.
mpremote opens the board through a pty (tests also use socket://: both work, the pty is faster
because mpremote polls other ports with 10-ms sleeps)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from pumphil.rp2.target import Rp2Board
from pumphost import deploy, keys
from pumphost.client import PumpClient
from pumphost.deploy import BUILD_FILE, FirmwareBuild
from pumphost.errors import PumpError
from rp2_helpers import itpump

# one board, tests in file order: the whole module on one pytest-xdist worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("rp2-deploy")


@pytest.fixture(scope="module")
def board() -> Iterator[Rp2Board]:
    with Rp2Board(None, speed=1.0) as b:   # erased flash: the rp2 port formats it at boot
        b.wait_usb()
        yield b


def _files_on(board: Rp2Board) -> dict[str, bytes]:
    fl = board.dump_flash()
    out = {}
    for root, _dirs, files in fl.lfs.walk("/"):
        for name in files:
            path = f"{root.rstrip('/')}/{name}"
            with fl.open(path, "rb") as f:
                out[path] = f.read()
    return out


def test_dry_run_checks_the_board_and_writes_nothing(board: Rp2Board, fw_build: FirmwareBuild) -> None:
    pty = board.open_pty()
    r = itpump("flash", "--port", pty, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["board"] == "RPI_PICO" and out["dry_run"] is True and out["hello"] is None
    assert sorted(out["write"]) == sorted(f.path for f in fw_build.files)
    assert out["firmware"] == fw_build.firmware_string
    assert "/main.py" not in _files_on(board)      # nothing was written


def test_a_build_the_board_cannot_load_is_refused_before_writing(
        board: Rp2Board, fw_build: FirmwareBuild) -> None:
    # the same build claiming .mpy version 5 (MicroPython <= 1.18): the board reports _mpy 4870
    # (version 6, armv6m); nothing may be written
    old = tuple(replace(f, data=f.data[:1] + b"\x05" + f.data[2:]) if f.path.endswith(".mpy")
                else f for f in fw_build.files)
    with pytest.raises(deploy.DeployError) as e:
        deploy.flash(board.open_pty(), FirmwareBuild(fw_build.version, old))
    assert e.value.reason == "mpy_abi"
    assert ".mpy version 5, the board loads version 6" in e.value.message
    assert "/main.py" not in _files_on(board)      # nothing was written


def test_a_file_that_reads_back_wrong_is_caught_and_no_build_is_claimed(
        board: Rp2Board, fw_build: FirmwareBuild, monkeypatch: pytest.MonkeyPatch) -> None:
    # a link that flips a bit in one file on its way: the board stores the corrupted bytes;
    # only the sha256 read back from its flash notices
    real_write = deploy.Board.write

    def flaky(self: deploy.Board, path: str, data: bytes, chunk: int = 4096) -> None:
        if path == "/pumpfw/board.mpy":
            data = data[:-1] + bytes([data[-1] ^ 1])
        real_write(self, path, data, chunk)

    monkeypatch.setattr(deploy.Board, "write", flaky)
    with pytest.raises(deploy.DeployError) as e:
        deploy.flash(board.open_pty(), fw_build)
    assert e.value.reason == "verify_failed"
    assert "sha256 differs for /pumpfw/board.mpy:" in e.value.message
    files = _files_on(board)
    assert BUILD_FILE not in files            # no build is claimed
    assert len(files) == len(fw_build.files)  # everything else was written


def test_flash_repairs_it_verifies_resets_and_the_pump_reports_the_build(
        board: Rp2Board, fw_build: FirmwareBuild) -> None:
    r = itpump("flash", "--port", board.open_pty())
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"verified {len(fw_build.files)} files by sha256 on the board" in r.stdout
    assert f"flashed {fw_build.firmware_string}" in r.stdout
    assert "write /pumpfw/board.mpy" in r.stdout and "write /pumpcore/pump.mpy" not in r.stdout
    # what the board programmed, read back from its flash chip by the host
    files = _files_on(board)
    for f in fw_build.files:
        assert hashlib.sha256(files[f.path]).hexdigest() == f.sha256, f.path
    assert files[BUILD_FILE] == fw_build.build_id.encode()
    with PumpClient.open(board.serial_url, timeout_s=5.0, lookup_keys=False) as c:
        hello = c.hello()
    assert hello["firmware"] == fw_build.firmware_string
    assert hello["device_id"] == "unprovisioned"
    # one machine.reset() per session (dry run, refused build, failed verify, flash); the
    # watchdog never fired meanwhile
    assert [why for _, why in board.resets] == ["force"] * 4


def test_provision_over_socket_gives_identity_keys_and_a_working_signed_status(
        board: Rp2Board) -> None:
    r = itpump("provision", "--port", board.serial_url, "--device-id", "RP2-DEPLOY-1")
    assert r.returncode == 0, r.stdout + r.stderr
    key_path = keys.default_key_path("RP2-DEPLOY-1")
    assert (key_path.stat().st_mode & 0o777) == 0o600
    with PumpClient.open(board.serial_url, timeout_s=5.0) as c:   # keys found by device id
        assert c.hello()["device_id"] == "RP2-DEPLOY-1"
        st = c.status()
    assert st["state"] == "stopped" and st["alarms"] == []   # keys + factory state: no alarm
    files = _files_on(board)
    ident = json.loads(files["/identity.json"])
    assert ident["device_id"] == "RP2-DEPLOY-1"
    assert re.fullmatch(r"[0-9a-f]{64}", ident["device_key"])   # made on the board
    assert "/security.json" in files and "/keys.json" not in files


def test_provisioning_a_provisioned_board_is_refused_and_changes_nothing(board: Rp2Board) -> None:
    before = _files_on(board)
    r = itpump("provision", "--port", board.serial_url, "--device-id", "RP2-OTHER")
    assert r.returncode != 0
    assert "already_provisioned" in r.stderr and "RP2-DEPLOY-1" in r.stderr
    after = _files_on(board)
    for name in ("/identity.json", "/security.json"):
        assert after[name] == before[name]
    assert not keys.default_key_path("RP2-OTHER").exists()


def test_rekeying_one_role_keeps_the_others_and_the_state(board: Rp2Board) -> None:
    key_path = keys.default_key_path("RP2-DEPLOY-1")
    old = keys.load(key_path)
    r = itpump("provision", "--port", board.open_pty(), "--rekey", "--device-id", "RP2-DEPLOY-1",
               "--roles", "patient")
    assert r.returncode == 0, r.stdout + r.stderr
    new = keys.load(key_path)
    assert new.keys["patient"] != old.keys["patient"]
    assert new.keys["clinician"] == old.keys["clinician"]
    with PumpClient.open(board.serial_url, keyset=new, timeout_s=5.0) as c:
        assert c.status(role="patient")["state"] == "stopped"      # the new patient key works
        assert c.status(role="clinician")["state"] == "stopped"    # the kept one too
    with PumpClient.open(board.serial_url, keyset=old, timeout_s=5.0, retries=0) as c, \
            pytest.raises(PumpError):
        c.status(role="patient")                                    # the old one does not
