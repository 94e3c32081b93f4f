"""PumpClient: the host side of the itpump line protocol v2 (docs/protocol.md).

Open a pump by pyserial URL or device path::

    with PumpClient.open("socket://127.0.0.1:5555") as pump:      # keys looked up by device id
        print(pump.status())
        pump.clinician_bolus(volume_nl=5000, duration_ms=60000)

Every command of the command table (``pumpcore.commands``) is a method: its arguments in table
order, positional or by wire name; ``stage`` (chunked when long), ``review`` (all pages),
``log_all`` and ``set_clock_to`` add the host-side work on top.

What the client trusts (docs/protocol.md, "What the host trusts"): only what verifies. The
counters, key ids and event position come from a ``hello`` tagged with one of our keys over a
fresh nonce; every reply must carry the tag of the request's role over the request and the reply;
every event line must verify with every key we hold and come after the last one accepted.
Anything else is refused with a named error (:class:`ReplyAuthError`) or, for events, dropped
and reported (:attr:`PumpClient.event_issues`).

One request is outstanding at a time. A request is resent with the *same* id, counter and tag
after a timeout, a garbled or unverifiable reply or a ``!-`` reply (the pump could not read our
line), so a lost reply never executes a command twice: the pump answers a resend from its replay
cache. Event lines (``~``) that arrive meanwhile go to the subscribers (:meth:`on_event`) and to
:meth:`events`.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, Self

import serial
from pumpcore import commands as _commands
from pumpcore import reasons, wire

from . import keys as _keys
from . import signing
from .errors import (
    UNTAGGED_REASONS,
    AuthError,
    LockedError,
    OutcomeUnknownError,
    ProtocolError,
    PumpError,
    ReplyAuthError,
    ThrottledError,
    TransportError,
    error_for,
)
from .units import wall_clock_of

DEFAULT_BAUD = 115200
MAX_COUNTER = (1 << 48) - 1
Event = dict[str, Any]
# the role a hello is tagged with, and the roles tried for a command: least privilege first
LEAST_PRIVILEGE = ("readonly", "patient", "clinician")
# events verify with every key the host holds; the most trusted one decides nothing more


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


def command_args(row: _commands.Command, pos: Sequence[Any], kw: dict[str, Any]) -> dict[str, Any]:
    """A command's argument dict from positional values (table order) and wire names; arguments
    left out are left out (the pump applies the table's defaults)."""
    names = [a.name for a in row.args]
    if len(pos) > len(names):
        raise TypeError(f"{row.name} takes at most {len(names)} arguments ({len(pos)} given)")
    out = dict(zip(names, pos, strict=False))
    for k, v in kw.items():
        if k not in names:
            raise TypeError(f"{row.name} has no argument {k!r} (has: {', '.join(names) or 'none'})")
        if k in out:
            raise TypeError(f"{row.name}: argument {k!r} given twice")
        out[k] = v
    return out


class PumpClient:
    """A connection to one pump. Not thread-safe (one caller at a time)."""

    def __init__(self, port: SerialLike, keyset: _keys.KeySet | None = None, *,
                 url: str | None = None, timeout_s: float = 2.0, retries: int = 3,
                 reconnect_s: float = 10.0, role: str | None = None,
                 lookup_keys: bool = True,
                 table: Sequence[_commands.Command] | None = None) -> None:
        self._port: SerialLike | None = port
        self.url = url
        self.keyset = keyset
        self.timeout_s = timeout_s
        self.retries = retries
        self.reconnect_s = reconnect_s
        self.role = role
        self.lookup_keys = lookup_keys
        self.table = table
        self.info: dict[str, Any] | None = None     # the last verified hello
        self._wire_keys: dict[str, bytes] = {}       # per role, from the verified hello's kids
        self._counters: dict[str, int] = {}
        self._splitter = wire.LineSplitter()
        self._lines: deque[str] = deque()
        self._events: deque[Event] = deque(maxlen=10000)
        self._subscribers: list[Callable[[Event], None]] = []
        self._issue_subscribers: list[Callable[[dict[str, Any]], None]] = []
        self._id_prefix = secrets.token_hex(4)
        self._id_seq = 0
        self.event_pos: tuple[int, int] | None = None   # (boot, seq) of the last accepted event
        self.event_issues: deque[dict[str, Any]] = deque(maxlen=1000)
        self.events_lost = 0       # event lines known missing (gaps in the sequence)
        self.events_rejected = 0   # event lines dropped: forged, replayed or out of order
        self.replies_rejected = 0  # reply lines that did not verify
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
                self._splitter = wire.LineSplitter()
                self._lines.clear()
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
        """Next complete printable line (without LF/CR) before ``deadline``, else None. Lines
        that are too long or not printable ASCII are dropped (wire.LineSplitter)."""
        while True:
            if self._lines:
                return self._lines.popleft()
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
                for status, text in self._splitter.feed(chunk):
                    if status == "ok":
                        self._lines.append(text)

    # --- events ------------------------------------------------------------------------------
    def on_event(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every verified event line received from now on (during
        requests and :meth:`poll_events`). Each event dict carries its boot and sequence numbers
        as ``_boot`` and ``_seq``. Returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def on_event_issue(self, callback: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``callback(issue)`` when event lines are found lost (``{"issue": "lost", "count":
        n}``) or are dropped (``"forged"``, ``"replayed"``). Returns an unsubscribe function."""
        self._issue_subscribers.append(callback)
        return lambda: self._issue_subscribers.remove(callback)

    def _issue(self, issue: dict[str, Any]) -> None:
        self.event_issues.append(issue)
        for cb in list(self._issue_subscribers):
            cb(issue)

    def poll_events(self, timeout_s: float = 0.0) -> list[Event]:
        """Read the link for up to ``timeout_s`` (returns as soon as an event is queued) and
        return the queued events, oldest first. Events are verified with the keys learnt from
        a verified hello: the first call says hello when none was said yet."""
        if self.info is None and self.keyset is not None:
            self.hello()
        deadline = time.monotonic() + timeout_s
        while True:
            # block until the first event (or the deadline), then take what is already there
            line = self._read_line(deadline if not self._events else 0.0)
            if line is None:
                break
            try:
                parsed = wire.parse_reply(line)
            except wire.WireError:
                continue
            if parsed is not None and parsed[0] == "~":
                self._on_event_line(parsed)
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

    def _on_event_line(self, parsed: tuple[Any, ...]) -> None:
        _, (boot, seq), data, _, body, tags = parsed
        if not self._wire_keys or self.event_pos is None:
            return    # nothing to verify with yet (no verified hello): not ours to show
        for i, role in enumerate(wire.ROLES):
            key = self._wire_keys.get(role)
            if key is not None and not signing.verifies(key, body, tags[i]):
                self.events_rejected += 1
                self._issue({"issue": "forged", "boot": boot, "seq": seq})
                return
        last_boot, last_seq = self.event_pos
        if (boot, seq) <= (last_boot, last_seq):
            self.events_rejected += 1
            self._issue({"issue": "replayed", "boot": boot, "seq": seq})
            return
        lost = seq - 1 if boot > last_boot else seq - last_seq - 1
        if lost > 0:
            self.events_lost += lost
            self._issue({"issue": "lost", "count": lost, "boot": boot, "after_seq":
                         last_seq if boot == last_boot else 0})
        self.event_pos = (boot, seq)
        event = dict(data)
        event["_seq"] = seq
        event["_boot"] = boot
        self._events.append(event)
        for cb in list(self._subscribers):
            cb(event)

    # --- keys and hello ----------------------------------------------------------------------
    def _next_id(self) -> str:
        self._id_seq += 1
        return f"{self._id_prefix}{self._id_seq:x}"

    def _row(self, cmd: str) -> _commands.Command:
        row = _commands.find(cmd, self.table)
        if row is None:
            raise ProtocolError(f"no command {cmd!r} in the command table", reasons.UNKNOWN_COMMAND)
        return row

    def _choose_role(self, cmd: str, role: str | None) -> str:
        allowed = self._row(cmd).roles or wire.ROLES
        if role is not None:
            return role
        if self.role is not None:   # an explicit role is used as is (the pump decides)
            return self.role
        have = self.keyset.roles() if self.keyset else []
        for r in LEAST_PRIVILEGE:
            if r in allowed and r in have:
                return r
        if not have:
            raise AuthError("no key file for this pump (itpump keys generate / --key-file)",
                            "no_key")
        raise AuthError(f"the key file has no key for a role allowed to {cmd} "
                        f"({', '.join(allowed)})", reasons.ROLE_FORBIDDEN)

    def _ensure_keys(self, device_id: str | None) -> None:
        if self.keyset is None and self.lookup_keys and device_id:
            path = _keys.default_key_path(device_id)
            if path.exists():
                self.keyset = _keys.load(path)

    def hello(self, role: str | None = None) -> dict[str, Any]:
        """Who is there. With a key file (given, or found by the device id an unauthenticated
        hello reports) the hello carries a fresh nonce and its reply must verify with our key:
        only then are its counters, key ids and event position used. Without keys the reply is
        returned as is (``info`` stays None: nothing in it is trusted)."""
        if self.keyset is None:
            data = self._exchange(_commands.HELLO, {}, None)
            self._ensure_keys(str(data.get("device_id")) if data.get("device_id") else None)
            if self.keyset is None:
                return data
        assert self.keyset is not None
        have = self.keyset.roles()
        if not have:
            raise AuthError("the key file holds no key", "no_key")
        r = role or (self.role if self.role in have else None) \
            or next(x for x in LEAST_PRIVILEGE if x in have)
        data = self._exchange(_commands.HELLO, {"nonce": secrets.token_hex(16), "role": r},
                              None, hello_role=r)
        if data.get("device_id") != self.keyset.device_id:
            raise AuthError(f"key file is for {self.keyset.device_id}, pump is "
                            f"{data.get('device_id')}", "no_key")
        self.info = data
        kids = data.get("kids") or {}
        self._wire_keys = {x: signing.wire_key(self.keyset.keys[x], kids[x])
                           for x in have if isinstance(kids.get(x), str)}
        for x, n in (data.get("counters") or {}).items():
            if isinstance(n, str) and n.isdigit():
                self._counters[x] = max(self._counters.get(x, 0), int(n))
        boot, seq = data.get("boot"), data.get("event_seq")
        if isinstance(boot, int) and isinstance(seq, int):
            if self.event_pos is None or (boot, seq) > self.event_pos:
                self.event_pos = (boot, seq)
        return data

    def info_device_id(self) -> str:
        if self.info is None:
            self.hello()
        if self.info is None:
            raise AuthError("no key file for this pump (itpump keys generate / --key-file)",
                            "no_key")
        return str(self.info.get("device_id"))

    # --- requests ----------------------------------------------------------------------------
    def request(self, cmd: str, args: dict[str, Any] | None = None,
                role: str | None = None) -> dict[str, Any]:
        """Send one authenticated command and return the verified reply data; raises a
        PumpError."""
        if self.info is None:
            self.hello()
        if self.info is None:
            raise AuthError("no key file for this pump (itpump keys generate / --key-file)",
                            "no_key")
        r = self._choose_role(cmd, role)
        if r not in self._wire_keys:
            raise AuthError(f"the key file has no {r} key", "no_key")
        try:
            return self._exchange(cmd, args or {}, r)
        except AuthError as e:
            if e.reason != reasons.STALE_COUNTER or getattr(e, "_resent", False) \
                    or not e.authenticated:
                raise
            last = e.data.get("last")
            if not (isinstance(last, str) and last.isdigit()):
                raise
            # another host used our counter range: the pump's own (tagged) reply says where it
            # stands; retry once with a new id (the refused request did not execute)
            self._counters[r] = max(self._counters.get(r, 0), int(last))
        return self._exchange(cmd, args or {}, r)

    def call(self, cmd: str, *args: Any, role: str | None = None, **kw: Any) -> dict[str, Any]:
        """Command ``cmd`` of the command table with its arguments in table order or by wire
        name: ``call("suspend", 30)``, ``call("clinician_bolus", volume_nl=5000,
        duration_ms=60000)``."""
        return self.request(cmd, command_args(self._row(cmd), args, kw), role=role)

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        # one method per row of the command table (pumpcore.commands): client.suspend(30)
        if name.startswith("_") or name == "table":
            raise AttributeError(name)
        if _commands.find(name, self.__dict__.get("table")) is None:
            raise AttributeError(f"{type(self).__name__} has no attribute or command {name!r}")

        def command(*args: Any, role: str | None = None, **kw: Any) -> dict[str, Any]:
            return self.call(name, *args, role=role, **kw)
        command.__name__ = name
        return command

    def _exchange(self, cmd: str, args: dict[str, Any], role: str | None,
                  hello_role: str | None = None) -> dict[str, Any]:
        req_id = self._next_id()
        if role is None:
            body = wire.request_body(req_id, None, None, cmd, args)
            line = wire.request_line(body, None)
        else:
            counter = self._counters.get(role, 0) + 1
            if counter > MAX_COUNTER:
                raise AuthError(f"the {role} counter is used up: re-key the role "
                                "(docs/protocol.md, Lifecycle)", reasons.COUNTER_JUMP)
            self._counters[role] = counter
            body = wire.request_body(req_id, role, counter, cmd, args)
            line = wire.request_line(body, signing.tag(self._wire_keys[role], body))
        if len(line) > wire.MAX_LINE:
            raise ProtocolError(f"{cmd} request is {len(line)} bytes (max {wire.MAX_LINE})",
                                reasons.LINE_TOO_LONG)
        signer = role or hello_role
        changes = self._row(cmd).changes if role is not None else False
        attempts = self.retries + 1
        forged = False
        untagged: tuple[str, dict[str, Any]] | None = None
        for attempt in range(attempts):
            if attempt:
                self.resends += 1
            try:
                self._write(line)
                result = self._await(req_id, body, signer, hello_role is not None)
            except TransportError:
                if attempt + 1 >= attempts or self.url is None:
                    raise
                self.reconnect()
                continue
            if result is None:
                continue  # timeout, garbled reply or "!-": resend the same line
            kind, data, reason = result
            if kind == "forged":
                forged = True
                continue  # a reply that does not verify is no reply: resend (the pump dedups)
            if kind == "=":
                return data
            if kind == "locked":
                raise LockedError("the pump is locked: its security state was lost or damaged "
                                  f"({data.get('locked')}); re-key it over USB "
                                  "(docs/protocol.md, Lifecycle) (unauthenticated reply)",
                                  reasons.LOCKED, data)
            assert reason is not None
            msg = str(data.get("msg", reason))
            if kind == "untagged":
                if reason == reasons.THROTTLED:
                    wait = data.get("retry_ms")
                    time.sleep(min(self.timeout_s, (wait if isinstance(wait, int) else 1000)
                                   / 1000))
                    untagged = (reason, data)
                    continue
                if reason == reasons.LOCKED or signer is None:
                    raise self._untagged_error(reason, msg, data, changes)
                untagged = (reason, data)
                continue  # maybe forged: resend; the pump answers an executed request from cache
            err = error_for(reason, msg, data)
            if attempt and reason == reasons.STALE_COUNTER and role is not None:
                raise OutcomeUnknownError(
                    f"{cmd}: reply lost and the pump no longer remembers request {req_id} "
                    "(it was reset?); it may have run: check status/log", "outcome_unknown")
            if attempt:
                err._resent = True  # type: ignore[attr-defined]
            raise err
        if untagged is not None:
            raise self._untagged_error(untagged[0], str(untagged[1].get("msg", untagged[0])),
                                       untagged[1], changes)
        if forged:
            raise ReplyAuthError(
                f"{cmd}: the pump's reply does not verify with the key file (wrong key file, or "
                "someone is changing lines on the link)" + (": it may have run, check status/log"
                                                          if changes else ""))
        raise TransportError(f"{cmd}: no valid reply after {attempts} attempts "
                             f"({self.timeout_s:g} s each)", "timeout")

    @staticmethod
    def _untagged_error(reason: str, msg: str, data: dict[str, Any], changes: bool) -> PumpError:
        note = " (unauthenticated reply"
        note += ": if someone on the link forged it, the request may have run; check status)" \
            if changes else ")"
        err = error_for(reason, msg + note, data)
        if isinstance(err, AuthError):
            err.authenticated = False
        return err

    def _await(self, req_id: str, req_body: str, signer: str | None,
               hello: bool) -> tuple[str, dict[str, Any], str | None] | None:
        """The reply to req_id: ("=" | "!", data, reason) verified; ("untagged", data, reason)
        for an untagged refusal; ("locked", data, None) for the untagged hello of a locked pump;
        ("forged", {}, None) when only replies that do not verify came. None on timeout, a
        garbled line or a "!-". signer: the role whose key must tag the reply (None: an
        unauthenticated hello, nothing verified)."""
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
            kind, rid, data, reason, body, tag = parsed
            if kind == "~":
                self._on_event_line(parsed)
                continue
            if rid is None:
                if reason == reasons.THROTTLED and tag is None:
                    return ("untagged", data, reason)
                return None  # "!-": the pump could not read a line of ours: resend
            if rid != req_id:
                continue     # replies to other (earlier, abandoned) ids are ignored
            if tag is None:
                if kind == "!" and reason in UNTAGGED_REASONS:
                    return ("untagged", data, reason)
                if kind == "=" and signer is None:
                    return ("=", data, None)      # an unauthenticated hello: nothing trusted
                if kind == "=" and hello and data.get("locked"):
                    return ("locked", data, None)
                self.replies_rejected += 1
                return ("forged", {}, None)
            key = self._hello_key(signer, data) if hello else \
                self._wire_keys.get(signer) if signer is not None else None
            if key is None or not signing.verifies(key, signing.reply_text(req_body, body), tag):
                # no valid reply: resend at once (an executed request is answered from the
                # pump's cache; a genuine reply to this id that comes later is still taken)
                self.replies_rejected += 1
                return ("forged", {}, None)
            return (kind, data, reason)


    def _hello_key(self, role: str | None, data: dict[str, Any]) -> bytes | None:
        # A hello's reply is tagged with the wire key for the key id it reports itself: a forged
        # key id gives a key the forger's tag cannot match.
        kids = data.get("kids")
        if role is None or self.keyset is None or role not in self.keyset.keys \
                or not isinstance(kids, dict) or not isinstance(kids.get(role), str):
            return None
        return signing.wire_key(self.keyset.keys[role], kids[role])

    # --- commands with host-side work ------------------------------------------------------------
    def log_all(self, since: int = 0) -> list[list[Any]]:
        """Every entry of the pump's log ring after ``since``, fetched page by page."""
        entries: list[list[Any]] = []
        while True:
            page = self.call("log", since)
            entries.extend(page["entries"])
            since = page["last"]
            if not page["more"] or not page["entries"]:
                return entries

    def log_stored_all(self, seq: int = 0, skip: int = 0) -> list[list[Any]]:
        """Every entry of the event log stored on the pump's flash (what it keeps across resets)
        after position (seq, skip), oldest first, fetched page by page: [[[seq, skip], entry]...]
        (pumpfw.storage.Storage.log_page says what a position is)."""
        entries: list[list[Any]] = []
        while True:
            page = self.request(_commands.LOG_STORED, {"seq": seq, "skip": skip})
            entries.extend(page["entries"])
            if page["more"] and page["entries"] and list(page["last"]) <= [seq, skip]:
                raise ProtocolError("log_stored: the pump's page did not move past "
                                    f"({seq}, {skip})", "bad_reply")
            seq, skip = page["last"]
            if not page["more"] or not page["entries"]:
                return entries

    def stage(self, rx: dict[str, Any]) -> dict[str, Any]:
        """Stage a prescription (rx dict); returns the pump's review. Programs too long for one
        line are sent as ``stage_chunk`` pieces (docs/protocol.md)."""
        return self._all_changes(self._send_object(_commands.STAGE, _commands.STAGE_CHUNK, "rx",
                                                   rx))

    def stage_library(self, record: dict[str, Any]) -> dict[str, Any]:
        """Stage a drug library record (pumpcore.library); returns the pump's review (checksum,
        added/removed/changed/loosened drugs). Sent in ``library_chunk`` pieces when long."""
        return self._send_object(_commands.LIBRARY_STAGE, _commands.LIBRARY_CHUNK, "library",
                                 record)

    def _send_object(self, cmd: str, chunk_cmd: str, arg: str,
                     obj: dict[str, Any]) -> dict[str, Any]:
        if self._fits(cmd, {arg: obj}):
            return self.request(cmd, {arg: obj})
        text = wire.encode(obj)
        for count in range(2, _commands.MAX_CHUNKS + 1):
            size = -(-len(text) // count)
            parts = [text[i * size:(i + 1) * size] for i in range(count)]
            if all(self._fits(chunk_cmd, {"index": count - 1, "count": count, "text": p})
                   for p in parts):
                break
        else:
            raise ProtocolError(f"{arg} too large even in 16 chunks", reasons.BAD_ARGS)
        data: dict[str, Any] = {}
        for i, part in enumerate(parts):
            data = self.request(chunk_cmd, {"index": i, "count": count, "text": part})
        return data

    @staticmethod
    def _fits(cmd: str, args: dict[str, Any]) -> bool:
        # the longest request line these arguments can make (longest id and counter)
        probe = wire.request_line(wire.request_body("f" * wire.MAX_ID, "clinician", MAX_COUNTER,
                                                    cmd, args), "0" * wire.TAG_HEX)
        return len(probe) <= wire.MAX_LINE

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

    def set_clock_to(self, moment: _dt.datetime) -> dict[str, Any]:
        return self.call("set_clock", *wall_clock_of(moment))


__all__ = ["LockedError", "PumpClient", "PumpError", "ReplyAuthError", "ThrottledError",
           "command_args", "wall_clock_of"]
