"""A rig shared as a labgrid place (``--rig labgrid://HOST:PORT/PLACE``, or a rig file with a
[labgrid] table): the plugin acquires the place through the coordinator (``labgrid-client
acquire``, as a person would), reads its resources, runs the tests as on a bench, and releases it.

What the place must hold (docs/hil.md has exporter configurations for a real bench and for the
emulated rig):
  * the pump's serial port: a ``NetworkSerialPort`` (rfc2217 or raw; from an exporter's
    ``USBSerialPort``/``RawSerialPort`` through ser2net, or a port served directly), or a local
    ``USBSerialPort``/``RawSerialPort`` (its ``port``/``match`` device path is opened as is);
  * four ``PyVISADevice`` resources named by role: ``psu`` (the supply: the board's power),
    ``balance``, ``pressure``, ``switch``.
The key file is not a resource (keys do not travel through a coordinator): it comes from the
rig file's [pump] key_file, else ``$ITPUMP_HOME/keys/<device id>.json``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .config import DEFAULT_DRIVERS, ROLES, Instrument, RigConfig, RigConfigError, SafeState
from .target import BenchRig

SPEC = re.compile(r"^labgrid://(?P<coord>[^/]+)/(?P<place>[^/]+)$")


def parse_spec(spec: str) -> tuple[str, str]:
    m = SPEC.match(spec)
    if m is None:
        raise RigConfigError(f"--rig {spec}: expected labgrid://HOST:PORT/PLACE")
    return m["coord"], m["place"]


def _client() -> str:
    exe = shutil.which("labgrid-client") or str(Path(sys.executable).with_name("labgrid-client"))
    if not Path(exe).exists():
        raise RigConfigError("labgrid-client not found (pip install labgrid)")
    return exe


def client(coordinator: str, place: str, *args: str, timeout_s: float = 30.0) -> str:
    """Run ``labgrid-client -x COORD -p PLACE ARGS``; RigConfigError with its output on failure."""
    cmd = [_client(), "-x", coordinator, "-p", place, *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                           env={**os.environ, "LG_COORDINATOR": coordinator})
    except subprocess.TimeoutExpired:
        raise RigConfigError(f"{' '.join(cmd[1:])}: no answer in {timeout_s:g} s") from None
    if p.returncode != 0:
        raise RigConfigError(f"labgrid-client {' '.join(args)} on {place}@{coordinator}: "
                             f"{(p.stderr or p.stdout).strip()}")
    return p.stdout


def place_resources(coordinator: str, place: str
                    ) -> tuple[dict[str, tuple[str, dict[str, Any]]], dict[str, str]]:
    """name -> (class, parameters) of the resources the acquired place holds, and its tags."""
    from labgrid.remote.client import start_session
    session = start_session(coordinator, extra={})
    try:
        pl = session.get_place(place)
        entries = session.get_target_resources(pl)
        return ({name: (cls, dict(entry.args)) for (name, cls), entry in entries.items()},
                dict(pl.tags))
    finally:
        session.loop.run_until_complete(session.stop())
        session.loop.run_until_complete(session.close())


def rig_config(coordinator: str, place: str, res: dict[str, tuple[str, dict[str, Any]]],
               base: RigConfig | None = None, tags: dict[str, str] | None = None) -> RigConfig:
    """The rig the place describes. Time scale: the rig file's, else the place's tag
    ``time_scale`` (an emulated rig served at a speed), else 1."""
    url = None
    instruments: dict[str, Instrument] = {}
    for name, (cls, a) in res.items():
        if cls == "NetworkSerialPort":
            proto = a.get("protocol", "rfc2217")
            scheme = {"rfc2217": "rfc2217", "raw": "socket"}.get(proto)
            if scheme is None:
                raise RigConfigError(f"{place}: NetworkSerialPort protocol {proto!r}")
            url = f"{scheme}://{a['host']}:{a['port']}"
        elif cls in ("USBSerialPort", "RawSerialPort") and url is None:
            url = a.get("port")
        elif cls == "PyVISADevice":
            if name not in ROLES:
                raise RigConfigError(f"{place}: PyVISADevice {name!r} is not a role "
                                     f"({', '.join(ROLES)})")
            opts = dict(base.instruments[name].options) if base and name in base.instruments \
                else {}
            instruments[name] = Instrument(name, f"{a['type']}::{a['url']}",
                                           DEFAULT_DRIVERS[name], a.get("backend") or "@py", opts)
    if url is None:
        raise RigConfigError(f"{place}: no serial port resource for the pump")
    missing = [r for r in ROLES if r not in instruments]
    if missing:
        raise RigConfigError(f"{place}: no PyVISADevice for {', '.join(missing)}")
    return RigConfig(name=f"labgrid place {place}", pump_url=url,
                     key_file=base.key_file if base else None, instruments=instruments,
                     safe_state=base.safe_state if base else SafeState(),
                     time_scale=base.time_scale if base else float((tags or {}).get(
                         "time_scale", 1.0)),
                     stroke_nl=base.stroke_nl if base else 250, labgrid=(coordinator, place))


class LabgridRig(BenchRig):
    kind = "labgrid"

    def __init__(self, spec: str, max_test_minutes: float | None = 15.0,
                 base: RigConfig | None = None) -> None:
        self.coordinator, self.place = parse_spec(spec)
        self.base = base
        placeholder = RigConfig(f"labgrid place {self.place}", "", None, {},
                                labgrid=(self.coordinator, self.place))
        if base is not None:
            placeholder = dataclasses.replace(placeholder, time_scale=base.time_scale)
        super().__init__(placeholder, max_test_minutes)
        self.acquired = False

    def start(self) -> LabgridRig:
        client(self.coordinator, self.place, "acquire")
        self.acquired = True
        try:
            res, tags = place_resources(self.coordinator, self.place)
            self.config = rig_config(self.coordinator, self.place, res, self.base, tags)
        except BaseException:
            self.close()
            raise
        self.time_scale = self.config.time_scale
        return self

    def close(self) -> None:
        if self.acquired:
            self.acquired = False
            client(self.coordinator, self.place, "release")

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "place": f"{self.place}@{self.coordinator}"}
