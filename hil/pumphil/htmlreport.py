"""The project's one HTML report writer: self-contained pages for `itpump simulate --report`, the
HIL suite's report and `itpump campaign report` (DESIGN.md, "one report writer").

A page is one file with nothing outside it: inline CSS, figures embedded as base64 SVG (or PNG)
images from matplotlib, no script, no web font. It is rendered from a Jinja2 template
(``templates/report.html.j2``, autoescaped: every text you pass is escaped; only figures are
embedded as data URIs). The same inputs give the same bytes (matplotlib's SVG metadata date and id
salt are fixed), so a report can be compared across runs.

API::

    from pumphil.htmlreport import Report, Measurement

    rep = Report("Occlusion test", subtitle="emulator, seed 2")
    rep.summary({"runs": 40, "firmware": "0.1.0"})            # key/values under the title
    sec = rep.section("Verdicts", intro="Limits from docs/detectors.md.")
    sec.measurements([                                        # the verdict table (OpenHTF-like)
        Measurement("time to alarm", 48.0, "s", high=120.0),  # pass: within [low, high]
        Measurement("bolus after clearing", 12.5, "uL", high=10.0, note="EN 60601-2-24"),
    ])
    sec.table(["class", "runs"], [["complete", 20]], caption="Runs per class")
    sec.figure(fig, caption="Pressure around the alarm")     # a matplotlib Figure (closed after)
    sec.text("A paragraph."); sec.details("run 7 scenario", toml_text)   # <pre> in a <details>
    rep.provenance(schema_version=1, seed=20261124, firmware="0.1.0 (a1b2c3)",
                   input_hash="sha256:...", extra={"tool": "itpump campaign"})
    rep.write("build/report.html")                           # or rep.render() -> str

- :class:`Measurement`: ``name, value, unit, low, high`` (None = no such limit), ``passed``
  computed as low <= value <= high unless given (e.g. a confidence bound is what is judged);
  ``value`` None is "not measured" and fails. ``Section.measurements`` returns whether all
  passed; ``Report.passed`` is over every measurement on the page (None: there were none).
- Cells of tables may be str, int, float (shown with ``fmt``, default ``{:.4g}``), None (shown
  as an em dash) or :class:`Cell` (text with a CSS class: "pass", "fail", "warn", "muted").
- Figures: a matplotlib Figure (saved as SVG, or PNG with ``fmt="png"``), or SVG text.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

FLOAT_FMT = "{:.4g}"


@dataclass(frozen=True)
class Cell:
    text: str
    cls: str = ""


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float | int | str | None
    unit: str = ""
    low: float | None = None
    high: float | None = None
    passed: bool | None = None      # None: computed from value and limits
    note: str = ""

    @property
    def ok(self) -> bool:
        if self.passed is not None:
            return self.passed
        if self.value is None or isinstance(self.value, str):
            return False
        v = float(self.value)
        return (self.low is None or v >= self.low) and (self.high is None or v <= self.high)


def _text(v: Any, fmt: str = FLOAT_FMT) -> str:
    if v is None:
        return "\u2014"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return fmt.format(v)
    return str(v)


def _cell(v: Any, fmt: str) -> dict[str, str]:
    if isinstance(v, Cell):
        return {"text": v.text, "cls": v.cls}
    return {"text": _text(v, fmt), "cls": "num" if isinstance(v, (int, float))
            and not isinstance(v, bool) else ""}


def figure_uri(fig: Any, fmt: str = "svg", dpi: int = 110) -> str:
    """A matplotlib Figure (closed afterwards) or SVG text -> a data: URI."""
    if isinstance(fig, str):
        return "data:image/svg+xml;base64," + base64.b64encode(fig.encode()).decode()
    import matplotlib
    from matplotlib import pyplot as plt

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "itpump", "svg.fonttype": "path"}):
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
            mime = "image/svg+xml"
        else:
            fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None},
                        bbox_inches="tight")
            mime = "image/png"
    plt.close(fig)
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode()


@dataclass
class Section:
    title: str
    intro: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    _measurements: list[Measurement] = field(default_factory=list)

    def text(self, paragraph: str, cls: str = "") -> None:
        self.blocks.append({"kind": "text", "text": paragraph, "cls": cls})

    def measurements(self, items: Iterable[Measurement], caption: str = "",
                     fmt: str = FLOAT_FMT) -> bool:
        ms = list(items)
        self._measurements += ms
        rows = [{"name": m.name, "value": _text(m.value, fmt), "unit": m.unit,
                 "low": _text(m.low, fmt), "high": _text(m.high, fmt), "ok": m.ok,
                 "note": m.note} for m in ms]
        self.blocks.append({"kind": "measurements", "rows": rows, "caption": caption})
        return all(m.ok for m in ms)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "",
              fmt: str = FLOAT_FMT) -> None:
        self.blocks.append({"kind": "table", "columns": list(columns), "caption": caption,
                            "rows": [[_cell(v, fmt) for v in r] for r in rows]})

    def figure(self, fig: Any, caption: str = "", fmt: str = "svg", alt: str = "") -> None:
        self.blocks.append({"kind": "figure", "uri": figure_uri(fig, fmt), "caption": caption,
                            "alt": alt or caption})

    def details(self, summary: str, text: str) -> None:
        """A collapsed block of preformatted text (a scenario file, a log)."""
        self.blocks.append({"kind": "details", "summary": summary, "text": text})


class Report:
    def __init__(self, title: str, subtitle: str = "",
                 disclaimer: str = "Research and education software, not a medical device: "
                 "figures are simulation or bench results, not clinical evidence.") -> None:
        self.title = title
        self.subtitle = subtitle
        self.disclaimer = disclaimer
        self.summary_items: list[tuple[str, str]] = []
        self.sections: list[Section] = []
        self.footer: list[tuple[str, str]] = []

    def summary(self, items: dict[str, Any] | Iterable[tuple[str, Any]]) -> None:
        pairs = items.items() if isinstance(items, dict) else items
        self.summary_items += [(str(k), _text(v)) for k, v in pairs]

    def section(self, title: str, intro: str = "") -> Section:
        s = Section(title, intro)
        self.sections.append(s)
        return s

    def provenance(self, *, schema_version: int | str, seed: int | None = None,
                   firmware: str | None = None, input_hash: str | None = None,
                   extra: dict[str, Any] | None = None) -> None:
        """The footer: what this page was made from, enough to make it again."""
        items: list[tuple[str, Any]] = [("schema version", schema_version), ("seed", seed),
                                        ("firmware", firmware), ("input hash", input_hash)]
        items += list((extra or {}).items())
        self.footer = [(k, _text(v)) for k, v in items if v is not None]

    @property
    def passed(self) -> bool | None:
        ms = [m for s in self.sections for m in s._measurements]
        return all(m.ok for m in ms) if ms else None

    def render(self) -> str:
        env = Environment(loader=PackageLoader("pumphil", "templates"),
                          autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                          lstrip_blocks=True, keep_trailing_newline=True)
        return env.get_template("report.html.j2").render(rep=self, passed=self.passed)

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.render(), encoding="utf-8")
        return p


__all__ = ["Cell", "Measurement", "Report", "Section", "figure_uri"]
