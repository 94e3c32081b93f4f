"""CSF phantom (itpump custom SCPI, docs/rig.md): baseline pressure and two pulsation tones."""

from __future__ import annotations

from .base import ScpiDriver


class PressureSource(ScpiDriver):
    def set_baseline_pa(self, pa: float) -> None:
        self.write(f"PRES {pa:.1f}")

    def baseline_pa(self) -> float:
        return self.query_float("PRES?")

    def set_cardiac(self, amplitude_pa: float, freq_hz: float) -> None:
        self.write(f"PULS:CARD:AMPL {amplitude_pa:.1f}")
        self.write(f"PULS:CARD:FREQ {freq_hz:.3f}")

    def cardiac(self) -> tuple[float, float]:
        """(amplitude Pa, frequency Hz)."""
        return self.query_float("PULS:CARD:AMPL?"), self.query_float("PULS:CARD:FREQ?")

    def set_respiratory(self, amplitude_pa: float, freq_hz: float) -> None:
        self.write(f"PULS:RESP:AMPL {amplitude_pa:.1f}")
        self.write(f"PULS:RESP:FREQ {freq_hz:.3f}")

    def respiratory(self) -> tuple[float, float]:
        return self.query_float("PULS:RESP:AMPL?"), self.query_float("PULS:RESP:FREQ?")

    def output(self, on: bool) -> None:
        """ON applies baseline + pulsation; OFF vents the chamber (0 Pa)."""
        self.write("OUTP %s" % ("ON" if on else "OFF"))

    def output_on(self) -> bool:
        return self.query("OUTP?").upper() in ("1", "ON")

    def measure_pa(self) -> float:
        """The chamber's own gauge (Pa)."""
        return self.query_float("MEAS:PRES?")
