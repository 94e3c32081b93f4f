"""The pump on the real rp2 port: the firmware as `itpump flash` deploys it (.mpy, provisioned),
wired to the project's plant (pressure and cell voltage on the ADC, strokes and their feedback,
the bolus button), driven through PumpClient over the USB-CDC bridge.

One board for the module, tests in file order (each leaves the board as the next expects): boot,
a short therapy with a patient bolus from the button, a hang that
the watchdog resets (therapy resumes), a power cut (state read back), an unexpected exception
(fail-safe, watchdog, safe state), a sensor fault found by the boot self-test, and the HAL, the
reset causes and the heap on the real port. (Three unexpected resets within an hour latch the
reset_loop alarm: the sequence is ordered so that the resumptions it checks come first.)"""

from __future__ import annotations

import ast
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rx_helpers
from pumpfw.storage import OK, STATE, Storage, device_identity
from pumphil.board import fw_board
from pumphil.plant import Plant
from pumphil.rp2.image import build_image
from pumphil.rp2.target import PRESSURE_CH, Rp2Board
from pumphost import keys
from pumphost.client import PumpClient
from pumphost.deploy import Board, FirmwareBuild
from pumphost.errors import RefusedError
from rp2_helpers import repl

# one board, tests in file order: the whole module on one pytest-xdist worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("rp2-pump")

DEVICE_ID = "RP2-PUMP-1"
MIN = 60_000
MONDAY_8AM = (9500, 8 * 3600 * 1000)     # wall clock: day 9500 since 2000-01-01, 08:00


def rp2_rx() -> dict[str, Any]:
    """Morphine at 30 uL/h (a stroke every 30 s), a 2-uL catheter (8 strokes to prime), and a
    patient bolus of 1 uL over 1 min with a 5-min lockout: a therapy that shows every part in
    minutes of virtual time."""
    rx = rx_helpers.simple_rx(30_000)
    rx["catheter"] = {"volume_nl": 2_000}
    rx["patient"] = {"volume_nl": 1_000, "duration_ms": MIN, "lockout_ms": 5 * MIN,
                     "max_per_24h": 4}
    return rx


@pytest.fixture(scope="module")
def plant() -> Plant:
    return Plant(seed=7)


@pytest.fixture(scope="module")
def board(fw_build: FirmwareBuild, plant: Plant) -> Iterator[Rp2Board]:
    keyset = keys.generate(DEVICE_ID)
    keys.save(keyset, keys.default_key_path(DEVICE_ID))
    image = build_image(fw_build, provision=(DEVICE_ID, keyset.hex_keys()))
    with Rp2Board(image, plant=plant, speed=1.0) as b:
        yield b


@pytest.fixture(scope="module")
def client(board: Rp2Board) -> Iterator[PumpClient]:
    c = PumpClient.open(board.serial_url, timeout_s=10.0, retries=3, reconnect_s=30.0)
    try:
        yield c
    finally:
        c.close()


BOOTED = '"kind":"boot"'       # the application's boot event line on the console


def wait_booted(board: Rp2Board, since: int) -> None:
    """Until the application printed its boot event after console offset since."""
    board.wait_console(BOOTED, since)


def test_boot_identity_and_self_test(board: Rp2Board, client: PumpClient,
                                     fw_build: FirmwareBuild) -> None:
    hello = client.hello()
    assert hello["device_id"] == DEVICE_ID and hello["firmware"] == fw_build.firmware_string
    st = client.status()
    assert st["state"] == "stopped" and st["alarms"] == []
    boot = [e for _, e in client.log_all(0) if e.get("kind") == "boot"]
    assert boot and boot[-1]["data"]["self_test"] is None     # PicoHal.self_test passed


def test_priming_makes_every_stroke_it_counts(board: Rp2Board, client: PumpClient,
                                              plant: Plant) -> None:
    client.set_clock(*MONDAY_8AM)
    rx = rp2_rx()
    review = client.stage(rx)
    client.commit(review["checksum"])
    strokes0 = plant.strokes_ok
    client.prime(rx["catheter"]["volume_nl"])
    board.advance(2 * MIN)                                   # priming
    st = client.status()
    assert st["catheter_primed"] is True and st["strokes"] == 8   # 2 uL = 8 strokes of 250 nL
    assert plant.strokes_ok - strokes0 == st["strokes"]


def test_a_short_therapy_and_a_patient_bolus_from_the_button(
        board: Rp2Board, client: PumpClient, plant: Plant) -> None:
    st = client.status()
    assert st["catheter_primed"] is True
    client.start()
    s0, p0 = st["strokes"], plant.strokes_ok
    board.advance(3 * MIN + 10_000)                          # the lockout from commit runs out
    st = client.status()
    assert st["lockout_remaining_ms"] == 0
    assert st["state"] == "running"
    basal = st["strokes"] - s0
    assert 5 <= basal <= 7                                   # 30 uL/h: one every 30 s
    assert plant.strokes_ok - p0 == basal                    # every stroke reached the plant
    board.press_button()                                     # the patient's own button
    board.advance(MIN + 5_000)                               # the bolus runs 1 min
    st = client.status()
    assert st["patient_bolus"]["delivered"] == 1
    assert st["strokes"] - s0 - basal >= 4                   # 1 uL of bolus on top of basal
    assert plant.strokes_ok - p0 == st["strokes"] - s0
    with pytest.raises(RefusedError) as e:
        client.patient_bolus()                               # the lockout holds
    assert e.value.reason == "lockout"


def test_a_hung_loop_is_reset_by_the_watchdog_and_therapy_resumes(
        board: Rp2Board, client: PumpClient, plant: Plant) -> None:
    before = client.status()
    # Ctrl-C on the USB-CDC stops main.py: the board sits at the REPL and nothing feeds the
    # watchdog, as if the loop hung
    client.close()
    mark = len(board.console())
    with socket.create_connection(("127.0.0.1", board.port)) as s:
        s.sendall(b"\x03")
    board.advance(12_000)
    assert [why for _, why in board.resets] == ["watchdog"]
    wait_booted(board, mark)
    strokes = plant.strokes_ok
    board.advance(MIN)
    client.reconnect()
    st = client.status()
    assert st["state"] == "running" and st["program"] == before["program"]   # boot policy
    assert plant.strokes_ok > strokes                                        # delivering again
    assert st["patient_bolus"]["delivered"] == 1                             # history kept
    assert 0 < st["lockout_remaining_ms"] < before["lockout_remaining_ms"]   # lockout kept
    assert st["delivered_nl"] >= before["delivered_nl"] - 10_000             # <= 10 uL lost (H14)


def test_a_power_cut_restores_the_persisted_state(board: Rp2Board, client: PumpClient,
                                                  plant: Plant) -> None:
    board.advance(MIN)
    before = client.status()
    mark = len(board.console())
    board.power_cut(off_ms=MIN)
    wait_booted(board, mark)
    client.reconnect()
    st = client.status()
    assert st["state"] == "running" and st["program"] == before["program"]
    # the record's write-ahead reservation (<= 10 uL) is presumed delivered after a reset
    # (docs/therapy.md): the counters never go back, and move on by at most the reservation
    assert 0 <= st["delivered_nl"] - before["delivered_nl"] <= 10_000
    assert st["patient_bolus"]["delivered"] == 1
    # the state record as the board programmed it into its flash, read with the firmware's code
    flash = board.dump_flash()
    ident = device_identity(flash)
    assert ident is not None and ident[0] == DEVICE_ID
    code, snap = Storage(flash, ident[1]).load(STATE)      # MACed with the device key
    assert code == OK                                 # its sha256 line matches its body
    rec = snap["pump"]
    assert rec["state"] == "running" and rec["rx"]["basal"] == rp2_rx()["basal"]
    _, delivered_nl, _, pb_delivered = rec["counters"][:4]
    assert pb_delivered == 1 and delivered_nl <= st["delivered_nl"] <= delivered_nl + 10_000


def test_an_unexpected_exception_goes_fail_safe_and_the_watchdog_resets_into_safe_state(
        board: Rp2Board, client: PumpClient, plant: Plant) -> None:
    client.close()
    b = Board(board.open_pty(), timeout_s=20.0)
    try:
        b.enter()
        # the application again, with a core that raises on its next step; the session's
        # watchdog feeder stops first, so only the application feeds it
        b.exec("_itpump_tmr.deinit()")
        # App.run()'s loop without its boot (the application is booted already)
        b.t.exec_raw_no_follow(
            "def _broken(ms):\n raise ZeroDivisionError('injected')\n"
            "app.pump.advance = _broken\n"
            "app.due_ms = 0\n"            # the next step is a full one: the fault comes at once
            "while True:\n"
            " if app.halted:\n  hal.wait(1000)\n  continue\n"
            " try:\n  ms = app.step()\n"
            " except Exception as exc:\n  app.fail_safe(exc)\n  continue\n"
            " hal.wait(ms)\n")
        resets = len(board.resets)
        # the next step (made a full one) raises; 8.4 s later the watchdog fires
        for _ in range(12):
            board.advance(10_000)
            if len(board.resets) > resets:
                break
        assert [why for _, why in board.resets[resets:]] == ["watchdog"]
        # catch the rebooted board at once, before its application starts
        b.enter()
        cause = ast.literal_eval(b.exec("from pumpfw.resetcause import reset_cause\n"
                                        "print(repr(reset_cause()))").decode())
        mark = len(board.console())
        b.exec("_itpump_tmr.deinit()")
        b.t.exec_raw_no_follow("import main")    # the application, as main.py starts it
    finally:
        b.close()
    assert cause == "watchdog"
    wait_booted(board, mark)
    strokes = plant.strokes_ok
    board.advance(2 * MIN)
    assert plant.strokes_ok == strokes                     # no delivery after the fault
    client.reconnect()
    st = client.status()
    assert st["state"] == "safe_state"
    assert "fault" in [a[0] for a in st["alarms"]]


def test_a_disconnected_pressure_sensor_fails_the_boot_self_test(
        board: Rp2Board, client: PumpClient) -> None:
    board.adc_override[PRESSURE_CH] = 0                    # the sensor's line on its pull-down
    mark = len(board.console())
    board.power_cut(off_ms=10_000)
    wait_booted(board, mark)
    client.reconnect()
    st = client.status()
    assert st["state"] == "safe_state"
    assert "self_test" in [a[0] for a in st["alarms"]]
    boot = [e for _, e in client.log_all(0) if e.get("kind") == "boot"]
    assert boot[-1]["data"]["self_test"] == "pressure sensor out of range"
    assert fw_board.PRESSURE_OFFSET_PA < 0                 # raw 0 is below any real pressure


def test_the_hal_on_the_real_port_reset_causes_and_the_heap(
        board: Rp2Board, client: PumpClient, report: Any) -> None:
    # the board was just powered on (the sensor-fault test's power cut)
    client.close()
    with repl(board) as b:
        out = b.exec(
            "import gc\nfrom pumpfw import hal as H\n"
            "print(repr([n for n in dir(H.Hal) if not n.startswith('_') "
            "and not hasattr(hal, n)]))\n"
            "print(repr(hal.reset_cause()))\n"
            "gc.collect()\nprint(gc.mem_alloc(), gc.mem_free())\n").decode().split("\n")
        missing, cause = ast.literal_eval(out[0]), ast.literal_eval(out[1])
        alloc, free = map(int, out[2].split())
        # a MicroPython soft reset (Ctrl-D) leaves the chip and its armed watchdog running
        b.t.enter_raw_repl(soft_reset=True)
        b.exec("import machine\n_w = machine.WDT(timeout=8388)\n"
               "_t = machine.Timer(period=1000, callback=lambda t: _w.feed())")
        soft = ast.literal_eval(b.exec("from pumpfw.resetcause import reset_cause\n"
                                       "print(repr(reset_cause()))").decode())
    assert missing == []                # the running PicoHal has every call of pumpfw.hal.Hal
    assert cause == "power_on" and soft == "soft"
    report(f"after a boot with its program restored (firmware as .mpy): gc.mem_alloc() {alloc} B "
           f"live, gc.mem_free() {free} B")
    assert alloc + free > 200_000 and free > 40_000


def test_console_is_kept(board: Rp2Board, tmp_path: Path) -> None:
    assert "chip reset (watchdog)" in board.console()
