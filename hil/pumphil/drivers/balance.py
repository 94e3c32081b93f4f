"""Mettler Toledo balance over MT-SICS level 0/1 (XPR/XPE/XS/MS families): CR LF both ways.

Commands are upper case. Replies: "<cmd> <status> <value> <unit>"; status A/S = done, D = dynamic
(immediate, unstable), I = not executable now (busy, no stable value in time), L = bad parameter,
+ / - = over/underload; "ES"/"ET"/"EL" = syntax/transmission/logical error.
"""

from __future__ import annotations

from pyvisa.resources import MessageBasedResource

from .base import Driver, InstrumentError


class BalanceError(InstrumentError):
    pass


class BalanceBusy(BalanceError):
    """Status I: no stable value within the balance's time limit, or busy."""


class BalanceOverload(BalanceError):
    pass


class Balance(Driver):
    read_termination = "\r\n"
    write_termination = "\r\n"
    default_timeout_ms = 15000  # S waits for stability on a real balance

    def __init__(self, resource: MessageBasedResource, timeout_ms: int | None = None) -> None:
        super().__init__(resource, timeout_ms)

    def _cmd(self, command: str) -> list[str]:
        reply = self.resource.query(command).strip()
        fields = reply.split()
        if not fields or fields[0] in ("ES", "ET", "EL"):
            raise BalanceError("{}: {}".format(command, reply or "no reply"))
        if len(fields) < 2:
            raise BalanceError(f"{command}: malformed reply {reply!r}")
        status = fields[1]
        if status == "I":
            raise BalanceBusy(f"{command}: not executable now ({reply})")
        if status == "L":
            raise BalanceError(f"{command}: parameter error ({reply})")
        if status in ("+", "-"):
            raise BalanceOverload("{}: {}".format(command, "overload" if status == "+" else "underload"))
        return fields

    @staticmethod
    def _grams(fields: list[str], command: str) -> float:
        if len(fields) < 4 or fields[3] != "g":
            raise BalanceError("{}: expected a weight in g, got {!r}".format(command, " ".join(fields)))
        return float(fields[2])

    @staticmethod
    def _quoted(reply: list[str]) -> str:
        text = " ".join(reply[2:])
        return text.strip('"')

    def reset(self) -> str:
        """@: cancel pending commands, clear tare; returns the serial number."""
        reply = self.resource.query("@").strip()
        if not reply.startswith("I4 A"):
            raise BalanceError(f"@: unexpected reply {reply!r}")
        return reply[4:].strip().strip('"')

    def serial_number(self) -> str:
        return self._quoted(self._cmd("I4"))

    def model(self) -> str:
        """I2: type, capacity and unit, e.g. 'XPR205 220.00000 g'."""
        return self._quoted(self._cmd("I2"))

    def weight_g(self) -> float:
        """S: the next stable net weight (g). Raises BalanceBusy when none is available."""
        return self._grams(self._cmd("S"), "S")

    def weight_immediate_g(self) -> tuple[float, bool]:
        """SI: the current net weight (g) and whether it is stable."""
        fields = self._cmd("SI")
        return self._grams(fields, "SI"), fields[1] == "S"

    def zero(self) -> None:
        """Z: zero on the next stable weight (clears the tare)."""
        self._cmd("Z")

    def zero_immediate(self) -> bool:
        """ZI: zero now; returns whether the weight was stable."""
        return self._cmd("ZI")[1] == "S"

    def tare(self) -> float:
        """T: tare on the next stable weight; returns the tare (g)."""
        return self._grams(self._cmd("T"), "T")

    def tare_value_g(self) -> float:
        return self._grams(self._cmd("TA"), "TA")

    def clear_tare(self) -> None:
        self._cmd("TAC")
