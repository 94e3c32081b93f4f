"""Expected battery life per basal rate, from the firmware's own battery model on the emulator.

For each rate, two days of therapy run on the virtual board (the unchanged firmware, its wake-ups,
strokes, pressure captures and sensing windows; 40-mL fills, refilled at the first day boundary
so that 1 mL/h lasts); the firmware's BatteryDetector's second whole day (after priming) is the
day's consumption. Printed per rate: the charge of that day (mAh), the days of service from a
fresh 2.4 Ah cell to end of service (EOS: 2 % reserve) and to the elective replacement indicator
(ERI: 90 days of usage before EOS) at that usage. docs/detectors.md quotes this table.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))

import rx_helpers  # noqa: E402
from pumphil.emulator import Emulator  # noqa: E402
from pumphil.plant.params import PlantParams  # noqa: E402
from pumphil.scenario import DEFAULT_START  # noqa: E402
from pumphost.client import PumpClient, wall_clock_of  # noqa: E402

DAY = 86_400_000
RATES = (("0.048 mL/day", 2_000), ("0.5 mL/day", 20_833), ("1 mL/day", 41_667),
         ("5 mL/day", 208_333), ("1 mL/h", 1_000_000))


def one_day_uah(rate_nl_per_h: int, home: Path) -> tuple[int, int, int]:
    rx = rx_helpers.simple_rx(rate_nl_per_h)
    rx["reservoir"] = {"capacity_nl": 40_000_000, "fill_nl": 40_000_000,     # lasts > 1 day at 1 mL/h
                       "low_alert_nl": 2_000_000, "empty_nl": 500_000}
    rx["drugs"] = [{"name": "clonidine", "conc_ug_per_ml": 10,
                    "hard_ng_per_day": 1_000_000, "soft_ng_per_day": 1_000_000}]
    plant = PlantParams(reservoir_capacity_nl=40_000_000.0, reservoir_fill_nl=40_000_000.0)
    with Emulator(state_dir=home / f"r{rate_nl_per_h}", seed=1, plant_params=plant) as emu:
        with PumpClient.open(emu.serial_url, key_file=emu.key_file, timeout_s=10.0) as c:
            c.set_clock(*wall_clock_of(DEFAULT_START))
            review = c.stage(rx)
            c.commit(review["checksum"], confirm_soft=True)
            c.prime(rx["catheter"]["volume_nl"])
            emu.advance(30 * 60_000)
            c.start()
            emu.advance(DAY - 40 * 60_000)       # to the battery model's first day boundary
            c.stop()                             # a full reservoir for the measured day
            c.refill(rx["reservoir"]["fill_nl"])
            emu.plant.refill(rx["reservoir"]["fill_nl"])
            c.start()
            emu.advance(DAY + 60 * 60_000)       # the second whole day: after priming
            assert emu.board.app is not None
            bat = emu.board.app.supervisor.battery
            assert bat.days_recorded >= 2
            usage = bat.days_uah[(bat.day_idx - 1) % len(bat.days_uah)]
            left = bat.capacity_uah - bat.eos_reserve_uah
            return usage, left // usage, left // usage - 90


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ITPUMP_HOME"] = tmp
        print(f"{'basal rate':>14} {'mAh/day':>8} {'days to EOS':>12} {'days to ERI':>12}")
        for label, rate in RATES:
            usage, eos, eri = one_day_uah(rate, Path(tmp))
            print(f"{label:>14} {usage / 1000:8.2f} {eos:12d} {max(0, eri):12d}")
