"""Keysight DAQ970A (or 34980A) relay channels driving the rig's fault valves."""

from __future__ import annotations

from .base import ScpiDriver, channel_list
from .channels import LINE_PRESSURE, VALVES, LineTransducer, ValveChannels


class SwitchUnit(ScpiDriver):
    valves: ValveChannels = VALVES
    transducer: LineTransducer = LINE_PRESSURE

    def close_channels(self, *channels: int) -> None:
        self.write(f"ROUT:CLOS {channel_list(channels)}")

    def open_channels(self, *channels: int) -> None:
        self.write(f"ROUT:OPEN {channel_list(channels)}")

    def closed(self, *channels: int) -> list[bool]:
        reply = self.query(f"ROUT:CLOS? {channel_list(channels)}")
        states = [s.strip() == "1" for s in reply.split(",")]
        if len(states) != len(channels):
            raise ValueError(f"ROUT:CLOS?: {len(states)} states for {len(channels)} channels")
        return states

    def is_closed(self, channel: int) -> bool:
        return self.closed(channel)[0]

    # -- the rig's valves (drivers/channels.py)
    def occlude(self, severity: str = "complete") -> None:
        if severity == "complete":
            self.close_channels(self.valves.occluder_complete)
        elif severity == "partial":
            self.open_channels(self.valves.occluder_complete)
            self.close_channels(self.valves.occluder_partial)
        else:
            raise ValueError("severity must be 'partial' or 'complete'")

    def clear_occlusion(self) -> None:
        self.open_channels(self.valves.occluder_partial, self.valves.occluder_complete)

    def dislodge(self) -> None:
        self.close_channels(self.valves.dislodgement)

    def reseat(self) -> None:
        self.open_channels(self.valves.dislodgement)

    def leak(self) -> None:
        self.close_channels(self.valves.leak)

    def clear_leak(self) -> None:
        self.open_channels(self.valves.leak)

    def open_all_valves(self) -> None:
        v = self.valves
        self.open_channels(v.occluder_partial, v.occluder_complete, v.dislodgement, v.leak)

    # -- the line-pressure transducer on the DAQM901A (drivers/channels.py)
    def measure_volts(self, channel: int) -> float:
        return self.query_float(f"MEAS:VOLT:DC? {channel_list([channel])}")

    def line_pressure_pa(self) -> float:
        """Gauge pressure in the line between pump outlet and occluders (Pa)."""
        return self.transducer.pa(self.measure_volts(self.transducer.channel))
