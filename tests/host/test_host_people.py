"""For the people who use it (issue 13): a clinic library loaded as data, refusals in one
sentence with the numbers, offline checks, titration plans, human output, CLI conventions.
Real main(argv), real PumpClient over TCP, the real pumpcore Pump."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pump_server import PumpServer, core_library
from pumpcore.pump import Pump
from pumphost import cli, keys, library_file, prescription_file, titration, units

DATA = Path(__file__).parent / "data"
MORPHINE = str(DATA / "morphine.toml")
MC2 = str(DATA / "morphine-clonidine-2mg.toml")
BACLOFEN = str(DATA / "baclofen-900.toml")
ITPUMP = str(Path(sys.executable).with_name("itpump"))


@pytest.fixture
def real(keyset: keys.KeySet) -> Iterator[PumpServer]:
    """A pump with the core tests' library (the old example: morphine 10-25 mg/mL only)."""
    pump = Pump(library=core_library())
    assert pump.boot()[0] == "ok"
    with PumpServer(keyset, pump=pump) as s:
        yield s


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- the library as data --------------------------------------------------------------------------
def test_the_example_library_covers_label_and_consensus_ranges_with_a_source_each() -> None:
    lf = library_file.example()
    rows = {r[0]: dict(zip(lf.record["fields"], r, strict=True)) for r in lf.record["drugs"]}
    assert sorted(rows) == ["baclofen", "bupivacaine", "clonidine", "hydromorphone", "morphine",
                            "ziconotide"]                     # midazolam: explicit limits only
    m = rows["morphine"]
    assert (m["conc_min_ug_per_ml"], m["conc_max_ug_per_ml"]) == (500, 25000)   # 0.5-25 mg/mL
    assert m["soft_ng_per_day"] == 15_000_000                                  # PACC 15 mg/day
    assert rows["clonidine"]["hard_ng_per_day"] == 600_000                     # PACC 600 ug/day
    assert rows["hydromorphone"]["conc_max_ug_per_ml"] == 15000                # PACC 15 mg/mL
    assert rows["ziconotide"]["hard_ng_per_day"] == 19200                      # Prialt 19.2
    for drug, entry in rows.items():
        given = [k for k, (rec, _) in library_file._VALUES.items() if entry[rec] is not None]
        assert sorted(lf.sources[drug]) == sorted(given), drug   # every value names its source
    assert "NOT CLINICAL GUIDANCE" in library_file.EXAMPLE.read_text()


def test_library_files_are_refused_with_named_fields(tmp_path: Path) -> None:
    text = library_file.EXAMPLE.read_text()
    cases = {
        "src": (text.replace('hard_limit_ug_per_day = "PACC 2017: maximum 600 ug/day"\n', ""),
                "drug[4] (clonidine).source.hard_limit_ug_per_day", "names where it comes from"),
        "str": (text.replace("hard_limit_ug_per_day = 600\n", 'hard_limit_ug_per_day = "600"\n'),
                "drug[4] (clonidine).hard_limit_ug_per_day", "not a string"),
        "typo": (text.replace("max_bolus_ug = 100\n", "max_bolos_ug = 100\n"),
                 "drug[3] (baclofen).max_bolos_ug", "unknown key"),
        "fine": (text.replace("hard_limit_ug_per_day = 19.2\n", "hard_limit_ug_per_day = 19.2001\n"),
                 "drug[0] (ziconotide).hard_limit_ug_per_day", "too many decimals"),
        "fw": (text.replace("soft_limit_ug_per_day = 480\n", "soft_limit_ug_per_day = 700\n"),
               "drug[4] (clonidine).soft_limit_ug_per_day", "700 ug/day is outside 0.001 to 600"),
    }
    for name, (body, fld, why) in cases.items():
        f = tmp_path / f"{name}.toml"
        f.write_text(body)
        with pytest.raises(library_file.LibraryFileError) as ei:
            library_file.load(f)
        assert any(p[0] == fld and why in p[1] for p in ei.value.problems), (name, ei.value)


def test_a_clinic_loads_its_library_and_programs_morphine_2mg_with_clonidine(
        real: PumpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = real.url
    assert run(capsys, "--port", url, "set-clock", "2026-11-24T08:00")[0] == 0
    # under the old library 2 mg/mL is refused, in one sentence with the numbers
    code, _, err = run(capsys, "--port", url, "program", MC2)
    assert code == cli.EXIT_REFUSED and err.startswith("error: concentration_range: ")
    assert "morphine at 2 mg/mL is outside the library's range, 10 mg/mL to 25 mg/mL" in err
    assert "clonidine has no entry in the pump's drug library" in err
    # the clinic's library: reviewed first (nothing changes), loosening needs its own confirmation
    clinic = tmp_path / "clinic.toml"
    clinic.write_text(library_file.EXAMPLE.read_text().replace(
        'name = "itpump example library"', 'name = "St Elsewhere pain clinic"'))
    code, out, err = run(capsys, "--port", url, "library", "push", str(clinic))
    assert code == 0, err
    assert "LOOSENS limits for: morphine" in out and "added: bupivacaine, clonidine" in out
    assert "not loaded" in out and real.pump.library.name == "core test library"
    code, _, err = run(capsys, "--port", url, "library", "push", str(clinic), "--confirm")
    assert code == cli.EXIT_REFUSED and err.startswith("error: loosening_unconfirmed: ")
    assert "--confirm-loosening" in err
    code, out, err = run(capsys, "--port", url, "library", "push", str(clinic), "--confirm",
                         "--confirm-loosening")
    assert code == 0 and "is now the one the pump enforces" in out, err
    code, out, _ = run(capsys, "--port", url, "library", "show")
    lf = library_file.load(clinic)
    assert f"St Elsewhere pain clinic 2026.1 (checksum {lf.checksum})" in out
    assert re.search(r"morphine +0\.5-25 mg/mL +15 / 30 mg/day", out)
    kinds = [e["kind"] for e in json.loads(run(capsys, "--port", url, "--json", "log")[1])]
    assert "library_loaded" in kinds                                   # every change logged
    code, out, err = run(capsys, "--port", url, "program", MC2, "--confirm")
    assert code == 0, err
    assert re.search(r"morphine +2\.4 mg/day +15 mg/day +30 mg/day +ok", out)
    assert re.search(r"clonidine +360 ug/day +480 ug/day +600 ug/day +ok", out)
    assert real.pump.status()["program"] is not None


def test_every_refusal_reads_as_a_sentence_with_its_numbers(
        real: PumpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = real.url
    assert run(capsys, "--port", url, "set-clock", "2026-11-24T08:00")[0] == 0
    over = tmp_path / "over.toml"      # as the example: 36.9 mg/day against 30 mg/day
    over.write_text(Path(MORPHINE).read_text().replace("rate_ul_per_h = 30", "rate_ul_per_h = 215"))
    code, _, err = run(capsys, "--port", url, "program", str(over))
    assert code == cli.EXIT_REFUSED
    assert err.splitlines()[0] == ("error: hard_limit: morphine: 36.9 mg/day would be above its "
                                   "hard limit of 30 mg/day; lower the basal rate, the boluses or "
                                   "the concentration.")
    code, out, _ = run(capsys, "--port", url, "--json", "program", str(over))
    j = json.loads(out)                                       # --json keeps the codes and values
    assert j["error"] == "hard_limit" and j["data"]["problems"][0][2]["value"] == 36_900_000
    assert run(capsys, "--port", url, "program", MORPHINE, "--confirm")[0] == 0
    code, _, err = run(capsys, "--port", url, "ack", "--alarm", "occlusoin")
    assert code == cli.EXIT_REFUSED and "occlusoin is not an alarm name" in err
    assert "occlusion" in err
    code, _, err = run(capsys, "--port", url, "start")
    assert code == cli.EXIT_REFUSED and err == (
        "error: not_primed: the catheter is not primed (0 uL of 150 uL); prime it first "
        "(itpump prime --volume-ul 150).\n")
    assert run(capsys, "--port", url, "prime", "--volume-ul", "150")[0] == 0
    code, _, err = run(capsys, "--port", url, "refill", "--fill-ml", "18")
    assert code == cli.EXIT_REFUSED and "refill is not possible while the pump is priming" in err
    with real.lock:
        real.pump.advance(20 * 60000)
    assert run(capsys, "--port", url, "start")[0] == 0
    code, _, err = run(capsys, "--port", url, "prime", "--volume-ul", "10")
    assert code == cli.EXIT_REFUSED and err.startswith(
        "error: not_allowed: prime is not possible while the pump is running; stop the pump "
        "first (itpump stop).")
    code, _, err = run(capsys, "--port", url, "patient-bolus")
    # lockout after programming: the next allowed time in the pump's local time
    assert code == cli.EXIT_REFUSED and re.search(
        r"^error: lockout: the patient bolus is locked out \(1 h after the last bolus, "
        r"programming or refill\); the next is allowed at 09:\d\d \(in \d+ min\)\.$", err)
    code, _, err = run(capsys, "--port", url, "suspend", "--minutes", "2000")
    assert code == cli.EXIT_USAGE and "--minutes" in err


def test_continuing_therapy_is_confirmed_never_silent(
        real: PumpServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = real.url
    code, out, err = run(capsys, "--port", url, "program", BACLOFEN, "--confirm",
                         "--confirm-soft-limit")
    assert code == cli.EXIT_REFUSED and err.startswith("error: start_dose_unconfirmed: ")
    assert "baclofen 900 ug/day is above its starting dose of 300 ug/day" in err
    assert "--continuing" in err and real.pump.rx is None
    code, out, err = run(capsys, "--port", url, "program", BACLOFEN, "--confirm",
                         "--confirm-soft-limit", "--continuing")
    assert code == 0, err
    log = json.loads(run(capsys, "--port", url, "--json", "log")[1])
    assert any(e["kind"] == "continuing_therapy" for e in log)


# --- offline check and planning ----------------------------------------------------------------------
def test_check_offline_runs_the_firmware_validation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", MC2)
    assert code == 0 and "the pump would accept this program" in out, err
    code, out, err = run(capsys, "check", BACLOFEN)
    assert code == cli.EXIT_REFUSED and err.startswith("error: soft_limit_unconfirmed: ")
    assert "baclofen 900 ug/day is above its soft limit of 800 ug/day" in err
    code, out, err = run(capsys, "check", BACLOFEN, "--confirm-soft-limit")
    assert code == cli.EXIT_REFUSED and err.startswith("error: start_dose_unconfirmed: ")
    code, out, err = run(capsys, "check", BACLOFEN, "--continuing", "--confirm-soft-limit")
    assert code == 0, err
    code, out, err = run(capsys, "--json", "check", MC2, "--current", MORPHINE)
    verdict = json.loads(out)
    # 7.3 -> 2.4 mg/day morphine (a decrease) but clonidine starts: accepted
    assert code == 0 and verdict["accepted"], err


def test_a_titration_plan_is_accepted_step_by_step_by_the_pump(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lib = library_file.example()
    code, out, err = run(capsys, "check", BACLOFEN, "--plan", "--plan-dir", str(tmp_path))
    assert code == 0, err
    # from nothing: the start rule allows 300 ug/day, then +30 % a day up to 900
    files = sorted(tmp_path.glob("step-*.toml"))
    assert len(files) >= 5 and "Titration plan" in out
    from pumpcore.library import Library
    pump = Pump(library=Library.from_record(lib.record))
    pump.boot()
    elapsed = 0
    for f, step in zip(files, titration.plan(None, prescription_file.load(BACLOFEN),
                                             Library.from_record(lib.record)), strict=True):
        assert step.after_ms >= elapsed
        pump.advance(step.after_ms - elapsed) if step.after_ms > elapsed else None
        elapsed = step.after_ms
        code, rv = pump.stage(prescription_file.load(f))
        assert code == "ok", (f.name, rv)
        assert pump.commit(rv["checksum"], confirm_soft=True)[0] == "ok", f.name
    assert pump.rx_review["daily_ng"]["baclofen"] == 900_000
    # a step committed too early is refused by the interval rule
    with pytest.raises(titration.PlanError):
        titration.plan(None, {"reservoir": {}}, Library.from_record(lib.record))


def test_program_plan_reads_the_running_program_from_the_pump(
        real: PumpServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = real.url
    assert run(capsys, "--port", url, "set-clock", "2026-11-24T08:00")[0] == 0
    assert run(capsys, "--port", url, "program", MORPHINE, "--confirm")[0] == 0   # 7.3 mg/day
    code, out, err = run(capsys, "--port", url, "--json", "program",
                         str(DATA / "morphine.toml").replace("morphine.toml", "morphine.toml"),
                         "--plan")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["steps"][-1]["daily_ng"] == {"morphine": 7_300_000}   # already there: one step


# --- human output and conventions ----------------------------------------------------------------
def test_status_and_log_read_without_a_unit_table(
        real: PumpServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = real.url
    assert run(capsys, "--port", url, "set-clock", "2026-11-24T08:00")[0] == 0
    assert run(capsys, "--port", url, "program", MORPHINE, "--confirm")[0] == 0
    with real.lock:
        real.pump.raise_alarm("occlusion")
    code, out, _ = run(capsys, "--port", url, "status")
    assert code == 0
    assert "reservoir         18 mL" in out and "pump clock        2026-11-24 08:00" in out
    assert "basal rate        30 uL/h (0.72 mL/day)" in out
    assert re.search(r"occlusion +high +NOT acknowledged +condition present +2026-11-24 08:00", out)
    assert "_nl" not in out and "[9824" not in out
    code, out, _ = run(capsys, "--port", url, "log", "--since", "2026-11-24T08:00",
                       "--kind", "command", "--kind", "alarm_raised")
    assert code == 0 and "set_clock by clinician" in out and "commit by clinician" in out
    assert "alarm raised occlusion" in out and "priority high" in out and "staged" not in out
    code, out, _ = run(capsys, "--port", url, "--json", "log", "--by-role", "clinician")
    assert {e["kind"] for e in json.loads(out)} == {"command"}
    code, out, _ = run(capsys, "--port", url, "--json", "log", "--until", "2026-11-24T07:00")
    assert json.loads(out) == []


def test_set_clock_honours_an_offset_and_numbers_are_not_strings(
        real: PumpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--port", real.url, "set-clock", "2026-11-24T08:00+01:00")
    local = _dt.datetime(2026, 11, 24, 7, 0, tzinfo=_dt.UTC).astimezone().replace(tzinfo=None)
    assert code == 0 and real.pump.status()["clock"] == list(units.wall_clock_of(local))
    assert "(2026-11-24T08:00+01:00)" in out
    bad = tmp_path / "str.toml"
    bad.write_text(Path(MORPHINE).read_text().replace("fill_ml = 18.0", 'fill_ml = "18"'))
    code, _, err = run(capsys, "--port", real.url, "program", str(bad))
    assert code == cli.EXIT_FILE and "reservoir.fill_ml: must be a number, not a string" in err


def test_cli_conventions(itpump_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        cli.main(["--version"])
    assert ei.value.code == 0 and capsys.readouterr().out.startswith("itpump ")
    code, out, _ = run(capsys)
    assert code == 0 and "usage: itpump" in out          # bare itpump: the help, exit 0
    code, out, err = run(capsys, "--json", "status", "--bogus")
    assert code == cli.EXIT_USAGE and json.loads(out)["error"] == "usage"
    assert "unrecognized arguments: --bogus" in err
    code, out, err = run(capsys, "set-clock", "tomorrow", "--port", "loop://")
    assert code == cli.EXIT_USAGE and "not an ISO time" in err


def test_a_closed_pipe_is_no_traceback(itpump_home: Path) -> None:
    env = dict(os.environ, ITPUMP_HOME=str(itpump_home))
    proc = subprocess.Popen([ITPUMP, "library", "show", "example"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()                                   # `itpump ... | head` that already left
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == cli.EXIT_PIPE
    assert "Traceback" not in err and "Exception ignored" not in err
