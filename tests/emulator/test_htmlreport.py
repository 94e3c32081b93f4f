"""The one HTML report writer (pumphil.htmlreport): self-contained, escaped, verdicts computed from
limits, figures embedded, the same bytes for the same inputs."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from pumphil import htmlreport as H


def _page() -> H.Report:
    from matplotlib.figure import Figure

    rep = H.Report("Bench <script>alert(1)</script>", subtitle="emulator & rig")
    rep.summary({"runs": 3, "ratio": 0.12345, "missing": None})
    sec = rep.section("Verdicts", intro="limits from docs")
    ok = sec.measurements([H.Measurement("time to alarm", 48.0, "s", high=120.0),
                           H.Measurement("released", 12.5, "uL", low=0.0, high=10.0,
                                         note="after clearing")])
    assert ok is False
    sec.table(["class", "n", "p"], [["a<b", 2, 0.5], [H.Cell("bad", "fail"), None, 1.0]],
              caption="table")
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot([0, 1], [1, 0])
    sec.figure(fig, caption="a line")
    sec.details("scenario", 'name = "x"\n')
    rep.provenance(schema_version=1, seed=7, firmware="0.1.0", input_hash="sha256:ab",
                   extra={"tool": "test"})
    return rep


def test_page_is_self_contained_escaped_and_judged(tmp_path: Path) -> None:
    html = _page().write(tmp_path / "r.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "a&lt;b" in html
    # nothing outside the file: every src/href is a data: URI, no external stylesheet or script
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(r.startswith("data:image/svg+xml;base64,") for r in refs)
    svg = base64.b64decode(refs[0].split(",", 1)[1]).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "within its limits): <span class=\"verdict fail\">FAIL</span>" in html
    rows = re.findall(r"<tr><td>(time to alarm|released)</td>.*?<td class=\"(pass|fail)\">", html)
    assert rows == [("time to alarm", "pass"), ("released", "fail")]
    assert "<dt>missing</dt><dd>\u2014</dd>" in html and "0.1235" in html
    assert "schema version: 1" in html and "seed: 7" in html and "input hash: sha256:ab" in html
    assert "<details><summary>scenario</summary><pre>name = &#34;x&#34;" in html


def test_same_inputs_same_bytes() -> None:
    assert _page().render() == _page().render()


def test_measurement_limits_and_overrides() -> None:
    M = H.Measurement
    assert M("x", 5, low=5, high=5).ok and not M("x", 4.9, low=5).ok and M("x", 1e9).ok
    assert not M("x", None).ok and not M("x", "n/a").ok
    assert M("x", 99, high=1, passed=True).ok           # judged elsewhere (e.g. a CI bound)
    rep = H.Report("t")
    assert rep.passed is None
    rep.section("s").measurements([M("x", 1, high=2)])
    assert rep.passed is True
