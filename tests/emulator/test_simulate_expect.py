"""Expectations and reports end to end: the examples state what they prove and the emulator
proves it; `itpump simulate` exits 6 when an expectation fails, 5 for an unwritable report
folder (before the run), 1 when the pump or the plant refuses the set-up; the HTML page is
self-contained and complete (parsed here, and rendered by headless Chromium where it is
installed); a 40-mL reservoir reaches the plant."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pumphil import report as R
from pumphil import scenario as S
from pumphil import simulate as sim
from pumphil.emulator import Emulator
from pumphil.progress import day_progress
from pumphost import cli
from pumphost.client import PumpClient

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

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
[[expect]]
patient_bolus = "denied"
reason = "lockout"
count = {denied}
[[expect]]
final_state = "running"
"""


def short(tmp_path: Path, denied: int = 1) -> Path:
    f = tmp_path / "short.toml"
    f.write_text(SHORT.format(rx=EXAMPLES / "rx-morphine.toml", denied=denied))
    return f


@pytest.mark.parametrize("name", ["occlusion", "dislodgement", "reservoir-empty"])
def test_the_examples_prove_what_they_state(name: str) -> None:
    rep = R.build_report(sim.run(S.load(EXAMPLES / f"{name}.toml")))
    failed = [e["text"] for e in rep["expectations"] if not e["passed"]]
    assert rep["verdict"] == "pass" and not failed, failed
    assert len(rep["expectations"]) >= 5


def test_exit_status_follows_the_expectations(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["simulate", str(short(tmp_path, denied=1))]) == 0
    out = capsys.readouterr().out
    assert "Expectations: 2 of 2 passed: PASS" in out
    assert cli.main(["simulate", str(short(tmp_path, denied=2)), "--json"]) == 6
    rep = json.loads(capsys.readouterr().out)
    assert rep["verdict"] == "fail"
    assert [(e["passed"], e["measured"], e["limit"]) for e in rep["expectations"]] == [
        (False, 1, "= 2"), (True, "running", "= running")]


def test_an_unwritable_report_folder_is_refused_before_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")

    def no_run(*args: Any, **kw: Any) -> None:
        raise AssertionError("the simulation ran although its report could not be written")

    monkeypatch.setattr(sim, "run", no_run)
    assert cli.main(["simulate", str(short(tmp_path)), "--report", str(blocker / "rep")]) == 5
    err = capsys.readouterr().err
    assert err.startswith(f"error: report: cannot write the report into {blocker / 'rep'}: ")
    assert "Traceback" not in err


def test_a_refused_set_up_is_a_run_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rx = tmp_path / "rx-over.toml"
    rx.write_text((EXAMPLES / "rx-morphine.toml").read_text().replace(
        "rate_ul_per_h = 20", "rate_ul_per_h = 200"))          # 48 mg/day > 30 hard
    f = tmp_path / "over.toml"
    f.write_text(f'duration = "1h"\nprescription = "{rx}"\n')
    assert cli.main(["simulate", str(f)]) == 1
    assert capsys.readouterr().err.startswith("error: hard_limit: set-up step program refused "
                                              "by the pump")


FORTY = """
name = "a 40-mL reservoir"
duration = "1d"
seed = 8
[prescription]
[prescription.reservoir]
capacity_ml = 40
fill_ml = 36.0
low_alert_ml = 2.0
empty_ml = 0.5
[prescription.catheter]
volume_ul = 150
[[prescription.drug]]
name = "morphine"
concentration_ug_per_ml = 10000
[prescription.basal]
steps = [ { start = "00:00", rate_ul_per_h = 20 } ]
[[event]]
at = "0d 12:00"
action = "suspend"
minutes = 10
[[event]]
at = "0d 12:01"
action = "refill"
fill_ml = 39.5
[[expect]]
accepted = "refill"
count = 1
"""


def test_a_40_ml_reservoir_reaches_the_plant() -> None:
    sc = S.loads(FORTY, "forty.toml", EXAMPLES)
    runners: list[sim.Runner] = []
    rec = sim.run(sc, on_runner=runners.append)
    rep = R.build_report(rec)
    assert rep["verdict"] == "pass"
    plant = runners[0].emu.plant
    assert plant.params.reservoir_capacity_nl == 40_000_000
    # refilled to 39.5 mL at 12:01 (suspended 10 min), then 20 uL/h: the pump and the plant agree
    left_ul = rep["final"]["reservoir_ul"]
    assert left_ul == pytest.approx(39_500 - 20 * (12 - 10 / 60 + 1 / 60) , abs=1.0)
    assert plant.reservoir_nl / 1000 == pytest.approx(left_ul, rel=0.001)   # +1 % stroke bias


def test_a_plant_refusal_is_named_as_the_plants(tmp_path: Path) -> None:
    # a runner on a rig whose reservoir is smaller than the scenario's: the plant refuses the
    # fill before the pump is asked, and the error names the plant, not a pump reason code
    sc = S.loads(FORTY, "forty.toml", EXAMPLES)
    with Emulator(state_dir=tmp_path / "s", seed=1, speed=None) as emu:       # 20-mL plant
        with PumpClient.open(emu.serial_url, key_file=emu.key_file, timeout_s=10.0) as c:
            with pytest.raises(sim.PlantError) as e:
                sim.Runner(sc, emu, c).setup()
            kinds = [entry.get("kind") for _, entry in c.log_all(0)]
            assert "committed" in kinds and "refilled" not in kinds   # the pump was not told
    assert e.value.reason == "plant"
    assert e.value.message == ("set-up step refill: the plant refused: a fill of 36 mL does not "
                            "fit the plant's 20-mL reservoir")


def test_progress_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    with day_progress(30, "month", io.StringIO()) as p:
        assert p is None
    tty = Tty()
    with day_progress(30, "month", tty) as p:
        assert p is not None
        p(15, 30)
    assert "month" in tty.getvalue() and "15/30" in tty.getvalue()


# --- the HTML page (the month example: two drugs, boluses, an alarm, a refill) ---------------------
@pytest.fixture(scope="module")
def month_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    rec = sim.run(S.load(EXAMPLES / "month-morphine-clonidine.toml"))
    out = tmp_path_factory.mktemp("month")
    return R.write_report(rec, out), out


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.h2: list[str] = []
        self.rows: list[list[tuple[str, str]]] = []
        self._tag = ""
        self._cell: tuple[str, str] | None = None
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._tag = tag
        for k in ("src", "href"):
            if a.get(k):
                self.refs.append(str(a[k]))
        if tag == "script":
            self.scripts += 1
        if tag == "tr":
            self.rows.append([])
        if tag == "td":
            self._cell = (str(a.get("class") or ""), "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._tag == "h2":
            self.h2.append(data)
            self._tag = ""
        if self._cell is not None:
            self._cell = (self._cell[0], self._cell[1] + data)


def test_month_expectations_and_its_html_page(month_report: tuple[dict[str, Any], Path]) -> None:
    rep, out = month_report
    failed = [e["text"] for e in rep["expectations"] if not e["passed"]]
    assert rep["verdict"] == "pass" and not failed, failed
    page = _Page()
    text = (out / "index.html").read_text()
    page.feed(text)
    assert page.h2 == ["Expectations", "Prescription", "Dose per drug", "Reservoir", "Alarms",
                       "Fault-to-alarm latency", "Pressure around alarms", "Patient boluses",
                       "Actions not carried out", "Inputs"]
    # self-contained: every reference is an embedded SVG figure, no script
    assert page.scripts == 0 and len(page.refs) >= 5
    for ref in page.refs:
        assert ref.startswith("data:image/svg+xml;base64,")
        assert b"<svg" in base64.b64decode(ref.split(",", 1)[1])
    # one verdict row per expectation, judged as in the JSON
    exp_rows = [r for r in page.rows if len(r) == 7]
    assert [(r[0][1], r[5][1]) for r in exp_rows] == [
        (e["text"], "pass" if e["passed"] else "fail") for e in rep["expectations"]]
    assert 'Verdict (every measurement within its limits): <span class="verdict pass">PASS' in text
    # doses in mg/day against both limits; the plant's peak beside them
    dose = next(r for r in page.rows if r and r[0][1] == "clonidine" and "%" in r[-1][1])
    assert [c[1] for c in dose[5:]] == ["400 ug/day", "500 ug/day", "68.9 %"]
    assert f"input hash: sha256:{rep['scenario_sha256']}" in text
    assert "firmware: 0.1.0" in text and "schema version: 2" in text
    # the files beside it
    assert json.loads((out / "report.json").read_text()) == rep
    for name in R.PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


CHECK_IMAGES = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
  document.body.setAttribute("data-width", document.documentElement.scrollWidth);
});
</script>"""


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Debian's chromium is not installed (apt-get install chromium)")
def test_month_page_renders_in_headless_chromium(month_report: tuple[dict[str, Any], Path],
                                                 tmp_path: Path) -> None:
    _, out = month_report
    # a copy with a probe script: every figure decoded by the browser, nothing wider than the
    # page (the report itself carries no script)
    probe = tmp_path / "probe.html"
    probe.write_text((out / "index.html").read_text().replace("</body>", CHECK_IMAGES + "</body>"))
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900",
         "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    m = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert m is not None, dom[:500]
    assert m.group(1) == m.group(2) and int(m.group(2)) >= 5
    width = re.search(r'data-width="(\d+)"', dom)
    assert width is not None and int(width.group(1)) <= 1200
