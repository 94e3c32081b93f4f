"""Keysight E36312A triple-output supply (also E36311A/E36313A): SCPI over LAN socket 5025,
USB or GPIB. Channel lists use the E36300 syntax ``(@1)``; no channel selection state is used."""

from __future__ import annotations

from .base import ScpiDriver


class PowerSupply(ScpiDriver):
    def set_voltage(self, volts: float, channel: int = 1) -> None:
        self.write(f"VOLT {volts:.4f},(@{channel})")

    def voltage(self, channel: int = 1) -> float:
        """Programmed voltage (V)."""
        return self.query_float(f"VOLT? (@{channel})")

    def set_current_limit(self, amps: float, channel: int = 1) -> None:
        self.write(f"CURR {amps:.4f},(@{channel})")

    def current_limit(self, channel: int = 1) -> float:
        return self.query_float(f"CURR? (@{channel})")

    def output(self, on: bool, channel: int = 1) -> None:
        """Switch the output (the rig's board channel powers the board)."""
        self.write(f"OUTP {'ON' if on else 'OFF'},(@{channel})")

    def output_on(self, channel: int = 1) -> bool:
        reply = self.query(f"OUTP? (@{channel})").upper()
        return reply in ("1", "ON")

    def measure_voltage(self, channel: int = 1) -> float:
        return self.query_float(f"MEAS:VOLT? (@{channel})")

    def measure_current(self, channel: int = 1) -> float:
        """Output current (A)."""
        return self.query_float(f"MEAS:CURR? (@{channel})")
