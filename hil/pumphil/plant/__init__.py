"""Emulator plant: physics of the pump mechanics, reservoir, catheter, CSF, sensor, battery, faults.

Host-side typed Python (floats allowed; this is not firmware). See docs/emulator.md, "Plant".
"""

from .model import Plant, lowpass_gain, lowpass_lag_rad
from .params import BatteryParams, CsfParams, PlantParams

__all__ = ["BatteryParams", "CsfParams", "Plant", "PlantParams", "lowpass_gain", "lowpass_lag_rad"]
