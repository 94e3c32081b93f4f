"""The rig's safe state: infusion stopped, the supply as configured, every fault valve open, the
phantom at its baseline. One function serves the fixture teardown (after every test, passed,
failed, interrupted or timed out with the signal method) and the guardian process
(``pumphil.hil.guard``: a test process killed outright).

Order matters: the supply first (a pump without power cannot be told to stop, and a board that
powers up resumes the therapy it had: docs/therapy.md "Resets and accounting"), then the pump is
stopped, then the valves are opened (an occluded line is released only once the motor is off),
then the phantom. Every step is tried even when an earlier one failed; the result lists what
failed, so a bench that cannot be made safe says so loudly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pyvisa
from pumpcore.statemachine import MOTOR_STATES

from ..drivers import Driver, PowerSupply, PressureSource, SwitchUnit
from .config import RigConfig


@dataclass
class SafeResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def stop_pump(url: str, key_file: Path | None, wait_s: float = 10.0) -> str:
    """Stop the infusion; returns the pump's state afterwards. Retries until wait_s (a board that
    was just powered up boots first). Raises the last error when it never answers."""
    from pumphost.client import PumpClient
    from pumphost.errors import PumpError

    deadline = time.monotonic() + wait_s
    last: Exception | None = None
    while True:
        try:
            with PumpClient.open(url, key_file=key_file, timeout_s=1.0, retries=1,
                                 reconnect_s=1.0) as c:
                state = str(c.status()["state"])
                if state in MOTOR_STATES:
                    c.stop()
                    state = str(c.status()["state"])
                return state
        except PumpError as e:
            last = e
        if time.monotonic() >= deadline:
            assert last is not None
            raise last
        time.sleep(0.2)


def make_safe(cfg: RigConfig, rm: pyvisa.ResourceManager | None = None,
              pump_wait_s: float = 10.0) -> SafeResult:
    res = SafeResult()
    own_rm = rm is None
    managers: dict[str, pyvisa.ResourceManager] = {}

    def open_(role: str, cls: type[Driver]) -> Driver:
        ins = cfg.instruments[role]
        mgr = rm
        if mgr is None:
            if ins.backend not in managers:
                managers[ins.backend] = pyvisa.ResourceManager(ins.backend)
            mgr = managers[ins.backend]
        return cls.open(mgr, ins.resource)

    s = cfg.safe_state
    try:
        psu = open_("psu", PowerSupply)
        assert isinstance(psu, PowerSupply)
        with psu:
            psu.set_voltage(s.supply_volts)
            psu.set_current_limit(s.supply_current_a)
            psu.output(s.supply_on)
        res.done.append(f"supply {s.supply_volts} V, {s.supply_current_a} A, "
                        f"output {'on' if s.supply_on else 'off'}")
    except Exception as e:  # noqa: BLE001  (every step is tried; failures are reported)
        res.failed.append(f"supply: {e}")
    if s.supply_on:
        try:
            state = stop_pump(cfg.pump_url, cfg.key_file, pump_wait_s)
            if state in MOTOR_STATES:
                res.failed.append(f"pump: still {state} after stop")
            else:
                res.done.append(f"pump {state}")
        except Exception as e:  # noqa: BLE001
            res.failed.append(f"pump: {e}")
    else:
        res.done.append("pump unpowered")
    try:
        sw = open_("switch", SwitchUnit)
        assert isinstance(sw, SwitchUnit)
        with sw:
            sw.open_all_valves()
        res.done.append("valves open")
    except Exception as e:  # noqa: BLE001
        res.failed.append(f"switch: {e}")
    try:
        ph = open_("pressure", PressureSource)
        assert isinstance(ph, PressureSource)
        with ph:
            ph.set_baseline_pa(s.phantom_baseline_pa)
            ph.output(True)
        res.done.append(f"phantom {s.phantom_baseline_pa:g} Pa")
    except Exception as e:  # noqa: BLE001
        res.failed.append(f"phantom: {e}")
    if own_rm:
        for m in managers.values():
            m.close()
    return res
