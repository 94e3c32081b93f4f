"""Rig drivers against the virtual instruments through pyvisa-py (TCPIP SOCKET), coupled to the
plant: what a real bench would see."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pyvisa
from pumphil.drivers import (
    Balance,
    BalanceBusy,
    InstrumentError,
    PowerSupply,
    PressureSource,
    SwitchUnit,
)
from pumphil.instruments import VirtualRig
from pumphil.plant import Plant, PlantParams


@pytest.fixture
def bench() -> Iterator[tuple[Plant, VirtualRig, pyvisa.ResourceManager]]:
    plant = Plant(11, PlantParams(stroke_jitter=0.0))
    rig = VirtualRig(plant).start()
    rm = pyvisa.ResourceManager("@py")
    yield plant, rig, rm
    rm.close()
    rig.close()


def test_strokes_add_the_right_mass_on_the_balance(
        bench: tuple[Plant, VirtualRig, pyvisa.ResourceManager]) -> None:
    plant, rig, rm = bench
    bal = Balance.open(rm, rig.resources["balance"])
    assert bal.model().startswith("XPR205")
    plant.advance_to(5_000)
    bal.zero()
    start = bal.weight_g()
    for k in range(40):
        assert plant.stroke(10_000 + k * 30_000)
    with pytest.raises(BalanceBusy):
        bal.weight_g()  # still flowing
    plant.advance_to(10_000 + 40 * 30_000)
    grams = bal.weight_g() - start
    assert grams == pytest.approx(40 * 252.5e-6, abs=2e-5)  # 10.1 mg, 0.01 mg readability


def test_power_supply_powers_the_board(bench: tuple[Plant, VirtualRig, pyvisa.ResourceManager]) -> None:
    plant, rig, rm = bench
    psu = PowerSupply.open(rm, rig.resources["psu"])
    assert psu.output_on() and plant.powered
    assert psu.measure_voltage() == pytest.approx(3.6)
    psu.output(False)
    assert not plant.powered
    assert not plant.stroke(1_000)
    psu.set_voltage(3.3)
    psu.output(True)
    assert plant.powered and plant.battery_mv() == 3300
    plant.stroke(2_000)
    plant.advance_to(2_010)
    assert psu.measure_current() == pytest.approx(0.060, abs=1e-3)
    plant.advance_to(3_000)
    assert psu.measure_current() < 1e-4
    with pytest.raises(InstrumentError, match="-222"):
        psu.set_voltage(7.0)


def test_switch_unit_injects_faults(bench: tuple[Plant, VirtualRig, pyvisa.ResourceManager]) -> None:
    plant, rig, rm = bench
    sw = SwitchUnit.open(rm, rig.resources["switch"])
    sw.occlude("complete")
    assert plant.occlusion == "complete"
    assert sw.closed(101, 102, 103, 104) == [False, True, False, False]
    sw.occlude("partial")
    assert plant.occlusion == "partial"
    sw.clear_occlusion()
    assert plant.occlusion is None
    sw.dislodge()
    sw.leak()
    assert plant.dislodged and plant.leaking
    sw.open_all_valves()
    assert not plant.dislodged and not plant.leaking
    with pytest.raises(InstrumentError, match="-222"):
        sw.close_channels(130)


def test_pressure_source_sets_csf(bench: tuple[Plant, VirtualRig, pyvisa.ResourceManager]) -> None:
    plant, rig, rm = bench
    ph = PressureSource.open(rm, rig.resources["pressure"])
    ph.set_baseline_pa(1100.0)
    ph.set_cardiac(120.0, 0.9)
    ph.set_respiratory(60.0, 0.4)
    assert (plant.csf_baseline_pa, plant.cardiac_amplitude_pa, plant.cardiac_hz) == (1100.0, 120.0, 0.9)
    assert (plant.respiratory_amplitude_pa, plant.respiratory_hz) == (60.0, 0.4)
    assert ph.cardiac() == (120.0, 0.9)
    plant.advance_to(7_777)
    assert 1100 - 180 <= ph.measure_pa() <= 1100 + 180
    ph.output(False)
    assert plant.csf_baseline_pa == 0.0 and ph.measure_pa() == 0.0
    with pytest.raises(InstrumentError, match="-222"):
        ph.set_respiratory(60.0, 0.9)


def test_line_transducer_reads_the_line_pressure(
        bench: tuple[Plant, VirtualRig, pyvisa.ResourceManager]) -> None:
    plant, rig, rm = bench
    sw = SwitchUnit.open(rm, rig.resources["switch"])
    assert "DAQM901A" in sw.query("SYST:CTYP? 2")
    plant.advance_to(5_000)
    assert sw.line_pressure_pa() == pytest.approx(plant.line_pressure_pa(5_000), abs=1.0)
    sw.occlude("complete")
    for k in range(4):                      # a sealed line keeps every stroke's pressure
        plant.stroke(6_000 + k * 1_000)
    plant.advance_to(10_000)
    assert sw.line_pressure_pa() == pytest.approx(plant.line_pressure_pa(10_000), abs=1.0)
    assert sw.line_pressure_pa() > 1_000 + 3 * 200
    sw.resource.write("MEAS:VOLT:DC? (@301)")   # no such channel: an error and no reply
    assert sw.errors() == [(-222, "Data out of range")]
