"""The rig file (``--rig rig.toml``): what a real bench is made of, read into a :class:`RigConfig`.

```toml
time_scale = 1.0                 # rig ms per wall ms (1 on a real bench; an emulator served at
                                 # speed S is a bench with time_scale = S)
[pump]
url = "hwgrep://2E8A:0005"       # anything pyserial opens: /dev/ttyACM0, rfc2217://, socket://
key_file = "keys/PICO-1234.json" # relative to the rig file; omitted: $ITPUMP_HOME/keys/<id>.json
stroke_nl = 250                  # nominal stroke of the mechanism (docs/hardware.md)

[instruments.psu]                # roles: psu, balance, pressure, switch (all four required)
resource = "TCPIP::192.168.10.11::5025::SOCKET"
driver = "PowerSupply"           # a class of pumphil.drivers; the default per role shown here
[instruments.balance]
resource = "TCPIP::192.168.10.12::8001::SOCKET"
density_g_per_ml = 0.998         # test fluid (water at 20 degC)
uncertainty_mg = 0.05            # readability + repeatability used in the trumpet limits
[instruments.pressure]
resource = "TCPIP::192.168.10.13::5025::SOCKET"
[instruments.switch]
resource = "TCPIP::192.168.10.14::5025::SOCKET"

[safe_state]                     # what teardown, failure, Ctrl-C and the guardian restore
supply_volts = 3.6
supply_current_a = 0.5
supply_on = true
phantom_baseline_pa = 1300.0

[labgrid]                        # instead of [pump] url and [instruments]: a labgrid place
coordinator = "127.0.0.1:20408"
place = "itpump-bench-1"
```

Every problem is a :class:`RigConfigError` naming the file and the key; nothing is guessed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import drivers
from ..drivers import Driver

ROLES = ("psu", "balance", "pressure", "switch")
DEFAULT_DRIVERS = {"psu": "PowerSupply", "balance": "Balance", "pressure": "PressureSource",
                   "switch": "SwitchUnit"}
STROKE_NL = 250            # the reference mechanism's stroke (firmware/pumpfw/board.py STROKE_NL)


class RigConfigError(ValueError):
    """The rig file (or a labgrid place) does not describe a usable rig; the message says where."""


@dataclass(frozen=True)
class Instrument:
    role: str
    resource: str                  # VISA resource string
    driver: str                    # class name in pumphil.drivers
    backend: str = "@py"           # pyvisa backend ("@py" = pyvisa-py; "" = the system's VISA)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SafeState:
    supply_volts: float = 3.6
    supply_current_a: float = 0.5
    supply_on: bool = True
    phantom_baseline_pa: float = 1300.0


@dataclass(frozen=True)
class RigConfig:
    name: str
    pump_url: str
    key_file: Path | None
    instruments: dict[str, Instrument]
    safe_state: SafeState = SafeState()
    time_scale: float = 1.0
    stroke_nl: int = STROKE_NL
    labgrid: tuple[str, str] | None = None   # (coordinator, place) the resources came from

    @property
    def density_g_per_ml(self) -> float:
        return float(self.instruments["balance"].options.get("density_g_per_ml", 1.0))

    @property
    def balance_uncertainty_mg(self) -> float:
        return float(self.instruments["balance"].options.get("uncertainty_mg", 0.05))

    def to_toml_dict(self) -> dict[str, Any]:
        """The rig file that describes this rig (written for a served emulator, `make hil-farm`)."""
        doc: dict[str, Any] = {"time_scale": self.time_scale,
                               "pump": {"url": self.pump_url, "stroke_nl": self.stroke_nl},
                               "instruments": {}, "safe_state": vars(self.safe_state).copy()}
        if self.key_file is not None:
            doc["pump"]["key_file"] = str(self.key_file)
        for role, ins in self.instruments.items():
            doc["instruments"][role] = {"resource": ins.resource, "driver": ins.driver,
                                        "backend": ins.backend, **ins.options}
        return doc


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         default: Any = None, required: bool = False) -> Any:
    if key not in table:
        if required:
            raise RigConfigError(f"{where}: missing {key!r}")
        return default
    v = table[key]
    if isinstance(v, bool) and kind in (int, float, (int, float)):
        raise RigConfigError(f"{where}.{key}: expected a number, got {v!r}")
    if not isinstance(v, kind):
        raise RigConfigError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {v!r}")
    return v


def parse(doc: dict[str, Any], origin: str = "<rig>", base: Path | None = None) -> RigConfig:
    """A RigConfig from a parsed rig file (a [labgrid] table gives coordinator and place only:
    :func:`pumphil.hil.labgridplace.resolve` fills the rest from the place)."""
    known = {"name", "time_scale", "pump", "instruments", "safe_state", "labgrid"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise RigConfigError(f"{origin}: unknown table or key {', '.join(unknown)}")
    time_scale = float(_get(doc, "time_scale", (int, float), origin, 1.0))
    if not time_scale > 0:
        raise RigConfigError(f"{origin}.time_scale: must be > 0")
    safe_doc = _get(doc, "safe_state", dict, origin, {})
    unknown = sorted(set(safe_doc) - set(vars(SafeState())))
    if unknown:
        raise RigConfigError(f"{origin}.safe_state: unknown key {', '.join(unknown)}")
    d = SafeState()
    safe = SafeState(
        supply_volts=float(safe_doc.get("supply_volts", d.supply_volts)),
        supply_current_a=float(safe_doc.get("supply_current_a", d.supply_current_a)),
        supply_on=bool(safe_doc.get("supply_on", d.supply_on)),
        phantom_baseline_pa=float(safe_doc.get("phantom_baseline_pa", d.phantom_baseline_pa)))
    if not 0 < safe.supply_volts <= 6.0:
        raise RigConfigError(f"{origin}.safe_state.supply_volts: {safe.supply_volts} V is not a "
                             "cell voltage the board takes (0..6 V)")
    pump = _get(doc, "pump", dict, origin, {})
    stroke_nl = int(_get(pump, "stroke_nl", int, f"{origin}.pump", STROKE_NL))
    key_file = _get(pump, "key_file", str, f"{origin}.pump")
    key_path = None
    if key_file is not None:
        key_path = Path(key_file)
        if not key_path.is_absolute() and base is not None:
            key_path = base / key_path
    lg = _get(doc, "labgrid", dict, origin)
    labgrid = None
    if lg is not None:
        labgrid = (str(_get(lg, "coordinator", str, f"{origin}.labgrid", required=True)),
                   str(_get(lg, "place", str, f"{origin}.labgrid", required=True)))
    instruments: dict[str, Instrument] = {}
    tables = _get(doc, "instruments", dict, origin, {})
    for role, t in tables.items():
        where = f"{origin}.instruments.{role}"
        if role not in ROLES:
            raise RigConfigError(f"{where}: unknown role (roles: {', '.join(ROLES)})")
        if not isinstance(t, dict):
            raise RigConfigError(f"{where}: expected a table")
        opts = {k: v for k, v in t.items() if k not in ("resource", "driver", "backend")}
        instruments[role] = Instrument(role, str(_get(t, "resource", str, where, required=True)),
                                       str(_get(t, "driver", str, where, DEFAULT_DRIVERS[role])),
                                       str(_get(t, "backend", str, where, "@py")), opts)
    url = _get(pump, "url", str, f"{origin}.pump")
    if labgrid is None:
        if url is None:
            raise RigConfigError(f"{origin}.pump: missing 'url' (or give a [labgrid] place)")
        missing = [r for r in ROLES if r not in instruments]
        if missing:
            raise RigConfigError(f"{origin}.instruments: missing {', '.join(missing)}")
    return RigConfig(name=str(doc.get("name", origin)), pump_url=url or "", key_file=key_path,
                     instruments=instruments, safe_state=safe, time_scale=time_scale,
                     stroke_nl=stroke_nl, labgrid=labgrid)


def load(path: str | Path) -> RigConfig:
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise RigConfigError(f"{p}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise RigConfigError(f"{p}: not TOML: {e}") from None
    return parse(doc, str(p), p.resolve().parent)


def driver_class(name: str) -> type[Driver]:
    cls = getattr(drivers, name, None)
    if not isinstance(cls, type) or not issubclass(cls, drivers.Driver):
        raise RigConfigError(f"driver {name!r} is not a class of pumphil.drivers")
    return cls


def virtual_instruments(resources: dict[str, str]) -> dict[str, Instrument]:
    """The instruments of a rig whose instruments are the emulator's virtual ones
    (pumphil.instruments.VirtualRig), given their VISA resources by role: default drivers, the
    pyvisa-py backend, water density and the balance model's uncertainty."""
    return {role: Instrument(role, resources[role], DEFAULT_DRIVERS[role], "@py",
                             {"density_g_per_ml": 1.0, "uncertainty_mg": 0.05}
                             if role == "balance" else {})
            for role in ROLES}
