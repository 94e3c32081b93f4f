"""Rig drivers against pyvisa-sim definitions (hil/pumphil/sim/rig.yaml): the exact command
strings, reply parsing and error checking, with no instrument and no socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pyvisa
from pumphil.drivers import (
    Balance,
    BalanceBusy,
    BalanceError,
    BalanceOverload,
    InstrumentError,
    PowerSupply,
    PressureSource,
    SwitchUnit,
)
from pumphil.sim import RESOURCES, SIM_BACKEND


@pytest.fixture
def rm() -> Iterator[pyvisa.ResourceManager]:
    manager = pyvisa.ResourceManager(SIM_BACKEND)
    yield manager
    manager.close()


def test_power_supply_formats_and_parses(rm: pyvisa.ResourceManager) -> None:
    psu = PowerSupply.open(rm, RESOURCES["psu"])
    assert psu.resource.read_termination == "\n"
    assert "E36312A" in psu.idn()
    psu.reset()
    psu.set_voltage(3.6)
    assert psu.voltage() == pytest.approx(3.6)
    psu.set_current_limit(0.25)
    assert psu.current_limit() == pytest.approx(0.25)
    assert not psu.output_on()
    psu.output(True)
    assert psu.output_on()
    assert psu.measure_voltage() == pytest.approx(3.5998)
    assert psu.measure_current() == pytest.approx(12e-6)
    with pytest.raises(InstrumentError, match="-113"):
        psu.set_voltage(9.0)  # over the channel's range: the instrument refuses it
    assert psu.voltage() == pytest.approx(3.6)
    assert psu.errors() == []


def test_balance_parses_mt_sics(rm: pyvisa.ResourceManager) -> None:
    bal = Balance.open(rm, RESOURCES["balance"])
    assert bal.resource.write_termination == "\r\n"
    assert bal.weight_g() == pytest.approx(12.34567)
    assert bal.weight_immediate_g() == (pytest.approx(12.3456), False)
    assert bal.tare() == pytest.approx(10.00012)
    assert bal.tare_value_g() == pytest.approx(10.00012)
    bal.zero()
    assert bal.zero_immediate() is False
    bal.clear_tare()
    assert bal.serial_number() == "B912345678"
    assert bal.model() == "XPR205 220.00000 g"
    assert bal.reset() == "B912345678"


def test_balance_status_codes_raise(rm: pyvisa.ResourceManager) -> None:
    bal = Balance.open(rm, RESOURCES["balance_busy"])
    with pytest.raises(BalanceBusy):
        bal.weight_g()
    with pytest.raises(BalanceOverload, match="overload"):
        bal.weight_immediate_g()
    with pytest.raises(BalanceBusy):
        bal.zero()
    with pytest.raises(BalanceOverload, match="underload"):
        bal.tare()
    with pytest.raises(BalanceError, match="ES"):
        bal.serial_number()


def test_pressure_source_formats_and_parses(rm: pyvisa.ResourceManager) -> None:
    ph = PressureSource.open(rm, RESOURCES["pressure"])
    assert ph.idn().startswith("itpump,CSF-PHANTOM-1")
    ph.set_baseline_pa(1450.0)
    assert ph.baseline_pa() == 1450.0
    ph.set_cardiac(180.0, 1.4)
    assert ph.cardiac() == (180.0, 1.4)
    ph.set_respiratory(80.0, 0.2)
    assert ph.respiratory() == (80.0, 0.2)
    assert ph.output_on()
    ph.output(False)
    assert not ph.output_on()
    assert ph.measure_pa() == pytest.approx(1387.4)
    with pytest.raises(InstrumentError):
        ph.set_cardiac(100.0, 3.0)  # heart rate beyond 2 Hz


def test_switch_unit_formats_and_parses(rm: pyvisa.ResourceManager) -> None:
    sw = SwitchUnit.open(rm, RESOURCES["switch"])
    assert "DAQ970A" in sw.idn()
    sw.occlude("complete")
    sw.occlude("partial")
    sw.clear_occlusion()
    sw.dislodge()
    sw.reseat()
    sw.leak()
    sw.clear_leak()
    sw.open_all_valves()
    assert sw.closed(101, 102, 103, 104) == [False, True, False, False]
    assert sw.is_closed(102) and not sw.is_closed(101)
    with pytest.raises(InstrumentError):
        sw.close_channels(105)  # not in the definition: the instrument reports an error
    with pytest.raises(ValueError):
        sw.occlude("total")
