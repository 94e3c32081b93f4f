"""`itpump simulate` and `itpump emulate` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pumphost import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"

SHORT = """
name = "short"
duration = "6h"
seed = 3
prescription = "{rx}"
[[event]]
at = "0d 02:00"
action = "patient_bolus"
[[event]]
at = "0d 02:10"
action = "patient_bolus"
"""


def scenario_file(tmp_path: Path) -> Path:
    f = tmp_path / "short.toml"
    f.write_text(SHORT.format(rx=EXAMPLES / "rx-morphine.toml"))
    return f


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_simulate_json_only(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            runtime: str) -> None:
    assert cli.main(["simulate", str(scenario_file(tmp_path)), "--json",
                     "--runtime", runtime]) == 0
    out = capsys.readouterr().out
    rep = json.loads(out)     # only the JSON report on stdout
    assert rep["runtime"] == runtime
    assert rep["scenario"] == "short" and rep["duration_s"] == 6 * 3600
    assert rep["patient_bolus"]["requested"] == 2
    assert rep["patient_bolus"]["delivered"] == 1
    assert rep["patient_bolus"]["denied"]["lockout"] == 1
    assert rep["delivered_ul"] == pytest.approx(6 * 20 + 10, abs=0.5)
    assert rep["final"]["state"] == "running"
    # the throw-away simulation board leaves no key file where the CLI looks
    assert not (Path(os.environ["ITPUMP_HOME"]) / "keys").exists()


def test_simulate_summary_and_report_dir(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "rep"
    assert cli.main(["simulate", str(scenario_file(tmp_path)), "--report", str(out_dir),
                     "--sample-min", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Scenario: short")
    assert "Patient boluses: 2 requested, 1 delivered; denied: lockout 1" in out
    assert "x real time" in out and f"Report: {out_dir / 'index.html'}" in out
    assert json.loads((out_dir / "report.json").read_text())["scenario"] == "short"
    for name in ("reservoir.png", "dose_per_day.png", "patient_bolus.png", "alarms.png",
                 "pressure.png", "summary.txt", "index.html"):
        assert (out_dir / name).stat().st_size > 0


def test_simulate_bad_scenario_names_file_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(SHORT.format(rx=EXAMPLES / "rx-morphine.toml").replace('"6h"', '"6 hours"'))
    assert cli.main(["simulate", str(f)]) == 5
    err = capsys.readouterr().err
    assert err.startswith("error: scenario: ") and str(f) in err and "duration:" in err
    assert cli.main(["simulate", str(tmp_path / "missing.toml")]) == 5
    assert cli.main(["simulate", str(f), "--sample-min", "0"]) == cli.EXIT_USAGE


def test_emulate_serves_pump_and_instruments(tmp_path: Path) -> None:
    env = dict(os.environ, ITPUMP_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pumphost.cli", "emulate", "--json", "--speed", "50",
         "--state-dir", str(tmp_path / "state"), "--exit-after", "60"],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["url"].startswith("socket://127.0.0.1:")
        assert Path(info["key_file"]).exists()
        # the CLI finds the key by device id under $ITPUMP_HOME: no --key-file needed
        assert (tmp_path / "home" / "keys" / f"{info['device_id']}.json").exists()
        st = subprocess.run([sys.executable, "-m", "pumphost.cli", "--port", info["url"],
                             "--json", "status"], capture_output=True, text=True, env=env,
                            timeout=60, check=False)
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["state"] == "stopped"
        assert set(info["visa"]) >= {"psu", "balance"}
        import pyvisa

        rm = pyvisa.ResourceManager("@py")
        try:
            psu = rm.open_resource(info["visa"]["psu"], read_termination="\n",
                                   write_termination="\n", timeout=5000)
            assert "E36312A" in psu.query("*IDN?")
            psu.close()
        finally:
            rm.close()
    finally:
        proc.terminate()
        rc = proc.wait(timeout=30)
    assert rc == 0          # SIGTERM stops it like Ctrl-C (exit 0, flash synced)
    assert (tmp_path / "state" / "flash.img").stat().st_size > 0


def test_demo_runs_a_scenario_and_says_where_the_report_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pumphil import demo

    out_dir = tmp_path / "demo"
    assert demo.main(["--scenario", str(scenario_file(tmp_path)), "--report",
                      str(out_dir)]) == 0
    out, err = capsys.readouterr()
    assert "Scenario: short" in out
    assert f"Report written to {out_dir.resolve()}/ (open index.html in a browser):" in out
    assert (out_dir / "report.json").exists() and (out_dir / "index.html").exists()
    assert "\r" not in err and "day" not in err      # no progress counter when not on a TTY
    assert demo.DEFAULT_SCENARIO.exists()


def test_emulate_on_the_micropython_runtime_serves_the_pump(tmp_path: Path) -> None:
    env = dict(os.environ, ITPUMP_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pumphost.cli", "emulate", "--json", "--speed", "50",
         "--runtime", "micropython", "--no-instruments", "--state-dir", str(tmp_path / "state"),
         "--exit-after", "60"],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["runtime"] == "micropython"
        st = subprocess.run([sys.executable, "-m", "pumphost.cli", "--port", info["url"],
                             "--json", "status"], capture_output=True, text=True, env=env,
                            timeout=60, check=False)
        assert st.returncode == 0, st.stderr
        status = json.loads(st.stdout)
        assert status["state"] == "stopped" and status["uptime_s"] >= 0
    finally:
        proc.terminate()
        rc = proc.wait(timeout=30)
    assert rc == 0
