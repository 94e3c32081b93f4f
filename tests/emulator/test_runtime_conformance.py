"""The two runtimes agree: one scenario on the CPython emulator and on the real MicroPython
(pumphil.mpy_board: the unchanged firmware in the WebAssembly interpreter, plant and flash bridged
to CPython) gives byte-identical protocol transcripts and identical reports, apart from the
report's `runtime` field (docs/emulator.md, "Runtimes").

Both runs start from copies of one provisioned state directory (same device id, keys, flash) and
with the host's random request-id prefix and hello nonces drawn from one seeded generator, so any
difference is the runtime's."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pumphil import report, scenario, simulate
from pumphil.board import VirtualBoard
from pumphil.emulator import RUNTIMES, Emulator
from pumphil.mpy_board import MicroPythonRuntimeUnsupported, MpyBoard
from pumphost import cli_emulator
from pumphost.client import PumpClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"

# program, prime and start (the runner's set-up), patient boluses (one in lockout), a clinician
# bolus, an occlusion and its alarm, a power cut (reset, flash sync, boot), status and log reads
# at every checkpoint
SCENARIO = """
name = "conformance"
duration = "10h"
seed = 5
prescription = "{rx}"
[[event]]
at = "0d 01:00"
action = "patient_bolus"
[[event]]
at = "0d 01:30"
action = "patient_bolus"
[[event]]
at = "0d 03:00"
action = "clinician_bolus"
volume_ul = 20
duration_min = 10
[[event]]
at = "0d 04:00"
action = "occlusion"
severity = "partial"
[[event]]
at = "0d 05:30"
action = "clear_occlusion"
[[event]]
at = "0d 07:00"
action = "power_cut"
[[event]]
at = "0d 07:05"
action = "power_restore"
"""


Transcript = list[tuple[str, int | None, bytes]]


def _recording_emulator(monkeypatch: pytest.MonkeyPatch) -> Transcript:
    """Every protocol line in order: ("host", link, line) received by the board, ("pump", link,
    line) sent by it (link None: an event to every host). Input is split into lines after
    reassembly, so TCP's chunking does not matter."""
    lines: Transcript = []
    pending: dict[int, bytes] = {}
    real_input, real_output = Emulator._input, Emulator._output

    def _input(self: Emulator, link: int, data: bytes) -> None:
        buf = pending.get(link, b"") + data
        *whole, pending[link] = buf.split(b"\n")
        lines.extend(("host", link, ln) for ln in whole)
        real_input(self, link, data)

    def _output(self: Emulator, data: bytes, link: int | None) -> None:
        lines.extend(("pump", link, ln) for ln in data.split(b"\n") if ln)
        real_output(self, data, link)

    monkeypatch.setattr(Emulator, "_input", _input)
    monkeypatch.setattr(Emulator, "_output", _output)
    return lines


def _run(runtime: str, template: Path, work: Path,
         monkeypatch: pytest.MonkeyPatch) -> tuple[Transcript, dict[str, Any]]:
    state = work / runtime
    shutil.copytree(template, state)
    rng = random.Random(7)
    monkeypatch.setattr("pumphost.client.secrets.token_hex",
                        lambda n=32: "%0*x" % (2 * n, rng.getrandbits(8 * n)))
    transcript = _recording_emulator(monkeypatch)
    sc = scenario.load(work / "conformance.toml")
    rec = simulate.run(sc, sample_ms=30 * 60_000, state_dir=state, runtime=runtime)
    monkeypatch.undo()
    return transcript, report.build_report(rec)


@pytest.mark.timeout(300)
def test_one_scenario_same_transcript_and_report_on_both_runtimes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITPUMP_HOME", str(tmp_path / "home"))
    (tmp_path / "conformance.toml").write_text(SCENARIO.format(rx=EXAMPLES / "rx-morphine.toml"))
    template = tmp_path / "template"
    Emulator(state_dir=template, seed=5).start().close()     # provisioned once, copied twice
    (template / "emulator.lock").unlink()

    cp_lines, cp_report = _run("cpython", template, tmp_path, monkeypatch)
    mp_lines, mp_report = _run("micropython", template, tmp_path, monkeypatch)

    # the scenario did what it names, so the comparison covers it
    assert cp_report["delivered_ul"] > 0
    assert {a["code"] for a in cp_report["alarms"]} >= {"occlusion"}
    assert [r["cause"] for r in cp_report["resets"]] == ["power_on"]
    assert cp_report["patient_bolus"]["delivered"] >= 1
    assert sum(1 for d, _, _ in cp_lines if d == "host") > 20

    assert (cp_report["runtime"], mp_report["runtime"]) == ("cpython", "micropython")
    for i, (a, b) in enumerate(zip(cp_lines, mp_lines, strict=False)):
        assert a == b, f"transcripts differ at line {i}: cpython {a!r}, micropython {b!r}"
    assert len(cp_lines) == len(mp_lines)
    cp_report.pop("runtime")
    mp_report.pop("runtime")
    assert mp_report == cp_report


def test_the_stored_log_reads_the_same_on_both_runtimes(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # log_stored streams the flash's log files line by line (readline) after a boot's torn-tail
    # check (seek): file access the scenario above does not reach
    monkeypatch.setenv("ITPUMP_HOME", str(tmp_path / "home"))
    template = tmp_path / "template"
    with Emulator(state_dir=template, seed=5) as emu:
        emu.advance(60_000)
    (template / "emulator.lock").unlink()
    pages = {}
    for runtime in RUNTIMES:
        shutil.copytree(template, tmp_path / runtime)
        with Emulator(state_dir=tmp_path / runtime, seed=5, runtime=runtime) as emu, \
                PumpClient.open(emu.serial_url, key_file=emu.key_file) as c:
            first = c.request("log_stored", {"limit": 3})
            rest = c.request("log_stored", {"seq": first["last"][0], "skip": first["last"][1]})
            pages[runtime] = (first, rest)
    first, rest = pages["cpython"]
    assert len(first["entries"]) == 3 and first["more"] and rest["entries"]
    assert pages["micropython"] == pages["cpython"]


def _refused(board: MpyBoard, attr: str, value: Callable[..., Any]) -> str:
    with pytest.raises(MicroPythonRuntimeUnsupported) as e:
        setattr(board, attr, value)
    return str(e.value)


def test_what_the_micropython_runtime_cannot_offer_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITPUMP_HOME", str(tmp_path / "home"))
    with Emulator(state_dir=tmp_path / "s", runtime="micropython") as emu:
        assert isinstance(emu.board, MpyBoard)
        assert "on_power_on" in _refused(emu.board, "on_power_on", lambda app: None)
        assert "wrap_hal" in _refused(emu.board, "wrap_hal", lambda hal: hal)
        assert emu.board.answers() and emu.board.boots == [(0, "power_on")]
    with Emulator(state_dir=tmp_path / "c") as emu:
        assert isinstance(emu.board, VirtualBoard)


def test_the_cli_offers_the_emulators_runtimes() -> None:
    assert cli_emulator.RUNTIMES == RUNTIMES


def test_without_node_the_micropython_runtime_is_refused_and_leaves_nothing_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from pumphil.mpy_runtime import MicroPythonUnavailable
    from pumphost import cli

    monkeypatch.setenv("ITPUMP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITPUMP_NODE", str(tmp_path / "no-such-node"))
    with pytest.raises(MicroPythonUnavailable):
        Emulator(state_dir=tmp_path / "s", runtime="micropython")
    Emulator(state_dir=tmp_path / "s").close()      # the state directory is not left locked
    (tmp_path / "short.toml").write_text(
        f'name = "short"\nduration = "1h"\nprescription = "{EXAMPLES / "rx-morphine.toml"}"\n')
    assert cli.main(["simulate", str(tmp_path / "short.toml"), "--runtime", "micropython"]) == 2
    assert "micropython_unavailable" in capsys.readouterr().err
