"""Suite-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def _private_itpump_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Emulators and the CLI keep key files under $ITPUMP_HOME/keys: every test module gets a
    private one, so the suite never writes into the user's ~/.config/itpump."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ITPUMP_HOME", str(tmp_path_factory.mktemp("itpump-home")))
        yield


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures a test recorded with `record_property("figure", text)` (e.g. the rp2 port's heap),
    printed at the end of the run: test output is hidden, and pytest-xdist's workers have no
    terminal of their own; recorded properties reach this process from every worker."""
    lines = [f"{rep.nodeid.split('@')[0]}: {value}"
             for reps in terminalreporter.stats.values() for rep in reps
             if getattr(rep, "when", None) == "call"
             for name, value in getattr(rep, "user_properties", ()) if name == "figure"]
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)
