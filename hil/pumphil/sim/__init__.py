"""pyvisa-sim definitions of the rig's instruments (for driver formatting/parsing tests).

Use: ``pyvisa.ResourceManager(SIM_BACKEND)`` with the resource names in ``RESOURCES``.
"""

from __future__ import annotations

from pathlib import Path

YAML_PATH = Path(__file__).with_name("rig.yaml")
SIM_BACKEND = f"{YAML_PATH}@sim"
RESOURCES = {
    "psu": "TCPIP::192.168.10.11::5025::SOCKET",
    "balance": "TCPIP::192.168.10.12::8001::SOCKET",
    "pressure": "TCPIP::192.168.10.13::5025::SOCKET",
    "switch": "TCPIP::192.168.10.14::5025::SOCKET",
    "balance_busy": "TCPIP::192.168.10.22::8001::SOCKET",
}
