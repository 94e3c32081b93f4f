"""VirtualRig: the four virtual instruments on loopback TCP, coupled to one plant."""

from __future__ import annotations

from typing import Self

from ..plant import Plant
from .balance import VirtualBalance
from .power_supply import VirtualPowerSupply
from .pressure_source import VirtualPressureSource
from .server import LineServer
from .switch_unit import VirtualSwitchUnit


class VirtualRig:
    """Start with ``start()`` (or ``with VirtualRig(plant) as rig:``); ``resources`` maps role ->
    VISA resource string ``TCPIP::127.0.0.1::PORT::SOCKET`` (roles: psu, balance, pressure,
    switch). The supply starts with its board output ON at 3.6 V (the bench is set up), the phantom
    with its output ON at the plant's CSF figures, all relays open. ``psu_powers_board=False``
    leaves the board on its own cell (battery scenarios): the supply is then not coupled."""

    ROLES = ("psu", "balance", "pressure", "switch")

    def __init__(self, plant: Plant, seed: int = 0, host: str = "127.0.0.1",
                 balance_noise_mg: float = 0.0, psu_powers_board: bool = True) -> None:
        self.plant = plant
        self.psu = VirtualPowerSupply(plant, powers_board=psu_powers_board)
        self.balance = VirtualBalance(plant, seed=seed, noise_mg=balance_noise_mg)
        self.pressure = VirtualPressureSource(plant)
        self.switch = VirtualSwitchUnit(plant)
        self.servers = {
            "psu": LineServer(self.psu, host),
            "balance": LineServer(self.balance, host),
            "pressure": LineServer(self.pressure, host),
            "switch": LineServer(self.switch, host),
        }

    @property
    def resources(self) -> dict[str, str]:
        return {role: srv.resource for role, srv in self.servers.items()}

    def start(self) -> VirtualRig:
        for srv in self.servers.values():
            srv.start()
        return self

    def close(self) -> None:
        for srv in self.servers.values():
            srv.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
