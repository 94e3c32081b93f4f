"""The plugin's own machinery: the flow analysis against hand-made readings, the rig file's
errors, transports (rfc2217:// through pyserial's server side, hwgrep:// on a pty), the target
extension point, the guardian that makes a bench safe when the test process is killed, and one
HIL test through a real labgrid coordinator and exporter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial.tools.list_ports
from pumphil.emulator import Emulator
from pumphil.hil import config as C
from pumphil.hil.flow import analyse, trumpet_limit_pct
from pumphil.hil.served import ServedRig
from pumphost.client import PumpClient
from serial.tools.list_ports_common import ListPortInfo

HERE = Path(__file__).resolve().parent


def test_flow_analysis_of_known_readings() -> None:
    # 60 uL/h = 0.5 mg per 30 s; one interval in the second hour reads 0.1 mg high and the next
    # 0.1 mg low (a drip landing late): Ep(max) over 2 min (4 intervals) = +5 %, Ep(min) -5 %
    m = [0.0]
    for k in range(1, 241):
        m.append(k * 0.0005)
    m[150] += 0.0001
    fa = analyse(m, 60.0, 1.0)
    assert fa.analysis_min == (60.0, 120.0)
    assert fa.overall_pct == pytest.approx(0.0, abs=1e-9)
    assert fa.trumpet[2] == (pytest.approx(5.0), pytest.approx(-5.0))
    # a 31-min window holds both intervals (they cancel) or, starting at the low one, only it
    assert fa.trumpet[31] == (pytest.approx(0.0, abs=1e-9), pytest.approx(-20 / 62))
    assert fa.flow_ul_per_h[149] == pytest.approx(72.0)
    assert len(fa.flow_ul_per_h) == 240
    biased = analyse([x * 1.02 for x in m], 60.0, 1.0)
    assert biased.overall_pct == pytest.approx(2.0)
    assert analyse(m, 60.0, 0.5).overall_pct == pytest.approx(100.0)   # density halves the mass
    with pytest.raises(ValueError, match="analysis period"):
        analyse(m[:100], 60.0)
    # limit: 5 % + (one 0.25-uL stroke + 2 x 0.05 mg) / the 2 uL a 2-min window holds at 60 uL/h
    assert trumpet_limit_pct(5, 2, 60, 0.25, 0.05) == pytest.approx(5 + 100 * 0.35 / 2)


def test_rig_file_errors_name_the_key(tmp_path: Path) -> None:
    good = {"pump": {"url": "socket://127.0.0.1:1", "key_file": "k.json"},
            "instruments": {r: {"resource": f"TCPIP::10.0.0.{i}::5025::SOCKET"}
                            for i, r in enumerate(C.ROLES)}}
    cfg = C.parse(good, "rig.toml", tmp_path)
    assert cfg.key_file == tmp_path / "k.json" and cfg.instruments["balance"].driver == "Balance"
    assert C.parse(cfg.to_toml_dict(), "again").instruments == cfg.instruments
    bad = [({**good, "instruments": {"psu": good["instruments"]["psu"]}}, "missing balance"),
           ({**good, "pump": {}}, r"missing 'url'"),
           ({**good, "time_scale": 0}, "time_scale: must be > 0"),
           ({**good, "extra": 1}, "unknown table or key extra"),
           ({**good, "safe_state": {"supply_volts": 12.0}}, "supply_volts"),
           ({**good, "instruments": {**good["instruments"], "scope": {"resource": "x"}}},
            "unknown role")]
    for doc, msg in bad:
        with pytest.raises(C.RigConfigError, match=msg):
            C.parse(doc, "rig.toml")
    (tmp_path / "bad.toml").write_text("pump = [")
    with pytest.raises(C.RigConfigError, match="not TOML"):
        C.load(tmp_path / "bad.toml")
    with pytest.raises(C.RigConfigError, match="not a class"):
        C.driver_class("os")


def test_rfc2217_and_hwgrep_reach_the_pump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ServedRig(speed=1.0, state_dir=tmp_path / "a") as rig:
        cfg = rig.config()
        assert cfg.pump_url.startswith("rfc2217://")
        with PumpClient.open(cfg.pump_url, key_file=cfg.key_file) as c:
            assert c.status()["state"] == "stopped"
            assert c.hello()["device_id"] == rig.emu.device_id
    # hwgrep:// searches the serial ports the OS enumerates; a pty is not enumerated, so the
    # enumeration is faked (documented in docs/hil.md) and the port opened is the real pty
    with Emulator(state_dir=tmp_path / "b", pty=True) as emu:
        assert emu.pty_path is not None
        pico = ListPortInfo(emu.pty_path)
        pico.vid, pico.pid, pico.serial_number = 0x2E8A, 0x0005, "E66138935F4B2A2C"
        pico.hwid = "USB VID:PID=2E8A:0005 SER=E66138935F4B2A2C LOCATION=1-1:1.0"
        monkeypatch.setattr(serial.tools.list_ports, "comports", lambda include_links=False:
                            [ListPortInfo("/dev/ttyS0"), pico])
        with PumpClient.open("hwgrep://2E8A:0005", key_file=emu.key_file) as c:
            assert c.hello()["device_id"] == emu.device_id
            assert c.status()["state"] == "stopped"


CHILD_TEST = '''
import time, hil_helpers as H

def test_infuse_then_hang(pump, clock, switch):
    H.start_therapy(pump, clock, H.rx(1_000_000))
    switch.leak()                  # flow continues with a leak (docs/safety.md)
    print("PUMPING", flush=True)
    time.sleep(120)
'''


def _run_child(tmp_path: Path, rig_file: Path, extra: list[str]) -> subprocess.Popen[str]:
    test = tmp_path / "test_child.py"
    test.write_text(CHILD_TEST)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return subprocess.Popen([sys.executable, "-m", "pytest", str(test), "-s", "-q", "-p",
                             "no:cacheprovider", "--rootdir", str(tmp_path), "--rig",
                             str(rig_file), "--rig-report", str(tmp_path / "report"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=tmp_path)


@pytest.mark.parametrize("how", ["SIGKILL", "timeout-thread", "SIGINT"])
def test_a_killed_test_never_leaves_the_bench_pumping(tmp_path: Path, how: str) -> None:
    with ServedRig(speed=300.0, state_dir=tmp_path / "emu") as rig:
        rig_file = rig.write_rig_file(tmp_path / "rig.toml")
        extra = ["--timeout", "10", "--timeout-method", "thread"] if how == "timeout-thread" \
            else []
        child = _run_child(tmp_path, rig_file, extra)
        assert child.stdout is not None
        out = []
        for line in child.stdout:
            out.append(line)
            if "PUMPING" in line:
                break
        else:
            pytest.fail("the child never started pumping:\n" + "".join(out))
        cfg = rig.config()
        with PumpClient.open(cfg.pump_url, key_file=cfg.key_file) as c:
            assert c.status()["state"] == "running"
        assert rig.emu.plant.leaking
        if how == "SIGKILL":
            child.kill()
        elif how == "SIGINT":
            child.send_signal(signal.SIGINT)
        # read the rest of its output while it ends (a full pipe would block its teardown), and
        # show it if it does not end (a hang guard, not a speed requirement)
        try:
            rest, _ = child.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            child.kill()
            rest, _ = child.communicate()
            pytest.fail(f"the child did not end within 180 s of {how}:\n" + "".join(out) + rest)
        log = tmp_path / "report" / "guardian.log"
        deadline = time.monotonic() + 30

        def finished() -> bool:
            lines = log.read_text().splitlines() if log.exists() else []
            return bool(lines) and (lines[-1] in ("safe", "NOT SAFE") or "released" in lines[-1])

        while not finished():
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
            time.sleep(0.2)
        text = log.read_text()
        if how == "SIGINT":
            assert "released" in text              # teardown made it safe; the guardian saw it
        else:
            assert "making the rig safe" in text and "NOT SAFE" not in text, text
        with PumpClient.open(cfg.pump_url, key_file=cfg.key_file) as c:
            assert c.status()["state"] == "stopped"
        assert not rig.emu.plant.leaking           # valves open
        assert rig.emu.plant.powered                # supply as configured: on at 3.6 V
        assert rig.emu.plant.battery_mv() == 3600


def test_one_hil_test_through_a_labgrid_place(tmp_path: Path) -> None:
    """A real labgrid-coordinator and labgrid-exporter on 127.0.0.1 export the emulated rig
    (served at x60, which a loaded 2-core machine keeps up with: at x300 it fell behind the
    bench clock and a time-to-alarm read 0.7 s over its limit); the suite's low-battery test runs
    through the acquired place (named in a rig file's [labgrid] table, with the key file), which
    is released afterwards."""
    from pumphil.hil.farm import farm
    from pumphil.hil.labgridplace import client
    with farm(tmp_path / "farm", speed=60.0) as (coord, rig):
        rig_file = tmp_path / "place.toml"
        rig_file.write_text(f'time_scale = 60\n[pump]\nkey_file = "{rig.emu.key_file}"\n'
                            f'[labgrid]\ncoordinator = "{coord}"\nplace = "itpump-emu"\n')
        p = subprocess.run(
            [sys.executable, "-m", "pytest", str(HERE / "test_power.py"), "-p",
             "no:cacheprovider", "-k", "low_battery", "--rig", str(rig_file),
             "--rig-max-minutes", "60",
             "--rig-report", str(tmp_path / "report")], capture_output=True, text=True,
            timeout=240, env={**os.environ, "PYTHONPATH": str(HERE)}, cwd=HERE.parents[1])
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
        assert "1 passed" in p.stdout
        shown = client(coord, "itpump-emu", "show")
        assert "acquired: None" in shown, shown               # released again
    junit = (tmp_path / "report" / "junit.xml").read_text()
    assert "time to battery_eri at 3.40 V" in junit
    assert "released by the test process" in (tmp_path / "report" / "guardian.log").read_text()


def test_targets_register_by_name_and_reject_unknown_rigs(tmp_path: Path) -> None:
    from pumphil.hil import target as T
    made: list[dict[str, str]] = []

    class Fake(T.EmulatedRig):
        kind = "fake"

    def factory(options: dict[str, str]) -> T.Target:
        made.append(options)
        return Fake(seed=int(options["seed"]))

    T.register_target("fake-rig", factory)
    try:
        t = T.make_target("fake-rig", {"seed": "7"})
        assert isinstance(t, Fake) and made == [{"seed": "7"}]
        assert "fake-rig" in T.target_names()
    finally:
        T._TARGETS.pop("fake-rig")
    with pytest.raises(C.RigConfigError, match="not a rig file"):
        T.make_target("nonesuch")
    with pytest.raises(ValueError, match="path or URL"):
        T.register_target("a/b", factory)
    assert isinstance(T.make_target(None), T.EmulatedRig)


@pytest.mark.timeout(300)
def test_the_rp2_target_runs_the_real_port_with_its_instruments_on_one_plant() -> None:
    """`--rig rp2` without the suite's long tests (`make hil-rp2` runs those): the target boots the
    real rp2 port provisioned, its time advances the chip and the plant together, and the
    supply's output cuts the chip's power (a reset the pump reports with its cause)."""
    import pyvisa
    from pumphil.drivers import PowerSupply
    from pumphil.hil.target import make_target

    t = make_target("rp2", {"seed": "3"})
    assert t.kind == "rp2" and "firmware_hang" not in t.capabilities
    t.start()
    try:
        with PumpClient.open(t.config.pump_url, key_file=t.config.key_file, timeout_s=10.0,
                             retries=3, reconnect_s=60.0) as c:
            assert c.hello()["board"] != "emulator"              # the Pico shell answers
            t0 = t.now_ms()
            t.advance(30_000)
            assert t.now_ms() - t0 >= 30_000
            assert t.plant.now_ms >= t0 + 30_000                   # the instruments' clock too
            rm = pyvisa.ResourceManager("@py")
            try:
                psu = PowerSupply.open(rm, t.config.instruments["psu"].resource)
                psu.output(False)
                t.advance(2_000)
                psu.output(True)
                t.advance(5_000)
                psu.close()
            finally:
                rm.close()
            c.reconnect()
            st = c.status()
            assert st["last_reset"]["cause"] == "power_on"
            assert "unexpected_reset" in [a[0] for a in st["alarms"]]
    finally:
        t.close()
