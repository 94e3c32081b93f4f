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
