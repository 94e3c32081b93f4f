"""Typed pyvisa drivers for the rig's instruments (real models; the virtual ones speak the same).

PowerSupply: Keysight E36312A (SCPI).  Balance: Mettler Toledo XPR205 (MT-SICS).
PressureSource: itpump CSF phantom (SCPI).  SwitchUnit: Keysight DAQ970A + DAQM903A (SCPI).
"""

from .balance import Balance, BalanceBusy, BalanceError, BalanceOverload
from .base import Driver, InstrumentError, ScpiDriver
from .channels import VALVES, ValveChannels
from .power_supply import PowerSupply
from .pressure_source import PressureSource
from .switch_unit import SwitchUnit

__all__ = [
           "VALVES",
           "Balance",
           "BalanceBusy",
           "BalanceError",
           "BalanceOverload",
           "Driver",
           "InstrumentError",
           "PowerSupply",
           "PressureSource",
           "ScpiDriver",
           "SwitchUnit",
           "ValveChannels",
]
