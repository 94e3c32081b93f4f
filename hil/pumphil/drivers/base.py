"""Common plumbing for the rig's pyvisa drivers: termination, timeout, error checking."""

from __future__ import annotations

from typing import Self, TypeVar

import pyvisa
from pyvisa.resources import MessageBasedResource

T = TypeVar("T", bound="Driver")


class InstrumentError(Exception):
    """An instrument refused or failed a command (SCPI error queue entry, MT-SICS error reply)."""


class Driver:
    """A driver on one pyvisa message-based resource; sets terminations and the timeout."""

    read_termination = "\n"
    write_termination = "\n"
    default_timeout_ms = 5000

    def __init__(self, resource: MessageBasedResource, timeout_ms: int | None = None) -> None:
        self.resource = resource
        resource.read_termination = self.read_termination
        resource.write_termination = self.write_termination
        resource.timeout = self.default_timeout_ms if timeout_ms is None else timeout_ms

    @classmethod
    def open(cls, rm: pyvisa.ResourceManager, resource_name: str,
             timeout_ms: int | None = None) -> Self:
        res = rm.open_resource(resource_name)
        if not isinstance(res, MessageBasedResource):
            raise InstrumentError(f"{resource_name} is not a message-based resource")
        return cls(res, timeout_ms=timeout_ms)

    def close(self) -> None:
        self.resource.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScpiDriver(Driver):
    """SCPI instrument: every write/query is followed by SYST:ERR? when ``check_errors`` is set
    (the default), and a non-empty error queue raises InstrumentError with all entries."""

    def __init__(self, resource: MessageBasedResource, timeout_ms: int | None = None,
                 check_errors: bool = True) -> None:
        super().__init__(resource, timeout_ms)
        self.check_errors = check_errors

    def idn(self) -> str:
        return self.query("*IDN?")

    def reset(self) -> None:
        """*RST then *CLS: the instrument's power-on settings and an empty error queue."""
        self.write("*RST")
        self.write("*CLS")

    def write(self, command: str) -> None:
        self.resource.write(command)
        if self.check_errors:
            self._raise_errors(command)

    def query(self, command: str) -> str:
        reply = self.resource.query(command).strip()
        if self.check_errors:
            self._raise_errors(command)
        return reply

    def query_float(self, command: str) -> float:
        reply = self.query(command)
        try:
            return float(reply.split(",")[0])
        except ValueError:
            raise InstrumentError(f"{command}: not a number: {reply!r}") from None

    def errors(self) -> list[tuple[int, str]]:
        """Drain the error queue (SYST:ERR? until code 0; at most 32 reads)."""
        found: list[tuple[int, str]] = []
        for _ in range(32):
            reply = self.resource.query("SYST:ERR?").strip()
            head, _, msg = reply.partition(",")
            try:
                code = int(head)
            except ValueError:
                raise InstrumentError(f"SYST:ERR?: unexpected reply {reply!r}") from None
            if code == 0:
                break
            found.append((code, msg.strip().strip('"')))
        return found

    def _raise_errors(self, command: str) -> None:
        errs = self.errors()
        if errs:
            raise InstrumentError(
                "{}: {}".format(command, "; ".join(f"{c} {m}" for c, m in errs))
            )


def channel_list(channels: list[int] | tuple[int, ...]) -> str:
    """[101, 102] -> '(@101,102)'."""
    if not channels:
        raise ValueError("empty channel list")
    return "(@{})".format(",".join(str(int(c)) for c in channels))
