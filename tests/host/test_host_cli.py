"""The `itpump` CLI: real main(argv), real PumpClient, TCP transport, the real pumpcore Pump."""

from __future__ import annotations

import json
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pump_server import PumpServer, core_library
from pumpcore.pump import Pump
from pumphost import cli, keys

DATA = Path(__file__).parent / "data"
RX_FILE = str(DATA / "morphine.toml")


@pytest.fixture
def real(keyset: keys.KeySet) -> Iterator[PumpServer]:
    pump = Pump(library=core_library())
    assert pump.boot()[0] == "ok"
    with PumpServer(keyset, pump=pump) as s:
        yield s


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_hello(real: PumpServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "version")
    assert code == 0 and out.startswith("itpump host ")
    code, out, _ = run(capsys, "--port", real.url, "--json", "version")
    info = json.loads(out)
    assert code == 0 and info["pump"]["device_id"] == "TESTPUMP01"
    assert info["pump"]["protocol"] == 2 and info["verified"]


def test_no_port_is_usage_error(itpump_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status")
    assert code == cli.EXIT_USAGE and err.startswith("error: usage: no port")


def test_program_review_then_confirm(real: PumpServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "--port", real.url, "set-clock", "2026-11-24T08:00")
    assert code == 0 and real.pump.status()["clock"] == [9824, 28800000]
    code, out, err = run(capsys, "--port", real.url, "program", RX_FILE)
    assert code == 0, err
    assert "morphine   7.3 mg/day" in out and "not committed" in out
    assert "Changes versus the current program" in out
    assert re.search(r"basal step 2 rate +- +30 uL/h", out)
    assert real.pump.status()["program"] is None
    code, out, err = run(capsys, "--port", real.url, "--json", "program", RX_FILE, "--confirm")
    res = json.loads(out)
    assert code == 0 and res["committed"] and res["review"]["daily_ng"] == {"morphine": 7300000}
    assert real.pump.status()["program"] == res["review"]["checksum"]


def test_therapy_flow_and_refusals(real: PumpServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = real.url
    # a fixed time: "now" put the patient bolus below inside the 06:00 periodic bolus when the
    # suite ran between about 04:40 and 05:00
    assert run(capsys, "--port", url, "set-clock", "2026-11-24T08:00")[0] == 0
    assert run(capsys, "--port", url, "program", RX_FILE, "--confirm")[0] == 0
    code, _, err = run(capsys, "--port", url, "patient-bolus")
    assert code == cli.EXIT_REFUSED and err.startswith("error: not_running: ")
    assert err.count("\n") == 1
    assert run(capsys, "--port", url, "prime", "--volume-ul", "150")[0] == 0
    with real.lock:
        for _ in range(20):
            real.pump.advance(60000)
    code, out, err = run(capsys, "--port", url, "start")
    assert code == 0, err
    code, _, err = run(capsys, "--port", url, "patient-bolus")
    assert code == cli.EXIT_REFUSED and err.startswith("error: lockout: ")  # after programming
    with real.lock:
        for _ in range(61):
            real.pump.advance(60000)
    code, _, err = run(capsys, "--port", url, "patient-bolus")
    assert code == 0, err
    code, _, err = run(capsys, "--port", url, "patient-bolus")
    assert code == cli.EXIT_REFUSED and err.startswith("error: bolus_active: ")
    code, out, _ = run(capsys, "--port", url, "--json", "status")
    st = json.loads(out)
    assert st["state"] == "running" and st["patient_bolus"]["delivered"] == 1
    assert run(capsys, "--port", url, "suspend", "--minutes", "5")[0] == 0
    assert run(capsys, "--port", url, "resume")[0] == 0
    code, _, err = run(capsys, "--port", url, "clinician-bolus", "--volume-ul", "0.0001",
                       "--duration-min", "1")
    assert code == cli.EXIT_USAGE and "too many decimals" in err
    code, _, err = run(capsys, "--port", url, "clinician-bolus", "--volume-ul", "1001",
                       "--duration-min", "1")
    assert code == cli.EXIT_USAGE and "--volume-ul: must be 0.001..1000" in err
    assert run(capsys, "--port", url, "stop")[0] == 0
    assert real.pump.status()["state"] == "stopped"
    code, out, _ = run(capsys, "--port", url, "log", "--format", "json")
    entries = json.loads(out)
    kinds = [e["kind"] for e in entries]
    assert code == 0 and "command" in kinds and "state" in kinds
    code, out, _ = run(capsys, "--port", url, "log", "--since", str(entries[-2]["log_seq"]),
                       "--format", "csv")
    lines = out.strip().splitlines()
    assert lines[0] == "log_seq,time,kind,what,details" and len(lines) == 2
    assert lines[1].startswith(str(entries[-1]["log_seq"]) + ",")


def test_key_problems_exit_codes(real: PumpServer, keyset: keys.KeySet, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    wrong = keys.generate(keyset.device_id)
    path = keys.save(wrong, tmp_path / "wrong.json")
    code, _, err = run(capsys, "--port", real.url, "--key-file", str(path), "status")
    assert code == cli.EXIT_AUTH and err.startswith("error: bad_reply_tag: ") and "key file" in err
    code, _, err = run(capsys, "--port", real.url, "--role", "patient", "start")
    assert code == cli.EXIT_AUTH and err.startswith("error: role_forbidden: ")
    code, _, err = run(capsys, "--port", real.url, "--key-file", str(tmp_path / "no.json"),
                       "status")
    assert code == cli.EXIT_FILE and err.startswith("error: key_file: ")
    code, _, err = run(capsys, "--port", real.url, "program", str(tmp_path / "no.toml"))
    assert code == cli.EXIT_FILE and err.startswith("error: prescription: ")


def test_keys_generate_and_show(itpump_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keys", "generate", "--device-id", "PICO42")
    path = itpump_home / "keys" / "PICO42.json"
    assert code == 0 and str(path) in out and stat.S_IMODE(path.stat().st_mode) == 0o600
    code, _, err = run(capsys, "keys", "generate", "--device-id", "PICO42")
    assert code == cli.EXIT_FILE and "exists" in err
    code, out, _ = run(capsys, "keys", "show", "--device-id", "PICO42", "--json")
    shown = json.loads(out)
    ks = keys.load(path)
    assert shown["device_id"] == "PICO42" and set(shown["fingerprints"]) == set(ks.roles())
    assert all(ks.keys[r].hex() not in out for r in ks.roles())   # never prints the secret
    out_path = itpump_home / "p.json"
    code, _, _ = run(capsys, "keys", "generate", "--device-id", "P2", "--out", str(out_path),
                     "--roles", "patient")
    assert code == 0 and keys.load(out_path).roles() == ["patient"]


def test_monitor_prints_status_and_events(real: PumpServer,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # events from after the monitor's verified hello are shown (earlier ones are in `log`)
    def alarm() -> None:
        with real.lock:
            real.pump.raise_alarm("occlusion")
    timer = threading.Timer(0.3, alarm)
    timer.start()
    code, out, err = run(capsys, "--port", real.url, "--json", "monitor", "--interval", "0.2",
                         "--duration", "1.0")
    timer.join()
    assert code == 0, err
    objs = [json.loads(ln) for ln in out.strip().splitlines()]
    statuses = [o["status"] for o in objs if "status" in o]
    events = [o["event"] for o in objs if "event" in o]
    assert len(statuses) >= 2 and statuses[-1]["alarms"]
    assert any(e.get("kind") in ("alarm", "state") for e in events)


def test_emulator_hook_registers_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    # the behaviour belongs to host/pumphost/cli_emulator.py (emulator owner); only the hook here
    for name in ("emulate", "simulate"):
        with pytest.raises(SystemExit) as ei:
            cli.main([name, "--help"])
        assert ei.value.code == 0
    out, _ = capsys.readouterr()
    assert "emulat" in out


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out, _ = capsys.readouterr()
    for word in ["status", "program", "patient-bolus", "monitor", "set-clock", "keys",
                 "ITPUMP_PORT", "Exit status"]:
        assert word in out
    with pytest.raises(SystemExit):
        cli.main(["program", "--help"])
    out, _ = capsys.readouterr()
    assert "--confirm" in out and "review" in out


def test_soft_limit_needs_explicit_confirmation(real: PumpServer, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    text = (DATA / "morphine.toml").read_text().replace(
        'concentration_ug_per_ml = 10000',
        'concentration_ug_per_ml = 10000\nsoft_limit_ug_per_day = 5000\n'
        'hard_limit_ug_per_day = 9000')
    rx_file = tmp_path / "soft.toml"
    rx_file.write_text(text)
    assert run(capsys, "--port", real.url, "set-clock")[0] == 0
    code, out, err = run(capsys, "--port", real.url, "program", str(rx_file))
    assert code == 0, err
    assert "ABOVE SOFT LIMIT: --confirm-soft-limit" in out
    code, _, err = run(capsys, "--port", real.url, "program", str(rx_file), "--confirm")
    assert code == cli.EXIT_REFUSED and err.startswith("error: soft_limit_unconfirmed: ")
    assert "morphine 7.3 mg/day is above its soft limit of 5 mg/day" in err
    assert "--confirm-soft-limit" in err
    assert real.pump.status()["program"] is None
    code, out, err = run(capsys, "--port", real.url, "program", str(rx_file), "--confirm",
                         "--confirm-soft-limit")
    assert code == 0 and "committed." in out, err
    assert real.pump.status()["program"] is not None


def test_refill_with_new_admixture_is_all_or_nothing(real: PumpServer, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = real.url
    assert run(capsys, "--port", url, "set-clock", "2026-11-24T08:00")[0] == 0
    assert run(capsys, "--port", url, "program", RX_FILE, "--confirm")[0] == 0
    before = real.pump.status()["reservoir_nl"]
    # review only: nothing is recorded (the docs' two examples can follow each other)
    code, out, err = run(capsys, "--port", url, "refill", "--fill-ml", "18", "--prescription",
                         RX_FILE)
    assert code == 0, err
    assert "nothing recorded" in out
    st = real.pump.status()
    assert not st["needs_program"] and st["reservoir_nl"] == before
    # a program the pump refuses (a titration step too large): neither is recorded
    big = tmp_path / "big.toml"
    big.write_text(Path(RX_FILE).read_text().replace("concentration_ug_per_ml = 10000",
                                                     "concentration_ug_per_ml = 25000"))
    code, _, err = run(capsys, "--port", url, "refill", "--fill-ml", "18", "--prescription",
                       str(big), "--confirm")
    assert code == cli.EXIT_REFUSED and err.startswith("error: titration_step: ")
    assert "larger increase than the library allows" in err
    st = real.pump.status()
    assert not st["needs_program"] and st["reservoir_nl"] == before
    code, out, err = run(capsys, "--port", url, "--json", "refill", "--fill-ml", "17.5",
                         "--prescription", RX_FILE, "--confirm")
    res = json.loads(out)
    assert code == 0 and res["committed"] and res["commit"]["checksum"], err
    st = real.pump.status()
    assert not st["needs_program"] and st["reservoir_nl"] == 17500000


def test_log_since_time_and_keys_listing(real: PumpServer, keyset: keys.KeySet,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    url = real.url
    assert run(capsys, "--port", url, "set-clock", "2026-11-24T08:00")[0] == 0
    with real.lock:
        real.pump.advance(3600000)                    # 09:00
    assert run(capsys, "--port", url, "program", RX_FILE)[0] == 0   # "staged" at 09:00
    code, out, _ = run(capsys, "--port", url, "log", "--since", "2026-11-24T08:30",
                       "--format", "json")
    kinds = [e["kind"] for e in json.loads(out)]
    assert code == 0 and "staged" in kinds and "clock_set" not in kinds
    code, _, err = run(capsys, "--port", url, "log", "--since", "yesterday")
    assert code == cli.EXIT_USAGE and err.startswith("error: usage: --since")
    code, out, _ = run(capsys, "keys", "show", "--json")
    listing = json.loads(out)["keys"]
    assert [x["device_id"] for x in listing] == [keyset.device_id]
