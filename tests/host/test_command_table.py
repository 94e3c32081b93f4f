"""Adding a command is one row of pumpcore.commands and one facade method: the device dispatcher,
the host client and the CLI pick it up with nothing else changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from proto_helpers import FakePump
from pump_server import PumpServer
from pumpcore import commands, reasons
from pumphost import cli, keys
from pumphost.client import PumpClient
from pumphost.errors import AuthError

BEEP = commands.Command("beep", ("clinician", "patient"), True, (
    commands.Arg("tone_hz", commands.INT, required=True, lo=100, hi=4000, shown="tone_khz",
                 scale=1000),
    commands.Arg("long", commands.BOOL, default=False),
), "beep", "sound the buzzer")


class BeepingPump(FakePump):
    def beep(self, tone_hz: int, long: bool = False) -> tuple[str, dict[str, Any]]:  # the method
        self._call("beep", tone_hz, long)
        return reasons.OK, {"tone_hz": tone_hz}


@pytest.fixture
def beeping(keyset: keys.KeySet, monkeypatch: pytest.MonkeyPatch) -> Iterator[PumpServer]:
    monkeypatch.setattr(commands, "COMMANDS", commands.COMMANDS + (BEEP,))   # the row
    with PumpServer(keyset, pump=BeepingPump()) as s:
        yield s


def test_a_new_row_reaches_dispatcher_client_and_cli(beeping: PumpServer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with PumpClient.open(beeping.url, timeout_s=1.0) as c:
        assert c.beep(440) == {"tone_hz": 440}                      # client: a method per row
        assert c.call("beep", tone_hz=880, long=True) == {"tone_hz": 880}
        with pytest.raises(AuthError) as ei:                         # roles from the row
            c.beep(440, role="readonly")
        assert ei.value.reason == reasons.ROLE_FORBIDDEN
    assert cli.main(["--port", beeping.url, "beep", "--tone-khz", "1.5", "--long"]) == 0
    assert cli.main(["--port", beeping.url, "beep", "--tone-khz", "5"]) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert "--tone-khz: must be 0.1..4" in err
    assert [c for c in beeping.pump.calls if c[0] == "beep"] == [
        ("beep", 440, False), ("beep", 880, True), ("beep", 1500, True)]
    # it changes state: logged with the role that sent it, counter persisted before it ran
    assert beeping.persisted is not None
    with pytest.raises(SystemExit):
        cli.main(["beep", "--help"])
    assert "sound the buzzer" in capsys.readouterr().out
