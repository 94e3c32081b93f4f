"""Virtual instruments: command sets, error behaviour and coupling to the plant (no pyvisa here:
raw sockets and the instruments' line handlers)."""

from __future__ import annotations

import re
import socket

import pytest
from pumphil.instruments import (
    LineServer,
    VirtualBalance,
    VirtualPowerSupply,
    VirtualPressureSource,
    VirtualRig,
    VirtualSwitchUnit,
)
from pumphil.instruments.scpi import ScpiInstrument, compile_header, parse_channel_list
from pumphil.plant import Plant, PlantParams

WEIGHT_RE = re.compile(r"^S ([SD]) ( {0,9}-?\d+\.\d{5}) g$")


def one(inst: ScpiInstrument | VirtualBalance, line: str) -> str:
    replies = inst.handle_line(line, None)
    assert len(replies) == 1, replies
    return replies[0]


def none(inst: ScpiInstrument | VirtualBalance, line: str) -> None:
    assert inst.handle_line(line, None) == []


def quiet_plant() -> Plant:
    return Plant(1, PlantParams(stroke_jitter=0.0, noise_sigma_pa=0.0, drift_step_sigma_pa=0.0))


# --------------------------------------------------------------------------- SCPI engine
def test_scpi_headers_short_long_optional_and_suffix() -> None:
    r = compile_header("[SOURce#:]VOLTage[:LEVel][:IMMediate][:AMPLitude]")
    for ok in ("VOLT", "volt", "VOLTAGE", ":SOUR:VOLT", "SOURCE2:VOLT:LEV", "VOLT:IMM:AMPL"):
        assert r.match(ok), ok
    for bad in ("VOL", "VOLTA", "VOLT?", "SOUR:VOLT:AMPL:LEV", "XVOLT"):
        assert not r.match(bad), bad
    m = r.match("SOUR2:VOLT")
    assert m is not None and m.group(1) == "2"
    assert parse_channel_list("(@101,103:105)") == [101, 103, 104, 105]


def test_scpi_error_queue_order_overflow_and_cls() -> None:
    psu = VirtualPowerSupply(quiet_plant())
    none(psu, "FOO")
    none(psu, "VOLT 99")
    assert one(psu, "SYST:ERR?") == '-113,"Undefined header"'
    assert one(psu, "SYSTEM:ERROR:NEXT?") == '-222,"Data out of range"'
    assert one(psu, "SYST:ERR?") == '+0,"No error"'
    for _ in range(25):
        none(psu, "FOO")
    errs = [one(psu, "SYST:ERR?") for _ in range(21)]
    assert errs[18] == '-113,"Undefined header"'
    assert errs[19] == '-350,"Queue overflow"'
    assert errs[20] == '+0,"No error"'
    none(psu, "FOO")
    none(psu, "*CLS")
    assert one(psu, "SYST:ERR?") == '+0,"No error"'


def test_scpi_compound_message_answers_once() -> None:
    psu = VirtualPowerSupply(quiet_plant())
    assert one(psu, "VOLT 3.3,(@1);VOLT? (@1);OUTP? (@1,2)") == "+3.30000000E+00;1,0"


# --------------------------------------------------------------------------- power supply
def test_psu_output_powers_the_plant_and_notifies() -> None:
    plant = quiet_plant()
    heard: list[bool] = []
    plant.add_power_listener(heard.append)
    psu = VirtualPowerSupply(plant)
    assert plant.powered and plant.battery_mv() == 3600
    assert one(psu, "*IDN?").startswith("Keysight Technologies,E36312A,")
    none(psu, "OUTP OFF,(@1)")
    assert not plant.powered and heard == [False]
    assert float(one(psu, "MEAS:VOLT? (@1)")) == 0.0
    none(psu, "OUTP ON,(@2)")  # other channels do not feed the board
    assert not plant.powered
    none(psu, "INST:NSEL 1")
    none(psu, "OUTP ON")
    assert plant.powered and heard == [False, True]
    none(psu, "VOLT 1.5")  # below brown-out
    assert not plant.powered
    none(psu, "VOLT 3.0")
    assert plant.powered and plant.battery_mv() == 3000
    none(psu, "*RST")
    assert not plant.powered and one(psu, "OUTP?") == "0"


def test_psu_current_reflects_sleep_and_stroke_pulses() -> None:
    plant = quiet_plant()
    psu = VirtualPowerSupply(plant, current_a=0.5)
    plant.advance_to(1_000)
    assert float(one(psu, "MEAS:CURR? (@1)")) == pytest.approx(10e-6)
    plant.stroke(2_000)
    plant.advance_to(2_020)
    assert float(one(psu, "MEAS:CURR? (@1)")) == pytest.approx(0.060 + 10e-6)
    none(psu, "CURR 0.02,(@1)")  # the current limit caps what flows
    assert float(one(psu, "MEAS:CURR? (@1)")) == pytest.approx(0.02)
    plant.advance_to(3_000)
    assert float(one(psu, "MEAS:CURR? (@1)")) == pytest.approx(10e-6)
    assert float(one(psu, "MEAS:CURR? (@2)")) == 0.0


# --------------------------------------------------------------------------- balance
def test_balance_weighs_delivered_fluid() -> None:
    plant = quiet_plant()
    bal = VirtualBalance(plant)
    assert one(bal, "S") == "S S    0.00000 g"
    for k in range(10):
        plant.stroke(1_000 + k * 5_000)
    assert one(bal, "S") == "S I"  # the last stroke is still flowing out
    m = WEIGHT_RE.match(one(bal, "SI"))
    assert m is not None and m.group(1) == "D"
    plant.advance_to(100_000)
    m = WEIGHT_RE.match(one(bal, "S"))
    assert m is not None and m.group(1) == "S"
    assert float(m.group(2)) == pytest.approx(10 * 252.5e-6, abs=1e-5)  # 1.0 g/mL


def test_balance_zero_tare_reset_and_errors() -> None:
    plant = quiet_plant()
    bal = VirtualBalance(plant, container_g=12.5, density_g_per_ml=1.2)
    assert one(bal, "S") == "S S   12.50000 g"
    t = one(bal, "T")
    assert t == "T S   12.50000 g"
    assert one(bal, "TA") == "TA A   12.50000 g"
    assert one(bal, "S") == "S S    0.00000 g"
    plant.stroke(0)
    plant.advance_to(60_000)
    assert one(bal, "S") == "S S    0.00030 g"  # 252.5 nL * 1.2 g/mL = 0.303 mg
    assert one(bal, "@") == 'I4 A "B123456789"'  # reset clears the tare
    assert one(bal, "S") == "S S   12.50030 g"
    assert one(bal, "Z") == "Z A"
    assert one(bal, "S") == "S S    0.00000 g"
    assert one(bal, "I4") == 'I4 A "B123456789"'
    assert one(bal, "I2") == 'I2 A "XPR205 220.00000 g"'
    assert one(bal, "XYZ") == "ES"
    assert one(bal, "s") == "ES"  # MT-SICS commands are upper case
    assert one(bal, "Z 5") == "Z L"
    assert one(bal, "TAC") == "TAC A"
    heavy = VirtualBalance(quiet_plant(), container_g=250.0)
    assert one(heavy, "S") == "S +"


def test_balance_evaporation_and_noise() -> None:
    plant = quiet_plant()
    bal = VirtualBalance(plant, container_g=10.0, evaporation_mg_per_h=0.1)
    plant.stroke(0)
    plant.advance_to(3_600_000)
    assert one(bal, "S") == "S S   10.00015 g"  # 0.2525 mg - 0.1 mg
    noisy = VirtualBalance(plant, seed=3, container_g=10.0, noise_mg=0.02)
    readings = {one(noisy, "SI") for _ in range(20)}
    assert len(readings) > 3


# --------------------------------------------------------------------------- pressure source
def test_pressure_source_drives_plant_csf() -> None:
    plant = quiet_plant()
    ph = VirtualPressureSource(plant)
    assert one(ph, "*IDN?").startswith("itpump,CSF-PHANTOM-1")
    none(ph, "SOUR:PRES 1500;PULS:CARD:AMPL 200;PULS:CARD:FREQ 1.6;PULS:RESP:FREQ 0.3")
    assert (plant.csf_baseline_pa, plant.cardiac_amplitude_pa, plant.cardiac_hz) == (1500, 200, 1.6)
    assert plant.respiratory_hz == 0.3
    assert one(ph, "PRES?;PULS:CARD:FREQ?") == "1500;1.6"
    none(ph, "PULS:CARD:FREQ 2.5")
    assert one(ph, "SYST:ERR?") == '-222,"Data out of range"'
    assert plant.cardiac_hz == 1.6
    plant.advance_to(12_345)
    v = float(one(ph, "MEAS:PRES?"))
    assert 1500 - 300 - 1e-6 <= v <= 1500 + 300 + 1e-6
    assert v == pytest.approx(plant.csf_at_tip_pa(12_345), abs=0.06)
    none(ph, "OUTP OFF")
    assert plant.csf_baseline_pa == 0.0 and plant.cardiac_amplitude_pa == 0.0
    assert float(one(ph, "MEAS:PRES?")) == 0.0
    none(ph, "*RST")
    none(ph, "OUTP ON")
    assert (plant.csf_baseline_pa, plant.cardiac_hz) == (1300.0, 1.2)
    none(ph, "UNIT:PRES MMHG")
    assert one(ph, "SYST:ERR?") == '-224,"Illegal parameter value"'


# --------------------------------------------------------------------------- switch unit
def test_switch_relays_inject_and_clear_faults() -> None:
    plant = quiet_plant()
    sw = VirtualSwitchUnit(plant)
    assert one(sw, "*IDN?").startswith("Keysight Technologies,DAQ970A,")
    none(sw, "ROUT:CLOS (@101)")
    assert plant.occlusion == "partial" and plant.tau_s == pytest.approx(3.0)
    none(sw, "ROUT:CLOS (@102)")
    assert plant.occlusion == "complete"
    assert one(sw, "ROUT:CLOS? (@101:104)") == "1,1,0,0"
    assert one(sw, "ROUT:OPEN? (@101,103)") == "0,1"
    none(sw, "ROUT:OPEN (@102)")
    assert plant.occlusion == "partial"
    none(sw, "ROUTE:OPEN (@101)")
    assert plant.occlusion is None
    none(sw, "ROUT:CLOS (@103,104)")
    assert plant.dislodged and plant.leaking
    none(sw, "*RST")
    assert not plant.dislodged and not plant.leaking
    assert one(sw, "ROUT:CLOS? (@101:104)") == "0,0,0,0"
    none(sw, "ROUT:CLOS (@121)")
    assert one(sw, "SYST:ERR?") == '-222,"Data out of range"'
    none(sw, "ROUT:CLOS 101")
    assert one(sw, "SYST:ERR?") == '-104,"Data type error"'
    assert one(sw, "SYST:CTYP? 1").startswith("Keysight Technologies,DAQM903A")


def test_switch_occlusion_release_is_measured() -> None:
    plant = quiet_plant()
    sw = VirtualSwitchUnit(plant)
    none(sw, "ROUT:CLOS (@102)")
    for k in range(4):
        plant.stroke(1_000 + k * 1_000)
    plant.advance_to(10_000)
    none(sw, "ROUT:OPEN (@102)")
    plant.advance_to(20_000)
    assert plant.released_after_occlusion_nl == pytest.approx(4 * 252.5)


# --------------------------------------------------------------------------- TCP servers
def _talk(sock: socket.socket, line: bytes, term: bytes = b"\n") -> bytes:
    sock.sendall(line)
    buf = b""
    while not buf.endswith(term):
        chunk = sock.recv(4096)
        assert chunk, "connection closed"
        buf += chunk
    return buf


def test_rig_serves_all_instruments_on_loopback() -> None:
    plant = quiet_plant()
    with VirtualRig(plant) as rig:
        res = rig.resources
        assert set(res) == {"psu", "balance", "pressure", "switch"}
        ports = set()
        for name in res.values():
            m = re.fullmatch(r"TCPIP::127\.0\.0\.1::(\d+)::SOCKET", name)
            assert m is not None
            ports.add(int(m.group(1)))
        assert len(ports) == 4 and 0 not in ports
        with socket.create_connection(("127.0.0.1", rig.servers["psu"].port), timeout=5) as a, \
                socket.create_connection(("127.0.0.1", rig.servers["psu"].port), timeout=5) as b:
            # *OPC? answers only once the command before it has executed (as on the real
            # instrument), so the two connections are ordered without sleeping
            assert _talk(a, b"OUTP OFF,(@1);*OPC?\n") == b"1\n"
            # the second connection sees the same instrument state
            assert _talk(b, b"OUTP? (@1)\n") == b"0\n"
        assert not plant.powered
        with socket.create_connection(("127.0.0.1", rig.servers["balance"].port), timeout=5) as s:
            assert _talk(s, b"I4\r\n", b"\r\n") == b'I4 A "B123456789"\r\n'
            assert _talk(s, b"S\r\n", b"\r\n") == b"S S    0.00000 g\r\n"


def test_balance_sir_streams_until_next_command() -> None:
    plant = quiet_plant()
    bal = VirtualBalance(plant)
    with LineServer(bal) as srv, socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"SIR\r\n")
        buf = b""
        while buf.count(b"\r\n") < 3:
            buf += s.recv(4096)
        lines = buf.split(b"\r\n")[:3]
        assert all(WEIGHT_RE.match(x.decode()) for x in lines)
        s.sendall(b"I4\r\n")
        buf = b""
        while b"I4 A" not in buf:
            buf += s.recv(4096)
        s.settimeout(0.5)
        tail = buf.split(b"I4 A", 1)[1]
        try:
            tail += s.recv(4096)
        except TimeoutError:
            pass
        assert b"S " not in tail  # the stream stopped


def test_standalone_instruments_serve_a_running_plant() -> None:
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "pumphil.instruments", "--stroke-every", "0.1", "--duration", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        res = dict(proc.stdout.readline().split() for _ in range(4))
        assert set(res) == {"psu", "balance", "pressure", "switch"}
        port = int(res["balance"].split("::")[2])
        # strokes come every 0.1 s of wall time; poll (a loaded CI machine may be slow to start)
        grams = 0.0
        deadline = time.monotonic() + 15.0
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            while grams <= 0.001 and time.monotonic() < deadline:
                reply = _talk(s, b"SI\r\n", b"\r\n").decode().strip()
                m = WEIGHT_RE.match(reply)
                assert m is not None, reply
                grams = float(m.group(2))
                time.sleep(0.2)
        assert grams > 0.001  # > 4 strokes of 0.25 mg arrived
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_psu_can_leave_the_board_on_its_cell() -> None:
    plant = quiet_plant()
    rig = VirtualRig(plant, psu_powers_board=False)
    assert plant.external_supply_mv is None and plant.powered
    none(rig.psu, "OUTP OFF,(@1)")
    assert plant.powered  # not coupled
    none(rig.psu, "OUTP ON,(@1)")
    plant.stroke(1_000)
    assert float(one(rig.psu, "MEAS:CURR? (@1)")) == 0.0
    plant.advance_to(3_600_000)
    assert plant.battery_percent() < 100.0  # the cell feeds the board
