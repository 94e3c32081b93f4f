"""Virtual Keysight DAQ970A with a DAQM903A 20-channel actuator module in slot 1 (SCPI subset).

Relay channels 101-120 (latching form-C actuators); closing a relay energises a valve on the
catheter phantom line (wiring in drivers/channels.py and docs/rig.md):
  101 partial occluder (R x 10), 102 complete occluder, 103 dislodgement valve, 104 leak valve.
If both occluder channels are closed the occlusion is complete. State changes are pushed to the
plant (occlude/clear_occlusion, dislodge/reseat, leak/clear_leak) only when the derived fault
state changes.

Supported: *IDN? *RST (opens all) *CLS *OPC? SYST:ERR? SYST:CTYP? <slot>,
ROUTe:CLOSe (@list) / ROUTe:OPEN (@list), ROUTe:CLOSe? (@list) / ROUTe:OPEN? (@list) -> "1,0,...".
Channel lists: (@101,103) and ranges (@101:104). A channel outside 101-120: -222 Data out of range.
Slot 2 holds a DAQM901A multiplexer: MEASure:VOLTage[:DC]? [range,resolution,](@201) reads the
line-pressure transducer (drivers/channels.py LINE_PRESSURE) from the plant's noise-free line
pressure now; other channels of slot 2 read 0 V.
"""

from __future__ import annotations

from ..drivers.channels import LINE_PRESSURE, VALVES, LineTransducer, ValveChannels
from ..plant import Plant
from .scpi import (
    ScpiInstrument,
    data_out_of_range,
    missing_parameter,
    parse_channel_list,
    parse_float,
)

CHANNELS = range(101, 121)


class VirtualSwitchUnit(ScpiInstrument):
    idn = "Keysight Technologies,DAQ970A,MY00000002,A.03.02-01.00-03.02-00.02-03.01"

    def __init__(self, plant: Plant, valves: ValveChannels = VALVES, partial_factor: float = 10.0,
                 transducer: LineTransducer = LINE_PRESSURE) -> None:
        super().__init__()
        self.plant = plant
        self.transducer = transducer
        self.valves = valves
        self.partial_factor = partial_factor
        self.closed = {c: False for c in CHANNELS}
        self.command("ROUTe:CLOSe", lambda p, s: self._route(p, True))
        self.command("ROUTe:OPEN", lambda p, s: self._route(p, False))
        self.command("ROUTe:CLOSe?", lambda p, s: self._query(p, True))
        self.command("ROUTe:OPEN?", lambda p, s: self._query(p, False))
        self.command("SYSTem:CTYPe?", self._ctype)
        self.command("MEASure:VOLTage[:DC]?", self._meas_volt)

    def _chans(self, p: list[str]) -> list[int]:
        if not p:
            raise missing_parameter()
        chans = parse_channel_list(p[0])
        for c in chans:
            if c not in self.closed:
                raise data_out_of_range()
        return chans

    def _route(self, p: list[str], close: bool) -> None:
        for c in self._chans(p):
            self.closed[c] = close
        self._apply()

    def _query(self, p: list[str], closed: bool) -> str:
        return ",".join("1" if self.closed[c] == closed else "0" for c in self._chans(p))

    def _ctype(self, p: list[str], s: tuple[str, ...]) -> str:
        if not p:
            raise missing_parameter()
        slot = int(parse_float(p[0]))
        if slot == 1:
            return "Keysight Technologies,DAQM903A,0,1.0"
        if slot == 2:
            return "Keysight Technologies,DAQM901A,0,1.0"
        if slot == 3:
            return "0,0,0,0"
        raise data_out_of_range()

    def _meas_volt(self, p: list[str], s: tuple[str, ...]) -> str:
        if not p:
            raise missing_parameter()
        chans = parse_channel_list(p[-1])
        out = []
        for c in chans:
            if not 201 <= c <= 220:
                raise data_out_of_range()
            pa = self.plant.line_pressure_pa(self.plant.now_ms) if c == self.transducer.channel \
                else None
            out.append(f"{self.transducer.volts(pa) if pa is not None else 0.0:+.9E}")
        return ",".join(out)

    def reset(self) -> None:
        for c in self.closed:
            self.closed[c] = False
        self._apply()

    def _apply(self) -> None:
        v = self.valves
        plant = self.plant
        if self.closed[v.occluder_complete]:
            want: str | None = "complete"
        elif self.closed[v.occluder_partial]:
            want = "partial"
        else:
            want = None
        if want != plant.occlusion:
            if want is None:
                plant.clear_occlusion()
            else:
                plant.occlude(want, self.partial_factor)
        if self.closed[v.dislodgement] != plant.dislodged:
            plant.dislodge() if self.closed[v.dislodgement] else plant.reseat()
        if self.closed[v.leak] != plant.leaking:
            plant.leak() if self.closed[v.leak] else plant.clear_leak()
