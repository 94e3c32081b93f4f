"""Virtual CSF phantom: baseline pressure + cardiac and respiratory pulsation (custom SCPI).

No off-the-shelf instrument produces CSF-like pulsation; the rig's phantom is a closed chamber
whose baseline is held by a pressure controller (e.g. a Druck PACE5000) and whose pulsation comes
from a voice-coil piston driven by a two-tone waveform, behind one SCPI front end (docs/rig.md).
All pressures are gauge Pa, frequencies Hz.

Supported: *IDN? *RST *CLS *OPC? SYST:ERR?
  [SOURce:]PRESsure[:LEVel][:IMMediate][:AMPLitude] <Pa>  (-1000..10000) and ?
  [SOURce:]PULSation:CARDiac:AMPLitude <Pa> (0..1000) and ?; ...:CARDiac:FREQuency <Hz> (0.8..2.0) and ?
  [SOURce:]PULSation:RESPiratory:AMPLitude <Pa> (0..1000) and ?; ...:FREQuency <Hz> (0.15..0.5) and ?
  OUTPut[:STATe] ON|OFF and ?   (OFF = chamber vented: 0 Pa, no pulsation)
  MEASure:PRESsure?  chamber pressure now (Pa, "%.1f"), what the phantom's own gauge reads
  UNIT:PRESsure?  -> PA (the only unit; UNIT:PRES PA accepted, others: -224)
*RST: baseline 1300 Pa, cardiac 150 Pa at 1.2 Hz, respiratory 100 Pa at 0.25 Hz, output OFF.
Settings are pushed to the plant (Plant.set_csf) whenever they or the output state change.
"""

from __future__ import annotations

import math

from ..plant import Plant
from .scpi import (
    ScpiInstrument,
    data_out_of_range,
    illegal_parameter,
    missing_parameter,
    parse_bool,
    parse_float,
)

LIMITS = {
    "baseline": (-1000.0, 10000.0),
    "card_amp": (0.0, 1000.0),
    "card_hz": (0.8, 2.0),
    "resp_amp": (0.0, 1000.0),
    "resp_hz": (0.15, 0.5),
}
DEFAULTS = {"baseline": 1300.0, "card_amp": 150.0, "card_hz": 1.2, "resp_amp": 100.0,
            "resp_hz": 0.25}


class VirtualPressureSource(ScpiInstrument):
    idn = "itpump,CSF-PHANTOM-1,PH0001,1.0"

    def __init__(self, plant: Plant, output_on: bool = True) -> None:
        super().__init__()
        self.plant = plant
        # start from the plant's own CSF figures (the bench is already set up)
        self.settings = {
            "baseline": plant.csf_baseline_pa,
            "card_amp": plant.cardiac_amplitude_pa,
            "card_hz": plant.cardiac_hz,
            "resp_amp": plant.respiratory_amplitude_pa,
            "resp_hz": plant.respiratory_hz,
        }
        self.output = output_on
        self._push()
        for key, header in (
            ("baseline", "[SOURce:]PRESsure[:LEVel][:IMMediate][:AMPLitude]"),
            ("card_amp", "[SOURce:]PULSation:CARDiac:AMPLitude"),
            ("card_hz", "[SOURce:]PULSation:CARDiac:FREQuency"),
            ("resp_amp", "[SOURce:]PULSation:RESPiratory:AMPLitude"),
            ("resp_hz", "[SOURce:]PULSation:RESPiratory:FREQuency"),
        ):
            self.command(header, self._setter(key))
            self.command(header + "?", self._getter(key))
        self.command("OUTPut[:STATe]", self._outp)
        self.command("OUTPut[:STATe]?", lambda p, s: "1" if self.output else "0")
        self.command("MEASure:PRESsure?", lambda p, s: f"{self.measure_pa():.1f}")
        self.command("UNIT:PRESsure", self._unit)
        self.command("UNIT:PRESsure?", lambda p, s: "PA")

    def measure_pa(self) -> float:
        if not self.output:
            return 0.0
        s = self.settings
        t_s = self.plant.now_ms / 1000.0
        return (s["baseline"] + s["card_amp"] * math.sin(2 * math.pi * s["card_hz"] * t_s)
                + s["resp_amp"] * math.sin(2 * math.pi * s["resp_hz"] * t_s))

    def _push(self) -> None:
        s = self.settings
        on = self.output
        self.plant.set_csf(
            baseline_pa=s["baseline"] if on else 0.0,
            cardiac_amplitude_pa=s["card_amp"] if on else 0.0,
            cardiac_hz=s["card_hz"],
            respiratory_amplitude_pa=s["resp_amp"] if on else 0.0,
            respiratory_hz=s["resp_hz"],
        )

    def reset(self) -> None:
        self.settings = dict(DEFAULTS)
        self.output = False
        self._push()

    def _setter(self, key: str):  # type: ignore[no-untyped-def]
        lo, hi = LIMITS[key]

        def handler(p: list[str], s: tuple[str, ...]) -> None:
            if not p:
                raise missing_parameter()
            v = parse_float(p[0], {"MINIMUM": lo, "MAXIMUM": hi, "DEFAULT": DEFAULTS[key]})
            if not lo <= v <= hi:
                raise data_out_of_range()
            self.settings[key] = v
            self._push()

        return handler

    def _getter(self, key: str):  # type: ignore[no-untyped-def]
        return lambda p, s: f"{self.settings[key]:g}"

    def _outp(self, p: list[str], s: tuple[str, ...]) -> None:
        if not p:
            raise missing_parameter()
        self.output = parse_bool(p[0])
        self._push()

    def _unit(self, p: list[str], s: tuple[str, ...]) -> None:
        if not p:
            raise missing_parameter()
        if p[0].strip().upper() not in ("PA", "PASCAL"):
            raise illegal_parameter()
