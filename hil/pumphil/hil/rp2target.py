"""The emulated RP2040 as a HIL target (``--rig rp2``): the real MicroPython rp2 port in rp2040js
(pumphil.rp2) running the firmware as `itpump flash` deploys it and provisioned as `itpump
provision` leaves a board, its ADC, stroke feedback and power wired to a plant, and the virtual
instruments (supply, balance, pressure source, switch unit) served on the same plant.

Time is virtual but not free: busy Python on the emulated chip runs at about a quarter of real
time (idle time is skipped), so this target takes the tests that declare at most
``MAX_TEST_MINUTES`` of rig time (``hil_duration``); it cannot hang the firmware on demand
(no ``firmware_hang``). Between advances the chip runs at real-time pace, so the pump answers
the host while the test is not advancing time.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from pumphost import keys
from pumphost.deploy import build_firmware, wait_for_hello

from ..plant import Plant
from ..rp2.image import build_image
from ..rp2.target import Rp2Board
from .config import RigConfig, SafeState, virtual_instruments
from .target import EmulatedRig, Target

DEVICE_ID = "RP2-HIL"
MAX_TEST_MINUTES = 30.0     # rig minutes a test may declare on this target
BOOT_TIMEOUT_S = 120.0      # wall seconds for the first boot (loading the .mpy files)


class Rp2Rig(Target):
    kind = "rp2"
    per_test = True
    realtime = False
    time_scale = float("inf")
    max_test_minutes: float | None = MAX_TEST_MINUTES
    capabilities = frozenset({"virtual_time"})

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._tmp = tempfile.TemporaryDirectory(prefix="itpump-hil-rp2-")
        self.workdir = Path(self._tmp.name)
        self.plant: Plant | None = None
        self.board: Rp2Board | None = None
        self.instruments: Any = None
        # the instruments touch the plant from their server threads; the board's plant requests
        # come from its event thread: the plant locks itself, this orders whole instrument lines
        self.lock = threading.RLock()

    def start(self) -> Rp2Rig:
        from ..instruments import VirtualRig
        keyset = keys.generate(DEVICE_ID)
        key_file = self.workdir / f"{DEVICE_ID}.json"
        keys.save(keyset, key_file, overwrite=True)
        image = build_image(build_firmware(), provision=(DEVICE_ID, keyset.hex_keys()))
        self.plant = Plant(seed=self.seed)
        self.board = Rp2Board(image, plant=self.plant, speed=1.0,
                              workdir=self.workdir / "board").start()
        wait_for_hello(self.board.serial_url, BOOT_TIMEOUT_S)
        b = EmulatedRig.BALANCE
        self.instruments = VirtualRig(self.plant, seed=self.seed, lock=self.lock,
                                      balance_noise_mg=b["balance_noise_mg"],
                                      balance_evaporation_mg_per_h=b[
                                          "balance_evaporation_mg_per_h"],
                                      balance_container_g=b["balance_container_g"]).start()
        res = self.instruments.resources
        self.config = RigConfig(
            name="emulated RP2040 rig", pump_url=self.board.serial_url, key_file=key_file,
            instruments=virtual_instruments(res),
            safe_state=SafeState(), time_scale=1.0)
        return self

    def close(self) -> None:
        try:
            if self.instruments is not None:
                self.instruments.close()
            if self.board is not None:
                self.board.close()
        finally:
            self._tmp.cleanup()

    def advance(self, ms: int) -> None:
        """ms of virtual time on the chip; then the plant's clock (which the instruments read) is
        brought to the chip's. While the supply has cut the chip's power only the plant's time
        passes (the chip counts the time it was off when the supply turns it on again)."""
        assert self.board is not None and self.plant is not None
        if not self.plant.powered:
            with self.lock:
                self.plant.advance_to(self.plant.now_ms + ms)
            return
        reached = self.board.advance(ms)
        with self.lock:
            if reached > self.plant.now_ms:
                self.plant.advance_to(reached)

    def now_ms(self) -> int:
        assert self.board is not None and self.plant is not None
        if not self.plant.powered:
            return int(self.plant.now_ms)
        return self.board.sim_ms()

    def describe(self) -> dict[str, str]:
        out = super().describe()
        out["firmware"] = "MicroPython v1.28.0 RPI_PICO in rp2040js (firmware as .mpy)"
        return out
