"""End to end through the real serial protocol: host client -> socket -> virtual board running the
unchanged firmware -> plant. Boot policy, delivery, tick wrap, watchdog, power cycles, flash."""

from __future__ import annotations

from typing import Any

import powercut
import pytest
import rx_helpers
from pumpcore.clock import from_ymd_hms
from pumpfw.storage import Storage, device_identity
from pumphil.board import BoardReset, VirtualBoard, VirtualClock
from pumphil.emulator import Emulator
from pumphil.flash import Flash
from pumphil.plant import Plant
from pumphost.client import PumpClient
from pumphost.errors import RefusedError

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
MONDAY = from_ymd_hms(2026, 1, 5)


def start_therapy(emu: Emulator, c: PumpClient, rx: dict[str, Any]) -> None:
    c.set_clock(*MONDAY)
    review = c.stage(rx)
    c.commit(review["checksum"], confirm_soft=True)
    c.prime(rx["catheter"]["volume_nl"])
    emu.advance(20 * MIN)
    assert c.status()["state"] == "stopped"
    c.start()


def test_boot_identify_and_status(emu: Emulator, client: PumpClient) -> None:
    hello = client.hello()
    assert hello["device_id"] == emu.device_id
    assert hello["board"] == "emulator" and hello["protocol"] == 2
    st = client.status()
    assert st["state"] == "stopped" and st["alarms"] == []
    assert emu.board.app is not None
    assert emu.board.app.boot_report == {"self_test": None, "state": None, "state_file": "ok",
                                         "reset_cause": "power_on", "security": "ok",
                                         "library": "ok"}
    assert st["library"]["name"] == "itpump example library"      # provisioned as data


def test_a_day_of_therapy_matches_the_schedule_and_the_plant(emu: Emulator, client: PumpClient) -> None:
    start_therapy(emu, client, rx_helpers.morphine_rx())
    s0 = client.status()["strokes"]
    out0 = emu.plant.delivered_to_outlet_nl
    emu.advance(DAY)
    st = client.status()
    strokes = st["strokes"] - s0
    expected_nl = 8 * 20000 + 16 * 30000 + 2 * 25000
    assert strokes * 250 <= expected_nl < strokes * 250 + 250
    assert st["alarms"] == []
    # the plant moved what the firmware commanded (mechanical accuracy +1 %)
    moved = emu.plant.delivered_to_outlet_nl - out0
    assert abs(moved - strokes * 250 * 1.01) < 300


def test_ticks_wrap_after_12_days_without_losing_time(emu: Emulator, client: PumpClient) -> None:
    start_therapy(emu, client, rx_helpers.simple_rx(10000))
    s0 = client.status()["strokes"]
    emu.advance(13 * DAY)
    assert emu.now_ms() > 2**30                     # ticks_ms wrapped on the way
    strokes = client.status()["strokes"] - s0
    assert abs(strokes - 13 * 24 * 40) <= 1         # 10 uL/h = 40 strokes/h


def test_firmware_exception_goes_fail_safe_and_watchdog_resets_into_safe_state(
        emu: Emulator, client: PumpClient) -> None:
    start_therapy(emu, client, rx_helpers.simple_rx(10000))
    emu.advance(HOUR)
    app = emu.board.app
    assert app is not None
    real_advance = app.pump.advance

    def broken(ms: int) -> int:
        raise ZeroDivisionError("injected")

    app.pump.advance = broken  # type: ignore[method-assign]
    emu.advance(MIN)
    assert app.halted                               # the one fail-safe handler ran
    strokes_before = emu.plant.strokes_ok
    emu.advance(10_000)                             # the watchdog is no longer fed
    assert [why for _, why in emu.board.resets] == ["watchdog"]
    assert emu.board.app is not app                 # the board rebooted
    del real_advance
    st = client.status()
    assert st["state"] == "safe_state"
    assert "fault" in [a[0] for a in st["alarms"]]
    emu.advance(HOUR)
    assert emu.plant.strokes_ok == strokes_before   # no delivery after the fault


def test_a_stroke_due_a_full_sleep_after_the_last_feed_does_not_trip_the_watchdog(
        emu: Emulator, client: PumpClient) -> None:
    # 42857 nL/h = a stroke every 21.0 s: the board sleeps 7 s three times and the stroke step
    # starts 7 s after the previous feed; its capture (up to 2.25 s) then crosses the 8.388-s
    # watchdog unless the step feeds on waking. The virtual watchdog fires inside the blocking call.
    start_therapy(emu, client, rx_helpers.simple_rx(42857))
    s0 = client.status()["strokes"]
    emu.advance(6 * HOUR)
    assert emu.board.resets == []
    assert client.status()["strokes"] - s0 >= 6 * 3600 // 21 - 1


def test_the_virtual_watchdog_fires_inside_a_blocking_call(emu: Emulator) -> None:
    board = emu.board
    board.last_feed_ms = board.clock.now_ms
    board.block(board.clock.now_ms, 8388)           # ends exactly at the timeout: still fed
    with pytest.raises(BoardReset):
        board.block(board.clock.now_ms + 6000, 2500)  # would end 100 ms after it fires
    assert board.clock.now_ms == board.last_feed_ms + 8388   # the board stops when it fires


def test_power_cycle_resumes_intact_therapy_and_keeps_counters(
        emu: Emulator, client: PumpClient) -> None:
    start_therapy(emu, client, rx_helpers.morphine_rx())
    emu.advance(2 * HOUR)
    assert client.patient_bolus() is not None
    before = client.status()
    emu.plant.power(False)
    emu.advance(MIN)
    emu.plant.power(True)
    emu.advance(MIN)
    client.reconnect()
    st = client.status()
    assert st["state"] == "running"                 # intact persisted state: therapy restarts
    assert st["program"] == before["program"]
    assert st["patient_bolus"]["delivered"] == 1
    with pytest.raises(RefusedError) as e:
        client.patient_bolus()                      # lockout survived the power cycle
    assert e.value.reason == "lockout"
    counters = client.hello()["counters"]
    assert int(counters["clinician"]) > 0           # accepted counters were persisted


@pytest.mark.parametrize("rate", [1_000_000, 2_000])      # 1 mL/h and 0.048 mL/day
def test_a_power_cut_never_hides_delivery_and_presumes_at_most_the_reservation(
        emu: Emulator, client: PumpClient, rate: int) -> None:
    # Write-ahead reservation (docs/therapy.md "Resets and accounting"): no stroke is made that
    # the last record neither counts nor reserves, and a restore counts the reservation as
    # delivered. So after a cut the counters, the 24-h ledger and the reservoir's "used" never go
    # backwards, and they over-count by at most the reservation: 40 strokes (10 uL) at a high rate,
    # the strokes of 30 min at the highest basal + 1 at a low one.
    rx = rx_helpers.simple_rx(rate)
    rx["drugs"] = [{"name": "midazolam", "conc_ug_per_ml": 100,
                    "hard_ng_per_day": 3_000_000, "soft_ng_per_day": 3_000_000}]
    start_therapy(emu, client, rx)
    bound_nl = min(10_000, (rate * 30 // 60 // 250 + 1) * 250)
    presumed = []
    for offset_ms in (17 * MIN + 4_321, 43 * MIN + 999, 71 * MIN + 12_345):
        emu.advance(offset_ms)
        before = client.status()
        emu.plant.power(False)
        emu.advance(MIN)
        emu.plant.power(True)
        client.reconnect()
        after = client.status()
        assert after["state"] == "running"
        n = after["delivered_nl"] - before["delivered_nl"]
        assert 0 <= n <= bound_nl, (offset_ms, n)
        assert before["reservoir_nl"] - after["reservoir_nl"] == n   # the same strokes, both ways
        assert after["rolling_24h_ng"]["midazolam"] >= before["rolling_24h_ng"]["midazolam"]
        assert after["last_reset"]["cause"] == "power_on"
        presumed.append(after["last_reset"]["presumed_strokes"] * 250)
        assert n <= presumed[-1]                     # what went up is what was presumed
    assert min(presumed) > 0 and max(presumed) <= bound_nl


def _with_flash_damage(emu: Emulator, damage: str) -> None:
    # corrupt: a byte of the record flipped (here the body no longer parses); altered: one digit
    # of the stroke counter changed, a record that still parses and restores (only the integrity
    # line tells); missing: the record removed
    emu.plant.power(False)
    if damage in ("corrupt", "altered"):
        f = emu.flash.open("/state.json", "rb")
        data = bytearray(f.read())
        f.close()
        if damage == "corrupt":
            data[-5] ^= 0x55
        else:
            i = data.index(b'"counters":[') + len(b'"counters":[')
            data[i] = ord("1") if data[i] != ord("1") else ord("2")
        g = emu.flash.open("/state.json", "wb")
        g.write(bytes(data))
        g.close()
    elif damage == "missing":
        emu.flash.remove("/state.json")
    emu.plant.power(True)


@pytest.mark.parametrize("damage", ["corrupt", "altered", "missing"])
def test_damaged_state_enters_safe_state_with_alarm(
        emu: Emulator, client: PumpClient, damage: str) -> None:
    start_therapy(emu, client, rx_helpers.simple_rx(10000))
    emu.advance(HOUR)
    _with_flash_damage(emu, damage)
    emu.advance(MIN)
    client.reconnect()
    st = client.status()
    assert st["state"] == "safe_state"
    assert "state_lost" in [a[0] for a in st["alarms"]]
    strokes = emu.plant.strokes_ok
    emu.advance(HOUR)
    assert emu.plant.strokes_ok == strokes


def test_a_power_cut_during_a_state_save_leaves_the_previous_record(
        emu: Emulator, client: PumpClient) -> None:
    # A command saves the security record (counters), a log entry and the state record (Storage.save: a
    # temporary file, closed, renamed over the record). A cut before any of those flash writes,
    # or in the middle of one (a torn page), leaves the previous record or the new one, never a
    # damaged or missing one, and the firmware boots the previous one. The flash commits every
    # file write at once (as FAT would; littlefs alone commits a file only when it is closed,
    # which would hide an in-place save), so only the rename makes the save atomic.
    emu.flash.commit_each_write = True
    start_therapy(emu, client, rx_helpers.simple_rx(10000))
    emu.advance(HOUR)
    files = ("/state.json", "/security.json")
    identity = device_identity(emu.flash)
    assert identity is not None
    key = identity[1]                               # records are MACed with the device key
    before = [Storage(emu.flash, key).load(f) for f in files]
    save = powercut.Run(base=emu.flash.image_bytes())
    emu.flash.chip.journal = save.journal
    client.suspend(30)
    with emu.lock:                                  # the step that answered has finished saving
        emu.flash.chip.journal = None
    after = [Storage(emu.flash, key).load(f) for f in files]
    assert all(r[0] == "ok" for r in before + after) and before != after
    assert len(save.journal) > 10                  # temporary files written, renames committed
    last_previous = b""
    for k, torn, image in powercut.images(save):
        on_flash = [Storage(Flash(None, data=image), key).load(f) for f in files]
        for name, rec, old, new in zip(files, on_flash, before, after, strict=True):
            assert rec in (old, new), (name, k, torn, rec[0])
        if not torn:    # the new state record appears only with the last write, the rename's
            assert on_flash[0] == before[0], k
            last_previous = image
    board = VirtualBoard(Plant(seed=1), Flash(None, data=last_previous), VirtualClock(0),
                         lambda data, link: None)
    board.power_on()            # the flash right before the rename's commit
    assert board.app is not None
    assert board.app.boot_report["state"] is None
    record = before[0][1]["pump"]
    # the previous record's counters, its reservation counted as delivered (docs/therapy.md)
    assert board.app.pump.status()["strokes"] == record["counters"][0] + record["reserve"]
    assert board.app.pump.state == "running"


def test_reformatted_flash_is_a_fault_not_a_first_boot(emu: Emulator, client: PumpClient) -> None:
    emu.plant.power(False)
    emu.flash.wipe()                                # what rp2 does when a mount fails
    emu.plant.power(True)
    assert emu.board.app is not None
    assert emu.board.app.pump.state == "safe_state"
    assert emu.board.app.boot_report["self_test"] == "no keys provisioned"


def test_state_directory_keeps_the_pump_across_emulator_runs(itpump_home: Any, tmp_path: Any) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state, seed=3) as emu:
        c = PumpClient.open(emu.serial_url, key_file=emu.key_file)
        start_therapy(emu, c, rx_helpers.simple_rx(10000))
        program = c.status()["program"]
        device = emu.device_id
        c.close()
    with Emulator(state_dir=state, seed=3) as emu2:
        assert emu2.device_id == device
        c2 = PumpClient.open(emu2.serial_url)     # keys found under ITPUMP_HOME by device id
        st = c2.status()
        assert st["program"] == program and st["state"] == "running"
        c2.close()


def test_an_acknowledged_command_is_on_flash_before_its_reply_leaves(emu: Emulator,
                                                                       client: PumpClient) -> None:
    # A power cut at the very moment the host reads "ok" must not undo the command: the record
    # of its effect is written before the reply (docs/safety.md, write-ahead). The flash image is
    # taken at every byte the board sends after `stop`; booted, the first one must be stopped.
    from pumphil.plant import Plant
    start_therapy(emu, client, rx_helpers.morphine_rx())
    emu.advance(60 * MIN)
    board = emu.board
    send = board.output
    images: list[bytes] = []

    def output(data: bytes, link: int | None = None) -> None:
        images.append(emu.flash.image_bytes())        # what a cut right now would leave
        send(data, link)

    board.output = output
    try:
        client.stop()
    finally:
        board.output = send
    assert images, "the board sent nothing"
    rebooted = VirtualBoard(Plant(seed=1), Flash(None, data=images[0]), VirtualClock(0),
                            lambda data, link: None)
    rebooted.power_on()
    assert rebooted.app is not None
    assert rebooted.app.pump.status()["state"] == "stopped"
