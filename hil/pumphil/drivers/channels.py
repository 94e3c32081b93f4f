"""Rig wiring shared by the switch-unit driver, the virtual switch unit and docs/rig.md.

Keysight DAQ970A, slot 1 = DAQM903A 20-channel actuator/general-purpose switch: channels 101-120.
Each channel switches 24 V to a normally-open solenoid/pinch valve on the catheter phantom line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValveChannels:
    """Which relay drives which fault valve (close the relay = inject the fault)."""

    occluder_partial: int = 101  # pinch valve with a restrictor: R x 10 (partial occlusion)
    occluder_complete: int = 102  # pinch valve fully closed at the tip (complete distal occlusion)
    dislodgement: int = 103  # 3-way valve: tip line from the CSF phantom chamber to the tissue chamber
    leak: int = 104  # opens a side port near the pump outlet (leak/disconnection)


VALVES = ValveChannels()


@dataclass(frozen=True)
class LineTransducer:
    """The rig's line-pressure transducer (between the pump outlet and the occluders), read by
    the DAQ970A's DAQM901A multiplexer in slot 2 as a DC voltage: a ratiometric 0-200 kPa gauge
    sensor, 0.5 V at 0 Pa to 4.5 V at 200 kPa (e.g. Honeywell MLH/PX3 class)."""

    channel: int = 201
    volts_at_zero: float = 0.5
    volts_per_pa: float = 4.0 / 200_000.0

    def pa(self, volts: float) -> float:
        return (volts - self.volts_at_zero) / self.volts_per_pa

    def volts(self, pa: float) -> float:
        return self.volts_at_zero + pa * self.volts_per_pa


LINE_PRESSURE = LineTransducer()
