"""VirtualRig: the four virtual instruments on loopback TCP, coupled to one plant."""

from __future__ import annotations

import threading
from typing import Self

from ..plant import Plant
from .balance import VirtualBalance
from .power_supply import VirtualPowerSupply
from .pressure_source import VirtualPressureSource
from .server import LineInstrument, LineServer, Session
from .switch_unit import VirtualSwitchUnit


class VirtualRig:
    """Start with ``start()`` (or ``with VirtualRig(plant) as rig:``); ``resources`` maps role ->
    VISA resource string ``TCPIP::127.0.0.1::PORT::SOCKET`` (roles: psu, balance, pressure,
    switch). ``lock``: held while an instrument handles a line, so instruments never touch the
    plant while a board runs (the HIL targets pass the emulator's lock). The supply starts with
    its board output ON at 3.6 V (the bench is set up), the phantom with its output ON at the
    plant's CSF figures, all relays open. ``psu_powers_board=False`` leaves the board on its own
    cell (battery scenarios): the supply is then not coupled."""

    ROLES = ("psu", "balance", "pressure", "switch")

    def __init__(self, plant: Plant, seed: int = 0, host: str = "127.0.0.1",
                 balance_noise_mg: float = 0.0, psu_powers_board: bool = True,
                 balance_evaporation_mg_per_h: float = 0.0, balance_container_g: float = 0.0,
                 lock: threading.RLock | None = None) -> None:
        self.plant = plant
        self.psu = VirtualPowerSupply(plant, powers_board=psu_powers_board)
        self.balance = VirtualBalance(plant, seed=seed, noise_mg=balance_noise_mg,
                                      evaporation_mg_per_h=balance_evaporation_mg_per_h,
                                      container_g=balance_container_g)
        self.pressure = VirtualPressureSource(plant)
        self.switch = VirtualSwitchUnit(plant)
        instruments: dict[str, LineInstrument] = {
            "psu": self.psu, "balance": self.balance, "pressure": self.pressure,
            "switch": self.switch}
        if lock is not None:
            instruments = {role: _Locked(ins, lock) for role, ins in instruments.items()}
        self.servers = {role: LineServer(ins, host) for role, ins in instruments.items()}

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


class _Locked:
    """An instrument whose lines are handled under a lock shared with the board."""

    def __init__(self, instrument: LineInstrument, lock: threading.RLock) -> None:
        self.instrument = instrument
        self.lock = lock
        self.write_termination = instrument.write_termination

    def handle_line(self, line: str, session: Session) -> list[str]:
        with self.lock:
            return self.instrument.handle_line(line, session)
