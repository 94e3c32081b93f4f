"""Emulator plant: physics of the pump mechanics, reservoir, catheter, CSF, sensor, battery, faults.

Host-side typed Python (floats allowed; this is not firmware). See docs/emulator.md, "Plant".
"""

from .. import accel as _accel

_accel.install(__path__, "pumphil/plant")   # the mypyc build of model.py when current

from .model import Plant, lowpass_gain, lowpass_lag_rad  # noqa: E402
from .params import BatteryParams, CsfParams, PlantParams  # noqa: E402

__all__ = ["BatteryParams", "CsfParams", "Plant", "PlantParams", "lowpass_gain", "lowpass_lag_rad"]
