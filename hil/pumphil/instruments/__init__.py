"""Virtual lab instruments on loopback TCP, coupled to the plant (see docs/rig.md).

Models: Keysight E36312A power supply, Mettler Toledo XPR205 balance (MT-SICS), itpump CSF phantom
(custom SCPI), Keysight DAQ970A + DAQM903A switch unit.
"""

from .balance import VirtualBalance
from .power_supply import VirtualPowerSupply
from .pressure_source import VirtualPressureSource
from .rig import VirtualRig
from .server import LineServer
from .switch_unit import VirtualSwitchUnit

__all__ = [
           "LineServer",
           "VirtualBalance",
           "VirtualPowerSupply",
           "VirtualPressureSource",
           "VirtualRig",
           "VirtualSwitchUnit",
]
