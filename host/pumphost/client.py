"""PumpClient: the host side of the itpump line protocol (docs/protocol.md).

Open a pump by pyserial URL or device path::

    with PumpClient.open("socket://127.0.0.1:5555") as pump:      # keys looked up by device id
        print(pump.status())
        pump.bolus(volume_nl=5000, duration_ms=60000)

One request is outstanding at a time. A request is resent with the *same* id, counter and tag
after a timeout, a garbled reply or a ``!-`` reply (the pump could not read our line), so a lost
reply never executes a command twice: the pump answers a resend from its replay cache. Event lines
(``~``) that arrive meanwhile go to the subscribers (:meth:`on_event`) and to :meth:`events`.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, Self

import serial
from pumpcore import auth as _auth
from pumpcore import reasons, wire
from pumpcore.dispatch import COMMANDS

from . import keys as _keys
from .errors import (
    AuthError,
    OutcomeUnknownError,
    ProtocolError,
    PumpError,
    TransportError,
    error_for,
)

DEFAULT_BAUD = 115200
EPOCH = _dt.date(2000, 1, 1)  # wall-clock day 0 (docs/architecture.md "Time")
Event = dict[str, Any]


class SerialLike(Protocol):
    timeout: float | None

    def write(self, data: bytes) -> int | None: ...
    def read(self, size: int = 1) -> bytes: ...
    def close(self) -> None: ...

    @property
    def in_waiting(self) -> int: ...


def _open_url(url: str, read_timeout: float) -> SerialLike:
    try:
        port: SerialLike = serial.serial_for_url(url, baudrate=DEFAULT_BAUD, timeout=read_timeout)
    except (serial.SerialException, OSError, ValueError) as e:
        raise TransportError(f"cannot open {url}: {e}") from None
    return port


def wall_clock_of(moment: _dt.datetime) -> tuple[int, int]:
    """(day since 2000-01-01, ms of day) of a naive/local datetime, as `set_clock` expects."""
    day = (moment.date() - EPOCH).days
    ms = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000 \
        + moment.microsecond // 1000
    return day, ms


class PumpClient:
    """A connection to one pump. Not thread-safe (one caller at a time)."""

    def __init__(self, port: SerialLike, keyset: _keys.KeySet | None = None, *,
                 url: str | None = None, timeout_s: float = 2.0, retries: int = 3,
                 reconnect_s: float = 10.0, role: str | None = None,
                 lookup_keys: bool = True) -> None:
        self._port: SerialLike | None = port
        self.url = url
        self.keyset = keyset
        self.timeout_s = timeout_s
        self.retries = retries
        self.reconnect_s = reconnect_s
        self.role = role
        self.lookup_keys = lookup_keys
        self.info: dict[str, Any] | None = None
        self._counters: dict[str, int] = {}
        self._buf = bytearray()
        self._overflow = False
        self._events: deque[Event] = deque(maxlen=10000)
        self._subscribers: list[Callable[[Event], None]] = []
        self._id_prefix = secrets.token_hex(4)
        self._id_seq = 0
        self.last_event_seq: int | None = None
        self.resends = 0  # statistics: how many lines were sent again ...
        self.timeouts = 0  # ... and how many waits for a reply ran out

    # --- opening and closing -----------------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, key_file: str | Path | None = None,
             keyset: _keys.KeySet | None = None, timeout_s: float = 2.0, retries: int = 3,
             reconnect_s: float = 10.0, role: str | None = None,
             lookup_keys: bool = True) -> PumpClient:
        """Open ``url`` (anything ``serial.serial_for_url`` takes: a device path, socket://,
        rfc2217://, hwgrep://VID:PID, loop://, spy://...). Keys come from ``keyset``, else
        ``key_file``, else (lookup_keys) ``$ITPUMP_HOME/keys/<device_id>.json`` after `hello`."""
        if keyset is None and key_file is not None:
            keyset = _keys.load(Path(key_file))
        port = _open_url(url, 0.05)
        return cls(port, keyset, url=url, timeout_s=timeout_s, retries=retries,
                   reconnect_s=reconnect_s, role=role, lookup_keys=lookup_keys)

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            finally:
                self._port = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reconnect(self) -> None:
        """Reopen the URL, retrying until ``reconnect_s`` passes (a Pico re-enumerates its USB
        port after a reset; hwgrep:// finds it again under a new device name)."""
        if self.url is None:
            raise TransportError("connection lost and no URL to reopen")
        self.close()
        deadline = time.monotonic() + self.reconnect_s
        last: Exception | None = None
        while True:
            try:
                self._port = _open_url(self.url, 0.05)
                self._buf.clear()
                self._overflow = False
                return
            except TransportError as e:
                last = e
            if time.monotonic() >= deadline:
                raise TransportError(f"cannot reopen {self.url}: {last}") from None
            time.sleep(0.2)

    # --- low-level I/O -----------------------------------------------------------------------
    def _write(self, line: str) -> None:
        if self._port is None:
            self.reconnect()
        assert self._port is not None
        try:
            self._port.write(line.encode("ascii") + b"\n")
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"write failed: {e}") from None

    def _read_line(self, deadline: float) -> str | None:
        """Next complete line (without LF/CR) before ``deadline``, else None. Lines longer than
        MAX_LINE are dropped; bytes that are not ASCII turn into '?' (and fail the CRC)."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                if self._overflow:
                    self._overflow = False
                    continue
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                return raw.decode("ascii", errors="replace").replace("\ufffd", "?")
            if len(self._buf) > wire.MAX_LINE + 1:
                self._buf.clear()
                self._overflow = True
            now = time.monotonic()
            if self._port is None:
                self.reconnect()
            assert self._port is not None
            try:
                # block (briefly) for one byte, then take whatever else is already there
                # (in_waiting is not a byte count on every transport, e.g. socket://)
                self._port.timeout = min(0.05, max(0.0, deadline - now))
                chunk = self._port.read(1)
                if chunk:
                    self._port.timeout = 0
                    chunk += self._port.read(4096)
                elif now >= deadline:
                    return None
            except (serial.SerialException, OSError, TypeError, AttributeError) as e:
                # TypeError/AttributeError: pyserial's socket:// reading a closed socket
                raise TransportError(f"read failed: {e}") from None
            if chunk:
                self._buf.extend(chunk)

    def _deliver_event(self, seq: int, data: Event) -> None:
        event = dict(data)
        event["_seq"] = seq
        self.last_event_seq = seq
        self._events.append(event)
        for cb in list(self._subscribers):
            cb(event)

    # --- events ------------------------------------------------------------------------------
    def on_event(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event line received from now on (during requests
        and :meth:`poll_events`). Each event dict carries its sequence number as ``_seq``.
        Returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def poll_events(self, timeout_s: float = 0.0) -> list[Event]:
        """Read the link for up to ``timeout_s`` (returns as soon as an event is queued) and
        return the queued events, oldest first."""
        deadline = time.monotonic() + timeout_s
        while True:
            # block until the first event (or the deadline), then take what is already there
            line = self._read_line(deadline if not self._events else 0.0)
            if line is None:
                break
            self._handle_unsolicited(line)
        out = list(self._events)
        self._events.clear()
        return out

    def events(self, timeout_s: float | None = None) -> Iterator[Event]:
        """Iterate over events as they arrive; stops after ``timeout_s`` without one
        (None: forever, until the caller breaks or Ctrl-C)."""
        while True:
            got = self.poll_events(0.5 if timeout_s is None else timeout_s)
            if not got and timeout_s is not None:
                return
            yield from got

    def _handle_unsolicited(self, line: str) -> None:
        try:
            parsed = wire.parse_reply(line)
        except wire.WireError:
            return
        if parsed is not None and parsed[0] == "~":
            self._deliver_event(parsed[1], parsed[2])

    # --- requests ----------------------------------------------------------------------------
    def _next_id(self) -> str:
        self._id_seq += 1
        return f"{self._id_prefix}{self._id_seq:x}"

    def _choose_role(self, cmd: str, role: str | None) -> str:
        allowed = COMMANDS[cmd][0] if cmd in COMMANDS else ("clinician",)
        if role is not None:
            return role
        if self.role is not None:   # an explicit role is used as is (the pump decides)
            return self.role
        have = self.keyset.roles() if self.keyset else []
        for r in ("readonly", "patient", "clinician"):   # least privilege first
            if r in allowed and r in have:
                return r
        if not have:
            raise AuthError("no key file for this pump (itpump keys generate / --key-file)",
                            "no_key")
        raise AuthError(f"the key file has no key for a role allowed to {cmd} "
                        f"({', '.join(allowed)})", reasons.ROLE_FORBIDDEN)

    def _ensure_keys(self) -> None:
        if self.keyset is None and self.lookup_keys and self.info is not None:
            path = _keys.default_key_path(str(self.info.get("device_id")))
            if path.exists():
                self.keyset = _keys.load(path)

    def _key_for(self, role: str) -> bytes:
        self._ensure_keys()
        if self.keyset is None:
            raise AuthError("no key file for this pump (itpump keys generate / --key-file)",
                            "no_key")
        if self.keyset.device_id != self.info_device_id():
            raise AuthError(f"key file is for {self.keyset.device_id}, pump is "
                            f"{self.info_device_id()}", "no_key")
        key = self.keyset.keys.get(role)
        if key is None:
            raise AuthError(f"the key file has no {role} key", "no_key")
        return key

    def info_device_id(self) -> str:
        if self.info is None:
            self.hello()
        assert self.info is not None
        return str(self.info.get("device_id"))

    def hello(self) -> dict[str, Any]:
        """Protocol version, firmware, device id, board and last accepted counters (no key)."""
        data = self._exchange("hello", {}, None)
        self.info = data
        counters = data.get("counters") or {}
        for r, n in counters.items():
            if isinstance(n, int):
                self._counters[r] = max(self._counters.get(r, 0), n)
        return data

    def request(self, cmd: str, args: dict[str, Any] | None = None,
                role: str | None = None) -> dict[str, Any]:
        """Send one authenticated command and return the reply data; raises a PumpError."""
        if self.info is None:
            self.hello()
        self._ensure_keys()
        r = self._choose_role(cmd, role)
        key = self._key_for(r)
        try:
            return self._exchange(cmd, args or {}, (r, key))
        except AuthError as e:
            if e.reason != reasons.STALE_COUNTER or getattr(e, "_resent", False):
                raise
        # another host used our counter range: resynchronise once from hello, then retry with a
        # new id (the refused request did not execute)
        self.hello()
        return self._exchange(cmd, args or {}, (r, key))

    def _exchange(self, cmd: str, args: dict[str, Any],
                  cred: tuple[str, bytes] | None) -> dict[str, Any]:
        req_id = self._next_id()
        if cred is None:
            body = wire.request_body(req_id, None, None, cmd, args)
            line = wire.request_line(body, None)
        else:
            role, key = cred
            counter = self._counters.get(role, 0) + 1
            self._counters[role] = counter
            body = wire.request_body(req_id, role, counter, cmd, args)
            line = wire.request_line(body, _auth.tag(key, body))
        if len(line) > wire.MAX_LINE:
            raise ProtocolError(f"{cmd} request is {len(line)} bytes (max {wire.MAX_LINE})",
                                reasons.LINE_TOO_LONG)
        attempts = self.retries + 1
        for attempt in range(attempts):
            if attempt:
                self.resends += 1
            try:
                self._write(line)
                result = self._await(req_id)
            except TransportError:
                if attempt + 1 >= attempts or self.url is None:
                    raise
                self.reconnect()
                continue
            if result is None:
                continue  # timeout, garbled reply or "!-": resend the same line
            kind, data, reason = result
            if kind == "=":
                return data
            assert reason is not None
            msg = str(data.get("msg", reason))
            err = error_for(reason, msg, data)
            if attempt and reason == reasons.STALE_COUNTER and cred is not None:
                raise OutcomeUnknownError(
                    f"{cmd}: reply lost and the pump no longer remembers request {req_id} "
                    "(it was reset?); it may have run: check status/log", "outcome_unknown")
            if attempt:
                err._resent = True  # type: ignore[attr-defined]
            raise err
        raise TransportError(f"{cmd}: no valid reply after {attempts} attempts "
                             f"({self.timeout_s:g} s each)", "timeout")

    def _await(self, req_id: str) -> tuple[str, dict[str, Any], str | None] | None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            line = self._read_line(deadline)
            if line is None:
                self.timeouts += 1
                return None
            try:
                parsed = wire.parse_reply(line)
            except wire.WireError:
                return None  # a garbled reply might have been ours: resend (the pump dedups)
            if parsed is None:
                continue  # REPL chatter, echo
            kind, rid, data, reason = parsed
            if kind == "~":
                assert isinstance(rid, int)
                self._deliver_event(rid, data)
            elif rid == req_id:
                return kind, data, reason
            elif rid is None:
                return None  # "!-": the pump could not read a line of ours: resend
            # replies to other (earlier, abandoned) ids are ignored

    # --- typed commands ------------------------------------------------------------------------
    def status(self, role: str | None = None) -> dict[str, Any]:
        return self.request("status", role=role)

    def log(self, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        """One page: {"entries": [[seq, entry], ...], "last": seq, "more": bool}."""
        args: dict[str, Any] = {"since": since}
        if limit is not None:
            args["limit"] = limit
        return self.request("log", args)

    def log_all(self, since: int = 0) -> list[list[Any]]:
        entries: list[list[Any]] = []
        while True:
            page = self.log(since)
            entries.extend(page["entries"])
            since = page["last"]
            if not page["more"] or not page["entries"]:
                return entries

    def stage(self, rx: dict[str, Any]) -> dict[str, Any]:
        """Stage a prescription (rx dict); returns the pump's review. Programs too long for one
        line are sent as ``stage_chunk`` pieces (docs/protocol.md)."""
        probe = wire.request_line(wire.request_body("f" * wire.MAX_ID, "clinician",
                                                    wire.MAX_COUNTER, "stage", {"rx": rx}),
                                  "0" * wire.TAG_HEX)
        if len(probe) <= wire.MAX_LINE:
            return self._all_changes(self.request("stage", {"rx": rx}))
        text = wire.encode(rx)
        for count in range(2, 17):
            size = -(-len(text) // count)
            parts = [text[i * size:(i + 1) * size] for i in range(count)]
            if all(len(wire.request_line(wire.request_body(
                    "f" * wire.MAX_ID, "clinician", wire.MAX_COUNTER, "stage_chunk",
                    {"index": 15, "count": 16, "text": p}), "0" * wire.TAG_HEX)) <= wire.MAX_LINE
                    for p in parts):
                break
        else:
            raise ProtocolError("prescription too large even in 16 chunks", reasons.BAD_ARGS)
        data: dict[str, Any] = {}
        for i, part in enumerate(parts):
            data = self.request("stage_chunk", {"index": i, "count": count, "text": part})
        return self._all_changes(data)

    def review(self) -> dict[str, Any]:
        """The staged program's review, with every page of "changes" fetched."""
        return self._all_changes(self.request("review"))

    def _all_changes(self, review: dict[str, Any]) -> dict[str, Any]:
        # the pump pages a long "changes" list (docs/protocol.md "Long results")
        changes = review.get("changes")
        total = review.get("changes_total")
        if not isinstance(changes, list) or not isinstance(total, int):
            return review
        changes = list(changes)
        while len(changes) < total:
            page = self.request("review", {"changes_offset": len(changes)})
            more = page.get("changes") or []
            if page.get("checksum") != review.get("checksum") or not more:
                raise ProtocolError("review changed while paging", reasons.BAD_FRAME)
            changes.extend(more)
        out = dict(review)
        out["changes"] = changes
        out.pop("changes_total", None)
        out.pop("changes_offset", None)
        return out

    def commit(self, checksum: str, confirm_soft: bool = False,
               bridge: bool = False) -> dict[str, Any]:
        return self.request("commit", {"checksum": checksum, "confirm_soft": confirm_soft,
                                       "bridge": bridge})

    def start(self) -> dict[str, Any]:
        return self.request("start")

    def stop(self) -> dict[str, Any]:
        return self.request("stop")

    def suspend(self, minutes: int) -> dict[str, Any]:
        return self.request("suspend", {"minutes": minutes})

    def resume(self) -> dict[str, Any]:
        return self.request("resume")

    def prime(self, volume_nl: int) -> dict[str, Any]:
        return self.request("prime", {"volume_nl": volume_nl})

    def refill(self, fill_nl: int, new_admixture: bool = False) -> dict[str, Any]:
        return self.request("refill", {"fill_nl": fill_nl, "new_admixture": new_admixture})

    def bolus(self, volume_nl: int, duration_ms: int) -> dict[str, Any]:
        """Clinician bolus."""
        return self.request("bolus", {"volume_nl": volume_nl, "duration_ms": duration_ms})

    def patient_bolus(self) -> dict[str, Any]:
        return self.request("patient_bolus")

    def ack(self, alarm: str | None = None) -> dict[str, Any]:
        return self.request("ack", {"alarm": alarm})

    def silence(self) -> dict[str, Any]:
        """Mute the alarm tones for at most 2 minutes (alarms stay active and re-sound)."""
        return self.request("silence", {})

    def set_clock(self, day: int, ms_of_day: int) -> dict[str, Any]:
        return self.request("set_clock", {"day": day, "ms_of_day": ms_of_day})

    def set_clock_to(self, moment: _dt.datetime) -> dict[str, Any]:
        return self.set_clock(*wall_clock_of(moment))


__all__ = ["PumpClient", "PumpError", "wall_clock_of"]
