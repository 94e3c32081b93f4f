"""The event log stored on flash, read over the protocol (`log_stored`, `itpump log --stored`):
every entry the pump keeps, across resets, paged, judged against the log files themselves read
from the emulator's littlefs image."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rx_helpers
from pumpcore.clock import from_ymd_hms
from pumpfw import board as fw_board
from pumphil.emulator import Emulator
from pumphost import cli
from pumphost.client import PumpClient

MIN = 60_000


def _files(emu: Emulator) -> list[dict[str, Any]]:
    """The entries of /log3.txt../log0.txt (oldest first), parsed here, a torn line skipped."""
    out = []
    with emu.lock:
        for i in range(fw_board.LOG_FILES - 1, -1, -1):
            try:
                with emu.flash.open(f"/log{i}.txt", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for line in data.split(b"\n"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def cut(emu: Emulator, off_ms: int) -> None:
    emu.plant.power(False)
    emu.advance(off_ms)
    emu.plant.power(True)


def _history(emu: Emulator, c: PumpClient) -> None:
    c.set_clock(*from_ymd_hms(2026, 1, 5, 8))
    rx = rx_helpers.morphine_rx()
    c.commit(c.stage(rx)["checksum"], confirm_soft=True)
    c.prime(rx["catheter"]["volume_nl"])
    emu.advance(20 * MIN)
    c.start()
    emu.advance(30 * MIN)
    for _ in range(2):                      # two power cuts: the RAM ring starts again each time
        cut(emu, MIN)
        emu.advance(2 * MIN)
        c.reconnect()


def test_the_stored_log_has_every_entry_across_resets_in_order(emu: Emulator,
                                                              client: PumpClient) -> None:
    _history(emu, client)
    stored = client.log_stored_all()
    assert [e for _, e in stored] == _files(emu)              # all of it, in file order
    assert len(stored) > 20                                    # many pages of 1.7 KB
    positions = [tuple(p) for p, _ in stored]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    boots = [e for _, e in stored if e.get("kind") == "boot"]
    assert [b["data"]["reset_cause"] for b in boots] == ["power_on"] * 3
    ram = [e for _, e in client.log_all(0)]
    assert sum(e.get("kind") == "boot" for e in ram) == 1      # the ring holds this boot only
    # paging from a position: what follows it, nothing before
    p, _ = stored[len(stored) // 2]
    rest = client.log_stored_all(p[0], p[1])
    assert rest == stored[len(stored) // 2 + 1:]


def test_a_torn_last_line_is_skipped_and_the_rest_is_read(emu: Emulator,
                                                          client: PumpClient) -> None:
    _history(emu, client)
    before = client.log_stored_all()
    emu.plant.power(False)
    with emu.lock:
        with emu.flash.open("/log0.txt", "ab") as f:
            f.write(b'{"seq": 99999, "kind": "alarm", "co')           # cut mid-write
        emu.flash.sync()
    emu.plant.power(True)
    emu.advance(MIN)
    after = client.log_stored_all()
    assert [e for _, e in after[:len(before)]] == [e for _, e in before]
    assert not any(e.get("seq") == 99999 for _, e in after)
    assert not any(e.get("kind") == "unreadable" for _, e in after)   # no entry merged into it
    positions = [tuple(p) for p, _ in after]
    assert positions == sorted(positions)
    assert [e for _, e in after if e.get("kind") == "boot"][-1]["data"]["reset_cause"] \
        == "power_on"


def test_itpump_log_stored_filters_by_kind_and_since(emu: Emulator, client: PumpClient,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _history(emu, client)
    key = ["--port", emu.serial_url, "--key-file", str(emu.key_file), "--json"]
    assert cli.main([*key, "log", "--stored", "--kind", "boot"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in rows] == ["boot"] * 3
    second = rows[1]["seq"]
    assert cli.main([*key, "log", "--stored", "--since", str(second)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r.get("seq", second + 1) > second for r in rows)
    assert sum(r["kind"] == "boot" for r in rows) == 1
    assert cli.main([*key, "log", "--stored", "--kind", "command", "--by-role", "clinician"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["cmd"] for r in rows} >= {"set_clock", "commit", "prime", "start"}


def test_numbering_continues_after_entries_the_state_record_missed(emu: Emulator,
                                                                  client: PumpClient) -> None:
    """A cut between the log's append and the state record leaves logged numbers the record's
    counter does not know: the pump numbers on after them, so positions never repeat."""
    _history(emu, client)
    last = max(e["seq"] for _, e in client.log_stored_all() if "seq" in e)
    emu.plant.power(False)
    with emu.lock:
        with emu.flash.open("/log0.txt", "ab") as f:
            f.write(json.dumps({"seq": last + 5, "up_s": 0, "day": -1, "ms": -1,
                                "kind": "alarm_raised", "code": "occlusion",
                                "data": {"priority": "high"}}).encode() + b"\n")
        emu.flash.sync()
    emu.plant.power(True)
    emu.advance(MIN)
    client.reconnect()
    stored = client.log_stored_all()
    after = [e["seq"] for _, e in stored if "seq" in e and e["seq"] != last + 5]
    assert after == sorted(after) and len(set(after)) == len(after)
    assert min(s for s in after if s > last) > last + 5
    positions = [tuple(p) for p, _ in stored]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
