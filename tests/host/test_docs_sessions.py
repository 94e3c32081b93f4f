"""The terminal sessions in docs/cli.md and docs/prescription.md are real: every ```console block's
`$ itpump ...` lines run here, in order, against one fresh emulator per page (the unchanged
firmware with the example library, time advanced only by `$ # advance N min` lines), and what
they print must be what the page shows. ITPUMP_DOCS_WRITE=1 rewrites the pages with the real
output instead (then review the diff)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest
from pumphil.emulator import Emulator
from pumphost import cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "docs" / "cli.md", ROOT / "docs" / "prescription.md"]
BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
DEVICE = "EMU-D0C5D0C5D0C5"          # the device id the pages show
WRITE = os.environ.get("ITPUMP_DOCS_WRITE") == "1"


def _run(argv: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    text = out.getvalue() + err.getvalue()
    return text + (f"[exit {code}]\n" if code else "")


def _session(page: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(the page as it is, the page with every block's outputs as they really are)."""
    doc = page.read_text()
    monkeypatch.setenv("ITPUMP_HOME", str(home))
    monkeypatch.chdir(ROOT)
    with Emulator() as emu:
        monkeypatch.setenv("ITPUMP_PORT", emu.serial_url)

        def block(m: re.Match[str]) -> str:
            lines = m.group(1).splitlines()
            out: list[str] = []
            for line in lines:
                if not line.startswith("$ "):
                    continue
                out.append(line)
                cmd = line[2:]
                adv = re.fullmatch(r"# advance (\d+) min", cmd)
                if adv:
                    emu.advance(int(adv.group(1)) * 60000)
                    continue
                if cmd.startswith("#"):
                    continue
                argv = shlex.split(cmd)
                assert argv[0] == "itpump", line
                text = _run(argv[1:]).replace(emu.device_id, DEVICE)
                out.extend(text.rstrip("\n").splitlines())
            return "```console\n" + "\n".join(out) + "\n```"

        real = BLOCK.sub(block, doc)
    return doc, real


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_documented_sessions_are_real(page: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    doc, real = _session(page, tmp_path / "home", monkeypatch)
    assert BLOCK.search(doc), f"{page.name} has no console session"
    if WRITE:
        page.write_text(real)
    assert doc == real, f"{page.name}: run ITPUMP_DOCS_WRITE=1 pytest {__file__} and review"
