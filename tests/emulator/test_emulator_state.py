"""The emulator's state directory behaves like a Pico's flash: one board per directory (locked),
every write in the image file as the firmware makes it (a `kill -9` keeps what a power cut
would keep), and the board says it is an emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pumphil.emulator import Emulator, StateDirInUse
from pumphost import keys, prescription_file
from pumphost.client import PumpClient

ROOT = Path(__file__).resolve().parents[2]
RX = ROOT / "docs" / "examples" / "rx-morphine.toml"
ITPUMP = str(Path(sys.executable).with_name("itpump"))


def test_two_emulators_on_one_state_directory_are_refused(tmp_path: Path) -> None:
    with Emulator(state_dir=tmp_path) as a:
        with pytest.raises(StateDirInUse) as ei:
            Emulator(state_dir=tmp_path)
        assert f"pid {os.getpid()}" in str(ei.value) and ei.value.reason == "state_dir_in_use"
        with PumpClient.open(a.serial_url, timeout_s=2.0) as c:
            assert c.hello()["board"] == "emulator"
    with Emulator(state_dir=tmp_path):      # released at close
        pass
    env = dict(os.environ)
    with Emulator(state_dir=tmp_path):
        proc = subprocess.run([ITPUMP, "emulate", "--state-dir", str(tmp_path), "--exit-after",
                               "1"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: state_dir_in_use: ")


def test_a_killed_emulator_keeps_what_the_firmware_wrote(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = dict(os.environ)
    proc = subprocess.Popen([ITPUMP, "emulate", "--state-dir", str(state), "--json",
                             "--no-instruments", "--exit-after", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        with PumpClient.open(info["url"], timeout_s=5.0) as c:
            c.set_clock(9824, 8 * 3_600_000)
            review = c.stage(prescription_file.load(RX))
            c.commit(review["checksum"])
            assert c.status()["program"] == review["checksum"]
        os.kill(proc.pid, signal.SIGKILL)       # no clean exit, no sync: a power cut
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the kernel released the lock; the flash image holds the committed program
    with Emulator(state_dir=state) as emu:
        with PumpClient.open(emu.serial_url, keyset=keys.load(emu.key_file),
                             timeout_s=5.0) as c:
            st = c.status()
            assert st["program"] == review["checksum"]
            assert st["resets"] == 1 and st["last_reset"]["cause"] == "power_on"
