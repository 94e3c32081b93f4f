"""Virtual Keysight E36312A triple-output DC power supply (SCPI subset, raw socket).

Channel ``board_channel`` (default 1: 6 V / 5 A) feeds the board in place of its cell: output ON at
>= ``brownout_v`` powers the plant (``Plant.power(True)``, ``Plant.set_external_supply(mV)``), OFF
unpowers it. MEAS:CURR? returns the plant's instantaneous board current (sleep, stroke and wake-up
pulses), limited by the channel's current setting. Channels 2 and 3 (25 V / 1 A) have no load.

Supported: *IDN? *RST *CLS *OPC? SYST:ERR? INST[:SEL] CHn / INST:NSEL n (and queries),
[SOUR:]VOLT[:LEV][:IMM][:AMPL] <v>[,(@list)] and ? [(@list)], same for CURR,
OUTP[:STAT] ON|OFF|1|0[,(@list)] and ? [(@list)], MEAS[:SCAL]:VOLT[:DC]? / MEAS[:SCAL]:CURR[:DC]?
[(@list)]. Numbers answer in the E36312A's "+3.60000000E+00" form; lists answer comma-separated.
"""

from __future__ import annotations

from ..plant import Plant
from .scpi import (
    ScpiError,
    ScpiInstrument,
    data_out_of_range,
    missing_parameter,
    parse_bool,
    parse_channel_list,
    parse_float,
)

# (max volts, max amps) per channel: E36312A ratings incl. the 3 % over-range the unit accepts
RATINGS = {1: (6.18, 5.15), 2: (25.75, 1.03), 3: (25.75, 1.03)}


def _num(x: float) -> str:
    return f"{x:+.8E}"


class VirtualPowerSupply(ScpiInstrument):
    idn = "Keysight Technologies,E36312A,MY00000001,2.1.0-1.0.4-1.12"

    def __init__(self, plant: Plant, board_channel: int = 1, voltage_v: float = 3.6,
                 current_a: float = 0.5, output_on: bool = True, brownout_v: float = 1.8,
                 powers_board: bool = True) -> None:
        super().__init__()
        self.plant = plant
        # False: the board runs on its own cell and the supply has no load (nothing is coupled)
        self.powers_board = powers_board
        self.board_channel = board_channel
        self.brownout_v = brownout_v
        self.selected = 1
        self.volt = {1: 0.0, 2: 0.0, 3: 0.0}
        self.curr = {1: RATINGS[1][1], 2: RATINGS[2][1], 3: RATINGS[3][1]}
        self.out = {1: False, 2: False, 3: False}
        self.volt[board_channel] = voltage_v
        self.curr[board_channel] = current_a
        self.out[board_channel] = output_on
        self._couple()
        self.command("INSTrument[:SELect]", self._inst_sel)
        self.command("INSTrument[:SELect]?", lambda p, s: f"CH{self.selected}")
        self.command("INSTrument:NSELect", self._inst_nsel)
        self.command("INSTrument:NSELect?", lambda p, s: str(self.selected))
        self.command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._set(self.volt, 0))
        self.command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]?", self._get(self.volt))
        self.command("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", self._set(self.curr, 1))
        self.command("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]?", self._get(self.curr))
        self.command("OUTPut[:STATe]", self._outp)
        self.command("OUTPut[:STATe]?", lambda p, s: ",".join(
            "1" if self.out[c] else "0" for c in self._chans(p, 0)))
        self.command("MEASure[:SCALar]:VOLTage[:DC]?", lambda p, s: ",".join(
            _num(self.measure_voltage(c)) for c in self._chans(p, 0)))
        self.command("MEASure[:SCALar]:CURRent[:DC]?", lambda p, s: ",".join(
            _num(self.measure_current(c)) for c in self._chans(p, 0)))

    # -- coupling
    def _couple(self) -> None:
        if not self.powers_board:
            return
        ch = self.board_channel
        on = self.out[ch] and self.volt[ch] >= self.brownout_v
        if on:
            self.plant.set_external_supply(self.volt[ch] * 1000.0)
            self.plant.power(True)
        else:
            self.plant.power(False)
            self.plant.set_external_supply(None)

    def measure_voltage(self, ch: int) -> float:
        return self.volt[ch] if self.out[ch] else 0.0

    def measure_current(self, ch: int) -> float:
        if not self.out[ch] or ch != self.board_channel or not self.powers_board:
            return 0.0
        return min(self.plant.current_ma() / 1000.0, self.curr[ch])

    def reset(self) -> None:
        self.selected = 1
        for ch in (1, 2, 3):
            self.volt[ch] = 0.0
            self.curr[ch] = RATINGS[ch][1]
            self.out[ch] = False
        self._couple()

    # -- parsing helpers
    def _chans(self, params: list[str], index: int) -> list[int]:
        if len(params) > index and params[index]:
            chans = parse_channel_list(params[index])
            for c in chans:
                if c not in RATINGS:
                    raise data_out_of_range()
            return chans
        return [self.selected]

    def _inst_sel(self, p: list[str], s: tuple[str, ...]) -> None:
        if not p:
            raise missing_parameter()
        name = p[0].strip().upper()
        if name not in ("CH1", "CH2", "CH3"):
            raise ScpiError(-224, "Illegal parameter value")
        self.selected = int(name[2])

    def _inst_nsel(self, p: list[str], s: tuple[str, ...]) -> None:
        if not p:
            raise missing_parameter()
        n = int(parse_float(p[0]))
        if n not in RATINGS:
            raise data_out_of_range()
        self.selected = n

    def _set(self, table: dict[int, float], rating_index: int):  # type: ignore[no-untyped-def]
        def handler(p: list[str], s: tuple[str, ...]) -> None:
            if not p:
                raise missing_parameter()
            chans = self._chans(p, 1)
            for c in chans:
                top = RATINGS[c][rating_index]
                v = parse_float(p[0], {"MINIMUM": 0.0 if rating_index == 0 else 0.002,
                                       "MAXIMUM": top})
                if not (0.0 <= v <= top):
                    raise data_out_of_range()
            for c in chans:
                table[c] = parse_float(p[0], {"MINIMUM": 0.0 if rating_index == 0 else 0.002,
                                              "MAXIMUM": RATINGS[c][rating_index]})
            if self.board_channel in chans:
                self._couple()

        return handler

    def _get(self, table: dict[int, float]):  # type: ignore[no-untyped-def]
        return lambda p, s: ",".join(_num(table[c]) for c in self._chans(p, 0))

    def _outp(self, p: list[str], s: tuple[str, ...]) -> None:
        if not p:
            raise missing_parameter()
        on = parse_bool(p[0])
        chans = self._chans(p, 1)
        for c in chans:
            self.out[c] = on
        if self.board_channel in chans:
            self._couple()
