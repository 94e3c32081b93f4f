"""The one target seam (DESIGN.md "Seams"): every rig the HIL suite runs on is a :class:`Target`
with the same surface, chosen by one option (``--rig``), the way labgrid chooses places and
pytest-embedded chooses services.

| ``--rig``                       | target                     | time                             |
|---------------------------------|----------------------------|----------------------------------|
| (none) or ``emulator``          | :class:`EmulatedRig`       | virtual: advanced by the test    |
| ``rig.toml``                    | :class:`BenchRig`          | real time x ``time_scale``       |
| ``labgrid://HOST:PORT/PLACE``   | :class:`BenchRig` from the place (pumphil.hil.labgridplace) |
| a registered name (``rp2``...)  | whatever its factory makes | the factory's                    |

A target gives the pump's serial URL and key file, each instrument's VISA resource (a
:class:`~pumphil.hil.config.RigConfig`), its safe-state settings, and time: ``advance(ms)`` lets
ms of *rig* time pass (the emulator runs its firmware through them at once; a bench sleeps
``ms / time_scale``), ``now_ms()`` reads it. ``capabilities`` names what only some targets can do
(``virtual_time``, ``firmware_hang``); ``max_test_minutes`` is how much rig time one test may take
(None: no limit); ``per_test`` says whether every test gets a fresh one (an emulator) or one
is shared by the session (hardware).

Further targets register a factory: ``register_target("name", factory)`` or, from another
distribution, an entry point in the group ``pumphil.hil.targets`` whose object is such a factory
(``factory(options: dict[str, str]) -> Target``). The emulated RP2040 (pumphil/rp2, the real
MicroPython rp2 port in rp2040js) plugs in this way: a factory that builds its board on a plant,
serves the virtual instruments on the same plant, and advances the board's virtual time
(docs/hil.md "Targets").
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .config import RigConfig, RigConfigError, SafeState


class CapabilityMissing(RuntimeError):
    """The target cannot do this (e.g. hang the firmware of a real Pico)."""


class Target:
    kind = "abstract"
    per_test = False
    realtime = True
    time_scale = 1.0
    max_test_minutes: float | None = None
    capabilities: frozenset[str] = frozenset()
    guarded = False          # a guardian process makes it safe when the test process dies

    def __init__(self, config: RigConfig) -> None:
        self.config = config

    def start(self) -> Target:
        return self

    def close(self) -> None:
        pass

    def advance(self, ms: int) -> None:
        raise NotImplementedError

    def now_ms(self) -> int:
        raise NotImplementedError

    def hang_firmware(self, ms: int) -> None:
        """Stop the firmware's main loop for ms (the watchdog resets the board if it outlasts it)."""
        raise CapabilityMissing(f"{self.kind}: cannot hang the firmware")

    def describe(self) -> dict[str, str]:
        return {"target": self.kind, "pump": self.config.pump_url,
                **{role: ins.resource for role, ins in self.config.instruments.items()}}


class BenchRig(Target):
    """Real instruments and a real pump (or anything served like them): time is the wall clock
    times ``time_scale`` (1 on a real bench)."""

    kind = "bench"
    guarded = True

    def __init__(self, config: RigConfig, max_test_minutes: float | None = 15.0) -> None:
        super().__init__(config)
        self.time_scale = config.time_scale
        self.max_test_minutes = max_test_minutes
        self._wall0 = time.monotonic()

    def now_ms(self) -> int:
        return int((time.monotonic() - self._wall0) * 1000 * self.time_scale)

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("cannot go back in time")
        time.sleep(ms / 1000 / self.time_scale)


class EmulatedRig(Target):
    """The emulator (unchanged firmware on the virtual board, plant) with its virtual instruments
    in virtual time, in this process. The balance is modelled on an XPR205 with an oil-covered
    pre-wetted vial: 0.01 mg readability, 0.015 mg repeatability (s.d. per reading),
    0.05 mg/h evaporation, 10 g container."""

    kind = "emulator"
    per_test = True
    realtime = False
    time_scale = float("inf")
    capabilities = frozenset({"virtual_time", "firmware_hang"})
    BALANCE: dict[str, float] = {"balance_noise_mg": 0.015, "balance_evaporation_mg_per_h": 0.05,
               "balance_container_g": 10.0}

    def __init__(self, seed: int = 0, state_dir: Path | None = None) -> None:
        self.seed = seed
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="itpump-hil-")
            state_dir = Path(self._tmp.name)
        self.state_dir = state_dir
        self.emu: Any = None
        self.instruments: Any = None

    def start(self) -> EmulatedRig:
        from ..emulator import Emulator
        from ..instruments import VirtualRig
        self.emu = Emulator(state_dir=self.state_dir, seed=self.seed).start()
        self.instruments = VirtualRig(self.emu.plant, seed=self.seed, lock=self.emu.lock,
                                      balance_noise_mg=self.BALANCE["balance_noise_mg"],
                                      balance_evaporation_mg_per_h=self.BALANCE[
                                          "balance_evaporation_mg_per_h"],
                                      balance_container_g=self.BALANCE["balance_container_g"]
                                      ).start()
        res = self.instruments.resources
        from .config import virtual_instruments
        self.config = RigConfig(
            name="emulated rig", pump_url=self.emu.serial_url, key_file=self.emu.key_file,
            instruments=virtual_instruments(res),
            safe_state=SafeState(), time_scale=1.0)
        return self

    def close(self) -> None:
        if self.instruments is not None:
            self.instruments.close()
        if self.emu is not None:
            self.emu.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def advance(self, ms: int) -> None:
        self.emu.advance(ms)

    def now_ms(self) -> int:
        return int(self.emu.now_ms())

    def hang_firmware(self, ms: int) -> None:
        with self.emu.lock:
            self.emu.board.hang(ms)


TargetFactory = Callable[[dict[str, str]], Target]
_TARGETS: dict[str, TargetFactory] = {}


def register_target(name: str, factory: TargetFactory) -> None:
    """Make ``--rig NAME`` build a target with ``factory(options)``."""
    if "/" in name or name.endswith(".toml") or ":" in name:
        raise ValueError(f"target name {name!r} would read as a path or URL")
    _TARGETS[name] = factory


def _emulator(options: dict[str, str]) -> Target:
    return EmulatedRig(seed=int(options.get("seed", "0")))


def _rp2(options: dict[str, str]) -> Target:
    try:
        from .rp2target import Rp2Rig
    except ImportError as e:
        raise RigConfigError("--rig rp2: the emulated RP2040 (pumphil.rp2) is not in this "
                             f"installation ({e})") from None
    return Rp2Rig(seed=int(options.get("seed", "0")))


register_target("emulator", _emulator)
register_target("rp2", _rp2)


def target_names() -> list[str]:
    for ep in entry_points(group="pumphil.hil.targets"):
        if ep.name not in _TARGETS:
            _TARGETS[ep.name] = ep.load()
    return sorted(_TARGETS)


def make_target(spec: str | None, options: dict[str, str] | None = None,
                max_bench_minutes: float | None = 15.0) -> Target:
    """The target ``--rig spec`` names (see the module docstring); not started yet."""
    options = options or {}
    if spec is None or spec == "":
        spec = "emulator"
    if spec.startswith("labgrid://"):
        from .labgridplace import LabgridRig
        return LabgridRig(spec, max_bench_minutes)
    if spec in target_names():
        return _TARGETS[spec](options)
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        from .config import load
        cfg = load(path)
        if cfg.labgrid is not None:
            from .labgridplace import LabgridRig
            return LabgridRig(f"labgrid://{cfg.labgrid[0]}/{cfg.labgrid[1]}", max_bench_minutes,
                              base=cfg)
        return BenchRig(cfg, max_bench_minutes)
    raise RigConfigError(f"--rig {spec}: not a rig file, a labgrid:// place or a target "
                         f"({', '.join(target_names())})")
