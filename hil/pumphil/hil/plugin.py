"""The HIL suite's pytest plugin (entry point ``itpump_hil``; docs/hil.md).

Options: ``--rig`` (nothing = the emulated rig; ``rig.toml``; ``labgrid://HOST:PORT/PLACE``; a
registered target such as ``rp2``), ``--rig-report DIR`` (``DIR/index.html``, ``DIR/junit.xml``,
``DIR/measurements.json``), ``--rig-max-minutes`` (rig time one test may take on a real-time
target), ``--rig-seed``.

Fixtures: ``rig`` (the :class:`Rig`), ``pump`` (a connected PumpClient), ``supply``,
``balance``, ``phantom`` (also ``pressure_source``), ``switch`` (pyvisa drivers), ``clock``
(:class:`~pumphil.hil.clock.RigClock`), ``measure`` (:class:`~pumphil.hil.measure.Measurements`).

Markers: ``hil_duration(minutes)`` - the rig time the test takes: skipped on a target that may
not spend that long (a bench: ``--rig-max-minutes``); ``rig_needs(*capabilities)`` - skipped on
a target without them (``virtual_time``, ``firmware_hang``).

Safe state (pumphil.hil.safestate) after every test that used the rig, whatever its outcome
(passed, failed, Ctrl-C - pytest tears fixtures down on KeyboardInterrupt -, pytest-timeout's
signal method); a bench is also guarded by a separate process (pumphil.hil.guard) for the cases
where the test process dies without teardown. A rig that cannot be made safe is a test error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvisa

from ..drivers import Balance, PowerSupply, PressureSource, SwitchUnit
from .clock import RigClock
from .config import RigConfig, RigConfigError, driver_class
from .guard import Guardian
from .measure import Measurements, TestRecord
from .target import Target, make_target

RECORDS = pytest.StashKey[list[TestRecord]]()
SESSION = pytest.StashKey["HilSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("itpump-hil", "itpump HIL rig (docs/hil.md)")
    g.addoption("--rig", default=None, metavar="RIG",
                help="rig.toml, labgrid://HOST:PORT/PLACE or a target name (emulator, rp2); "
                     "default: the emulated rig")
    g.addoption("--rig-report", default=None, metavar="DIR",
                help="write DIR/index.html, DIR/junit.xml and DIR/measurements.json")
    g.addoption("--rig-max-minutes", type=float, default=15.0, metavar="MIN",
                help="rig time one test may take on a real-time target (default 15)")
    g.addoption("--rig-seed", type=int, default=0, help="seed of the emulated rig")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil_duration(minutes): rig time the test takes; skipped "
                            "on targets that may not spend it (--rig-max-minutes)")
    config.addinivalue_line("markers", "rig_needs(*capabilities): skipped on targets without "
                            "them (virtual_time, firmware_hang)")
    report = config.getoption("rig_report", None)
    if report and not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(Path(report) / "junit.xml")
    config.stash[RECORDS] = []


class HilSession:
    """What the session shares: the target spec, and a started target when it is shared."""

    def __init__(self, config: pytest.Config) -> None:
        self.spec: str | None = config.getoption("rig")
        self.max_minutes: float = config.getoption("rig_max_minutes")
        self.seed: int = config.getoption("rig_seed")
        self.shared: Target | None = None
        self.guardian: Guardian | None = None
        self.log_dir = Path(str(config.getoption("rig_report") or "")) if \
            config.getoption("rig_report") else None
        try:
            self.probe = make_target(self.spec, {"seed": str(self.seed)}, self.max_minutes)
        except RigConfigError as e:
            raise pytest.UsageError(str(e)) from None

    def target(self) -> Target:
        if self.probe.per_test:
            return make_target(self.spec, {"seed": str(self.seed)}, self.max_minutes).start()
        if self.shared is None:
            self.shared = self.probe.start()
            if self.shared.guarded:
                log = (self.log_dir or Path(".")) / "guardian.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                self.guardian = Guardian(self.shared.config, log)
        return self.shared

    def close(self) -> None:
        if self.guardian is not None:
            self.guardian.release()
        if self.shared is not None:
            self.shared.close()


class Rig:
    """The ``rig`` fixture: one target for one test, with its instruments."""

    def __init__(self, target: Target, record: TestRecord) -> None:
        self.target = target
        self.record = record
        self.clock = RigClock(target)
        self._rms: dict[str, pyvisa.ResourceManager] = {}
        self._open: list[Any] = []
        self._t0 = target.now_ms()

    @property
    def config(self) -> RigConfig:
        return self.target.config

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def capabilities(self) -> frozenset[str]:
        return self.target.capabilities

    def instrument(self, role: str) -> Any:
        ins = self.config.instruments[role]
        if ins.backend not in self._rms:
            self._rms[ins.backend] = pyvisa.ResourceManager(ins.backend)
        drv = driver_class(ins.driver).open(self._rms[ins.backend], ins.resource)
        self._open.append(drv)
        return drv

    def open_pump(self, timeout_s: float | None = None) -> Any:
        from pumphost.client import PumpClient
        c = PumpClient.open(self.config.pump_url, key_file=self.config.key_file,
                            timeout_s=timeout_s or (2.0 if not self.target.realtime else 5.0))
        self._open.append(c)
        return c

    def hang_firmware(self, ms: int) -> None:
        self.target.hang_firmware(ms)

    def close_connections(self) -> None:
        for obj in reversed(self._open):
            try:
                obj.close()
            except Exception:  # noqa: BLE001  (closing what may already be gone)
                pass
        self._open.clear()
        for rm in self._rms.values():
            rm.close()
        self._rms.clear()
        self.record.rig_ms = max(0, self.target.now_ms() - self._t0)


@pytest.fixture(scope="session")
def _hil_session(request: pytest.FixtureRequest) -> Iterator[HilSession]:
    s = HilSession(request.config)
    request.config.stash[SESSION] = s
    try:
        yield s
    finally:
        s.close()


def _record(item: pytest.Item) -> TestRecord:
    rec = getattr(item, "_hil_record", None)
    if rec is None:
        rec = TestRecord(item.nodeid)
        item._hil_record = rec  # type: ignore[attr-defined]
        item.config.stash[RECORDS].append(rec)
    return rec


@pytest.fixture
def rig(_hil_session: HilSession, request: pytest.FixtureRequest) -> Iterator[Rig]:
    probe = _hil_session.probe
    for mark in request.node.iter_markers("hil_duration"):
        minutes = float(mark.args[0])
        limit = probe.max_test_minutes
        if limit is not None and minutes > limit:
            pytest.skip(f"takes {minutes:g} min of rig time; {probe.kind} allows {limit:g} "
                        "(--rig-max-minutes)")
    for mark in request.node.iter_markers("rig_needs"):
        missing = set(mark.args) - probe.capabilities
        if missing:
            pytest.skip(f"{probe.kind} target lacks {', '.join(sorted(missing))}")
    target = _hil_session.target()
    r = Rig(target, _record(request.node))
    try:
        yield r
    finally:
        r.close_connections()
        try:
            from .safestate import make_safe
            res = make_safe(target.config)
        finally:
            if target.per_test:
                target.close()
        if not res.ok:
            raise RuntimeError("the rig could not be made safe: " + "; ".join(res.failed))


@pytest.fixture
def pump(rig: Rig) -> Any:
    """A PumpClient connected to the rig's pump (closed before the safe state)."""
    return rig.open_pump()


@pytest.fixture
def supply(rig: Rig) -> PowerSupply:
    drv = rig.instrument("psu")
    assert isinstance(drv, PowerSupply)
    return drv


@pytest.fixture
def balance(rig: Rig) -> Balance:
    drv = rig.instrument("balance")
    assert isinstance(drv, Balance)
    return drv


@pytest.fixture
def phantom(rig: Rig) -> PressureSource:
    drv = rig.instrument("pressure")
    assert isinstance(drv, PressureSource)
    return drv


@pytest.fixture
def pressure_source(phantom: PressureSource) -> PressureSource:
    return phantom


@pytest.fixture
def switch(rig: Rig) -> SwitchUnit:
    drv = rig.instrument("switch")
    assert isinstance(drv, SwitchUnit)
    return drv


@pytest.fixture
def clock(rig: Rig) -> RigClock:
    return rig.clock


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Measurements:
    return Measurements(_record(request.node))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    rep: pytest.TestReport = outcome.get_result()
    rec: TestRecord | None = getattr(item, "_hil_record", None)
    if rec is None:
        return
    if rep.when == "call":
        # JUnit XML takes a test case's properties from its teardown report, made from these
        for m in rec.measurements:
            verdict = "PASS" if m.ok else "FAIL"
            item.user_properties.append(
                (f"measurement: {m.name}", f"{m.value} {m.unit} [{m.low}, {m.high}] {verdict}"))
        failed = [m for m in rec.measurements if not m.ok]
        if failed and rep.passed:
            rep.outcome = "failed"
            rep.longrepr = "measurements outside their limits:\n" + "\n".join(
                f"  {m.name} = {m.value} {m.unit}, limits [{m.low}, {m.high}]" for m in failed)
    rec.duration_s += rep.duration
    if rep.failed:
        rec.outcome = "failed" if rep.when == "call" else "error"
        rec.longrepr = str(rep.longrepr)
    elif rep.skipped and not rec.outcome:
        rec.outcome = "skipped"
    elif rep.when == "call" and not rec.outcome:
        rec.outcome = "passed"


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = session.config.getoption("rig_report", None)
    records = session.config.stash.get(RECORDS, [])
    if not out or not records:
        return
    hil = session.config.stash.get(SESSION, None)
    info = {"rig": str(session.config.getoption("rig") or "emulator"),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    if hil is not None:
        info["target"] = hil.probe.kind
    from .report import write
    write(Path(out), records, info)
