"""A small SCPI (IEEE 488.2 / SCPI-1999) command engine for the virtual instruments.

Headers are declared in the manuals' notation: upper case = short form, ``[...]`` = optional node,
``#`` = optional numeric suffix (``SOURce#`` matches SOUR, SOURCE, SOUR1, SOURCE2). Matching is
case-insensitive, a leading ':' is ignored, several commands may be joined with ';' (each is taken
as a full path from the root: the real instruments' relative-path rule is not modelled). Errors go to
the standard error queue read with SYST:ERR? (``-113,"Undefined header"``); the queue holds 20
entries and reports ``-350,"Queue overflow"`` like the instruments.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

NO_ERROR = (0, "No error")


class ScpiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code},{message}")
        self.code = code
        self.message = message


def undefined_header() -> ScpiError:
    return ScpiError(-113, "Undefined header")


def missing_parameter() -> ScpiError:
    return ScpiError(-109, "Missing parameter")


def data_out_of_range() -> ScpiError:
    return ScpiError(-222, "Data out of range")


def illegal_parameter() -> ScpiError:
    return ScpiError(-224, "Illegal parameter value")


def parameter_not_allowed() -> ScpiError:
    return ScpiError(-108, "Parameter not allowed")


def data_type_error() -> ScpiError:
    return ScpiError(-104, "Data type error")


def _keyword_regex(word: str) -> str:
    suffix = word.endswith("#")
    if suffix:
        word = word[:-1]
    short = "".join(ch for ch in word if ch.isupper() or ch.isdigit() or ch == "*" or ch == "?")
    long = word.upper()
    alts = sorted({re.escape(short), re.escape(long)}, key=len, reverse=True)
    body = "(?:{})".format("|".join(alts))
    if suffix:
        body += r"(\d*)"
    return body


def compile_header(pattern: str) -> re.Pattern[str]:
    """Compile a manual-style header pattern, e.g. '[SOURce#:]VOLTage[:LEVel]?'."""
    query = pattern.endswith("?")
    if query:
        pattern = pattern[:-1]
    out = []
    have_required = False
    for m in re.finditer(r"\[:?([A-Za-z*#0-9]+):?\]|:?([A-Za-z*#0-9]+)", pattern):
        opt, req = m.group(1), m.group(2)
        if opt is not None:
            kw = _keyword_regex(opt)
            out.append(f"(?::{kw})?" if have_required else f"(?:{kw}:)?")
        else:
            out.append((":" if have_required else "") + _keyword_regex(req))
            have_required = True
    regex = "^:?" + "".join(out) + (r"\?" if query else "") + "$"
    return re.compile(regex, re.IGNORECASE)


def split_units(message: str) -> list[str]:
    """Split a program message on ';' outside quotes and parentheses."""
    units: list[str] = []
    depth = 0
    quote = ""
    cur: list[str] = []
    for ch in message:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == ";" and depth == 0:
            units.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    units.append("".join(cur))
    return [u.strip() for u in units if u.strip()]


def split_params(text: str) -> list[str]:
    params: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            params.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    last = "".join(cur).strip()
    if last or params:
        params.append(last)
    return params


def parse_float(text: str, allowed: dict[str, float] | None = None) -> float:
    t = text.strip().upper()
    if allowed:
        for key, val in allowed.items():
            if t == key or (len(t) >= 3 and key.startswith(t)):
                return val
    try:
        return float(t)
    except ValueError:
        raise data_type_error() from None


def parse_bool(text: str) -> bool:
    t = text.strip().upper()
    if t in ("ON", "1"):
        return True
    if t in ("OFF", "0"):
        return False
    raise illegal_parameter()


def parse_channel_list(text: str) -> list[int]:
    """'(@101,103:105)' -> [101, 103, 104, 105]."""
    t = text.strip()
    if not (t.startswith("(@") and t.endswith(")")):
        raise data_type_error()
    chans: list[int] = []
    for part in t[2:-1].split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ":" in part:
                a, b = part.split(":", 1)
                lo, hi = int(a), int(b)
                chans.extend(range(min(lo, hi), max(lo, hi) + 1))
            else:
                chans.append(int(part))
        except ValueError:
            raise data_type_error() from None
    return chans


Handler = Callable[[list[str], tuple[str, ...]], "str | None"]


class ScpiInstrument:
    """Base class: declare commands with ``self.command(pattern, handler)``.

    A handler receives (params, numeric_suffixes) and returns the response text for a query or None.
    """

    write_termination = "\n"
    idn = "itpump,virtual,0,0"
    error_format = "%+d,\"%s\""  # Keysight style: +0,"No error"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._commands: list[tuple[re.Pattern[str], Handler]] = []
        self._errors: list[tuple[int, str]] = []
        self.command("*IDN?", lambda p, s: self.idn)
        self.command("*RST", lambda p, s: self._rst())
        self.command("*CLS", lambda p, s: self._cls())
        self.command("*OPC?", lambda p, s: "1")
        self.command("*OPC", lambda p, s: None)
        self.command("*WAI", lambda p, s: None)
        self.command("SYSTem:ERRor[:NEXT]?", lambda p, s: self._next_error())
        self.command("SYSTem:VERSion?", lambda p, s: "1999.0")

    def command(self, pattern: str, handler: Handler) -> None:
        self._commands.append((compile_header(pattern), handler))

    def push_error(self, code: int, message: str) -> None:
        if len(self._errors) >= 20:
            self._errors[-1] = (-350, "Queue overflow")
        else:
            self._errors.append((code, message))

    def _next_error(self) -> str:
        code, msg = self._errors.pop(0) if self._errors else NO_ERROR
        return self.error_format % (code, msg)

    def _cls(self) -> None:
        self._errors.clear()

    def _rst(self) -> None:
        self.reset()

    def reset(self) -> None:
        """*RST: subclasses restore their power-on settings."""

    def handle_line(self, line: str, session: object = None) -> list[str]:
        replies: list[str] = []
        with self.lock:
            for unit in split_units(line):
                parts = unit.split(None, 1)
                header = parts[0]
                params = split_params(parts[1]) if len(parts) > 1 else []
                for regex, handler in self._commands:
                    m = regex.match(header)
                    if m:
                        try:
                            r = handler(params, tuple(g or "" for g in m.groups()))
                        except ScpiError as e:
                            self.push_error(e.code, e.message)
                            r = None
                        if r is not None:
                            replies.append(r)
                        break
                else:
                    self.push_error(-113, "Undefined header")
        # a program message with several queries answers with one ';'-joined response message
        return [";".join(replies)] if replies else []
