# The itpump wire codec, shared by the pump (pumpcore.dispatch) and the host (pumphost.client).
# Specification: docs/protocol.md (version 2). Pure MicroPython/CPython subset: no json, no zlib;
# binascii only for its CRC-32 when the port has it (a table fallback otherwise).
#
# Line kinds (first character): "@" request, "=" ok response, "!" error response, "~" event.
# Every line is printable ASCII 0x20..0x7E, at most MAX_LINE bytes, ended by LF (CR LF accepted),
# and ends with " " + 8 lowercase hex digits: CRC-32 (IEEE 802.3, as zlib.crc32) of every byte
# before that space.
#
#   @ID ROLE COUNTER CMD ARGS TAG CRC           request (ROLE/COUNTER/TAG "-" when unauthenticated)
#   =ID DATA TAG CRC                            ok response, DATA a JSON object
#   !ID REASON DATA TAG CRC                     error response, DATA a JSON object with "msg"
#   ~BOOT SEQ DATA TAGC TAGP TAGR CRC           event: one tag per role (clinician, patient,
#                                               readonly; "-" for a role without a key)
# A TAG is 32 lowercase hex digits (pumpcore.auth says what it covers) or "-"; hex is lower case
# only, so a line has exactly one encoding.
# COUNTER is decimal 1..2**48-1 without leading zeros; the pump holds it as two 24-bit parts
# (hi, lo) so that every value stays a small int on the Pico (Counter helpers below).
#
# Values are a strict JSON subset (objects, arrays, printable-ASCII strings with only \" and \\
# escapes, integers, true/false/null; no floats, no whitespace outside strings, no duplicate keys,
# depth <= MAX_DEPTH). encode() is canonical: object keys sorted, no whitespace, so the same value
# always gives the same bytes (the HMAC covers those bytes).
# Allocation is fine here: none of this runs in the control step.

from pumpcore import reasons

PROTOCOL_VERSION = 2
MAX_LINE = 2048            # bytes per line, excluding the LF (and an optional CR before it)
MAX_DEPTH = 8              # nesting of arrays/objects inside a value
MAX_INT_DIGITS = 15        # |integer| < 10**15 (exact in every JSON reader; bigint on the Pico)
MAX_ID = 16                # request id: 1..16 of [0-9A-Za-z]
MAX_CMD = 24               # command: 1..24 of [a-z_]
TAG_HEX = 32               # HMAC-SHA256 truncated to 128 bits, lowercase hex
MAX_SEQ = 0x3FFFFFFF       # event sequence numbers and boot numbers: small ints on the Pico
PART = 0x1000000           # a 48-bit counter is hi * PART + lo, 0 <= hi, lo < PART
MAX_COUNTER_DIGITS = 15    # 2**48 - 1 = 281474976710655
ROLES = ("clinician", "patient", "readonly")

_HEX = "0123456789abcdef"


class WireError(Exception):
    # reason: a code from pumpcore.reasons; req_id: the request id if it could be recovered, else None
    def __init__(self, reason, msg, req_id=None):
        super().__init__(msg)
        self.reason = reason
        self.msg = msg
        self.req_id = req_id


# --- CRC-32 (reflected poly 0xEDB88320, init and final xor 0xFFFFFFFF) -----------------------
# Computed 4 bits at a time with two 16-entry tables holding the high and low 16-bit halves, so
# every intermediate value is a small int on the Pico (no bigint allocation per byte).
def _crc_tables():
    hi_t = []
    lo_t = []
    for n in range(16):
        hi = 0
        lo = n
        for _ in range(4):
            if lo & 1:
                lo = ((lo >> 1) | ((hi & 1) << 15)) ^ 0x8320
                hi = (hi >> 1) ^ 0xEDB8
            else:
                lo = (lo >> 1) | ((hi & 1) << 15)
                hi = hi >> 1
        hi_t.append(hi)
        lo_t.append(lo)
    return hi_t, lo_t


_CRC_HI, _CRC_LO = _crc_tables()


def _hex4(v):
    return _HEX[(v >> 12) & 15] + _HEX[(v >> 8) & 15] + _HEX[(v >> 4) & 15] + _HEX[v & 15]


def crc32_hex_tables(data):
    # The portable CRC-32 (bytes/bytearray): used when the port's binascii has no crc32.
    hi = 0xFFFF
    lo = 0xFFFF
    th = _CRC_HI
    tl = _CRC_LO
    for b in data:
        i = (lo ^ b) & 15
        lo = ((lo >> 4) | ((hi & 15) << 12)) ^ tl[i]
        hi = (hi >> 4) ^ th[i]
        i = (lo ^ (b >> 4)) & 15
        lo = ((lo >> 4) | ((hi & 15) << 12)) ^ tl[i]
        hi = (hi >> 4) ^ th[i]
    return _hex4(hi ^ 0xFFFF) + _hex4(lo ^ 0xFFFF)


try:
    # binascii.crc32 is the same CRC in C: CPython always has it, the rp2 port too (the
    # WebAssembly build's binascii is micropython-lib's Python module, crc32 included: the same
    # CRC, slower). Decision: a line of
    # 1-2 kB costs ~1 ms through the tables on CPython, and the host and the emulator check every
    # line. The result may be a big int on the Pico: fine here, nothing in this module runs in the
    # control step.
    from binascii import crc32 as _crc32
except ImportError:
    _crc32 = None


def crc32_hex(data):
    # data: bytes/bytearray/str (str must be ASCII). Returns 8 lowercase hex digits.
    if isinstance(data, str):
        data = data.encode()
    if _crc32 is None:
        return crc32_hex_tables(data)
    v = _crc32(data) & 0xFFFFFFFF
    return _hex4(v >> 16) + _hex4(v & 0xFFFF)


def to_hex(data):
    out = []
    for b in data:
        out.append(_HEX[b >> 4] + _HEX[b & 15])
    return "".join(out)


def from_hex(text):
    # Strict lowercase hex of even length -> bytes; None when malformed (upper case included).
    if len(text) % 2:
        return None
    out = bytearray(len(text) // 2)
    for i in range(len(out)):
        hi = _hexval(text[2 * i])
        lo = _hexval(text[2 * i + 1])
        if hi < 0 or lo < 0:
            return None
        out[i] = hi * 16 + lo
    return bytes(out)


def _hexval(c):
    o = ord(c)
    if 48 <= o <= 57:
        return o - 48
    if 97 <= o <= 102:
        return o - 87
    return -1


def is_printable(text):
    for c in text:
        o = ord(c)
        if o < 0x20 or o > 0x7E:
            return False
    return True


# --- values ------------------------------------------------------------------------------------
def encode(value):
    # Canonical text of value (dict with str keys / list / tuple / str / int / bool / None).
    # Raises WireError(BAD_VALUE) for anything else (floats included) or non-printable strings.
    out = []
    _enc(value, out, 0)
    return "".join(out)


def _enc(v, out, depth):
    if depth > MAX_DEPTH:
        raise WireError(reasons.BAD_VALUE, "value nested too deeply")
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        s = str(v)
        if len(s) - (1 if v < 0 else 0) > MAX_INT_DIGITS:
            raise WireError(reasons.BAD_VALUE, "integer too large")
        out.append(s)
    elif isinstance(v, str):
        if not is_printable(v):
            raise WireError(reasons.BAD_VALUE, "string not printable ASCII")
        out.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
    elif isinstance(v, (list, tuple)):
        out.append("[")
        first = True
        for item in v:
            if not first:
                out.append(",")
            first = False
            _enc(item, out, depth + 1)
        out.append("]")
    elif isinstance(v, dict):
        keys = list(v.keys())
        for k in keys:
            if not isinstance(k, str):
                raise WireError(reasons.BAD_VALUE, "object key not a string")
        keys.sort()
        out.append("{")
        first = True
        for k in keys:
            if not first:
                out.append(",")
            first = False
            _enc(k, out, depth + 1)
            out.append(":")
            _enc(v[k], out, depth + 1)
        out.append("}")
    else:
        raise WireError(reasons.BAD_VALUE, "type not encodable")


def decode(text):
    # Parse the whole of text as one value; raises WireError(BAD_ARGS) on any deviation.
    v, pos = _dec(text, 0, 0)
    if pos != len(text):
        raise WireError(reasons.BAD_ARGS, "trailing characters at %d" % pos)
    return v


def _dec(t, pos, depth):
    if depth > MAX_DEPTH:
        raise WireError(reasons.BAD_ARGS, "value nested too deeply")
    if pos >= len(t):
        raise WireError(reasons.BAD_ARGS, "value missing at %d" % pos)
    c = t[pos]
    if c == "{":
        obj = {}
        pos += 1
        if pos < len(t) and t[pos] == "}":
            return obj, pos + 1
        while True:
            if pos >= len(t) or t[pos] != '"':
                raise WireError(reasons.BAD_ARGS, "object key expected at %d" % pos)
            k, pos = _dec_str(t, pos)
            if k in obj:
                raise WireError(reasons.BAD_ARGS, "duplicate key %s" % k)
            if pos >= len(t) or t[pos] != ":":
                raise WireError(reasons.BAD_ARGS, "':' expected at %d" % pos)
            val, pos = _dec(t, pos + 1, depth + 1)
            obj[k] = val
            if pos < len(t) and t[pos] == ",":
                pos += 1
                continue
            if pos < len(t) and t[pos] == "}":
                return obj, pos + 1
            raise WireError(reasons.BAD_ARGS, "',' or '}' expected at %d" % pos)
    if c == "[":
        arr = []
        pos += 1
        if pos < len(t) and t[pos] == "]":
            return arr, pos + 1
        while True:
            val, pos = _dec(t, pos, depth + 1)
            arr.append(val)
            if pos < len(t) and t[pos] == ",":
                pos += 1
                continue
            if pos < len(t) and t[pos] == "]":
                return arr, pos + 1
            raise WireError(reasons.BAD_ARGS, "',' or ']' expected at %d" % pos)
    if c == '"':
        return _dec_str(t, pos)
    if c == "-" or ("0" <= c <= "9"):
        start = pos
        if c == "-":
            pos += 1
        dstart = pos
        while pos < len(t) and "0" <= t[pos] <= "9":
            pos += 1
        nd = pos - dstart
        if nd == 0:
            raise WireError(reasons.BAD_ARGS, "digit expected at %d" % pos)
        if nd > 1 and t[dstart] == "0":
            raise WireError(reasons.BAD_ARGS, "leading zero at %d" % dstart)
        if nd > MAX_INT_DIGITS:
            raise WireError(reasons.BAD_ARGS, "integer too long at %d" % start)
        if pos < len(t) and t[pos] in ".eE":
            raise WireError(reasons.BAD_ARGS, "not an integer at %d (no floats)" % start)
        if nd == 1 and t[dstart] == "0" and c == "-":
            raise WireError(reasons.BAD_ARGS, "-0 at %d" % start)
        return int(t[start:pos]), pos
    for word, val in (("true", True), ("false", False), ("null", None)):
        if t.startswith(word, pos):
            return val, pos + len(word)
    raise WireError(reasons.BAD_ARGS, "unexpected character at %d" % pos)


def _dec_str(t, pos):
    # t[pos] == '"'. Only \" and \\ escapes; printable ASCII only.
    pos += 1
    parts = []
    start = pos
    n = len(t)
    while True:
        if pos >= n:
            raise WireError(reasons.BAD_ARGS, "unterminated string")
        c = t[pos]
        o = ord(c)
        if o < 0x20 or o > 0x7E:
            raise WireError(reasons.BAD_ARGS, "non-printable character in string at %d" % pos)
        if c == '"':
            parts.append(t[start:pos])
            return "".join(parts), pos + 1
        if c == "\\":
            if pos + 1 >= n or t[pos + 1] not in '"\\':
                raise WireError(reasons.BAD_ARGS, "bad escape at %d" % pos)
            parts.append(t[start:pos])
            parts.append(t[pos + 1])
            pos += 2
            start = pos
            continue
        pos += 1


# --- field checks ------------------------------------------------------------------------------
def valid_id(s):
    if not (1 <= len(s) <= MAX_ID):
        return False
    for c in s:
        if not (("0" <= c <= "9") or ("a" <= c <= "z") or ("A" <= c <= "Z")):
            return False
    return True


def valid_cmd(s):
    if not (1 <= len(s) <= MAX_CMD):
        return False
    for c in s:
        if not (("a" <= c <= "z") or c == "_"):
            return False
    return True


def parse_seq(s):
    # "0".."1073741823" without leading zeros -> int; anything else -> None (boot and event numbers)
    if not (1 <= len(s) <= 10) or (s[0] == "0" and len(s) > 1):
        return None
    for c in s:
        if not ("0" <= c <= "9"):
            return None
    n = int(s)
    if n > MAX_SEQ:
        return None
    return n


# --- 48-bit counters as (hi, lo) -----------------------------------------------------------------
# Every intermediate value stays below 10 * PART + 10 < 2**28: small ints on the Pico.
ZERO = (0, 0)


def parse_counter(s):
    # "1".."281474976710655" without leading zeros -> (hi, lo); anything else -> None
    if not (1 <= len(s) <= MAX_COUNTER_DIGITS) or s[0] == "0":
        return None
    hi = 0
    lo = 0
    for c in s:
        if not ("0" <= c <= "9"):
            return None
        lo = lo * 10 + (ord(c) - 48)
        hi = hi * 10 + (lo >> 24)
        lo &= PART - 1
        if hi >= PART:
            return None
    return (hi, lo)


def format_counter(ctr):
    # (hi, lo) -> its decimal text ("0" for ZERO)
    hi, lo = ctr
    if hi == 0:
        return str(lo)
    digits = []
    while hi or lo:
        r = hi % 10
        hi //= 10
        v = r * PART + lo
        digits.append(chr(48 + v % 10))
        lo = v // 10
    digits.reverse()
    return "".join(digits)


def counter_of_int(n):
    # Host and tests: a Python int 0..2**48-1 -> (hi, lo)
    return (n >> 24, n & (PART - 1))


def counter_after(a, b):
    # a > b for counters (hi, lo)
    return a[0] > b[0] or (a[0] == b[0] and a[1] > b[1])


def counter_within(a, b, max_step_parts):
    # a - b <= max_step_parts * PART (a counter may not jump further ahead than that)
    d = a[0] - b[0]
    return d < max_step_parts or (d == max_step_parts and a[1] <= b[1])


def _valid_hex_field(s, n):
    if len(s) != n:
        return False
    for c in s:
        if _hexval(c) < 0:
            return False
    return True


def seal(text):
    # Append " " + CRC of text. text must be printable ASCII.
    return text + " " + crc32_hex(text)


def check_crc(line):
    # -> the line without its CRC field, or None when the CRC is missing, wrong or not lower case.
    sp = line.rfind(" ")
    if sp < 0:
        return None
    crc = line[sp + 1:]
    if not _valid_hex_field(crc, 8):
        return None
    body = line[:sp]
    if crc32_hex(body) != crc:
        return None
    return body


def valid_tag(s):
    return _valid_hex_field(s, TAG_HEX)


# --- requests ----------------------------------------------------------------------------------
def request_body(req_id, role, counter, cmd, args):
    # The authenticated part of a request: "@ID ROLE COUNTER CMD ARGS". role/counter None -> "-".
    # counter: int (host) or (hi, lo). The request tag (pumpcore.auth) covers exactly these bytes.
    if counter is None:
        ctr = "-"
    elif isinstance(counter, tuple):
        ctr = format_counter(counter)
    else:
        ctr = str(counter)
    return "@%s %s %s %s %s" % (
        req_id, role if role is not None else "-", ctr, cmd,
        encode(args if args is not None else {}))


def request_line(body, tag_hex):
    # body from request_body(), tag_hex None for an unauthenticated request.
    return seal(body + " " + (tag_hex if tag_hex is not None else "-"))


def parse_request(line):
    # line: str without the LF. Returns (req_id, role, counter, cmd, args, tag, body) where role,
    # counter and tag are None when "-", counter a (hi, lo) pair, args a dict, body the
    # authenticated text.
    # Raises WireError(reason, msg, req_id) -- req_id None when the id is not trustworthy
    # (always None for a CRC failure: the id itself may be the corrupted part).
    if len(line) > MAX_LINE:
        raise WireError(reasons.LINE_TOO_LONG, "line longer than %d bytes" % MAX_LINE)
    if not line.startswith("@"):
        raise WireError(reasons.BAD_FRAME, "request must start with '@'")
    if not is_printable(line):
        raise WireError(reasons.BAD_CHAR, "non-printable byte in line")
    rest = check_crc(line)
    if rest is None:
        raise WireError(reasons.BAD_CRC, "CRC missing or wrong")
    req_id = request_id_of(rest)
    if req_id is None:
        raise WireError(reasons.BAD_FRAME, "bad request id")
    sp = rest.rfind(" ")
    body = rest[:sp]
    tag = rest[sp + 1:]
    parts = body.split(" ", 4)
    if len(parts) != 5:
        raise WireError(reasons.BAD_FRAME, "expected '@ID ROLE COUNTER CMD ARGS TAG CRC'", req_id)
    role = parts[1]
    ctr = parts[2]
    cmd = parts[3]
    if not valid_cmd(cmd):
        raise WireError(reasons.BAD_FRAME, "bad command name", req_id)
    if role == "-" or ctr == "-" or tag == "-":
        if not (role == "-" and ctr == "-" and tag == "-"):
            raise WireError(reasons.BAD_FRAME, "role, counter and tag: all '-' or none", req_id)
        role = None
        counter = None
        tag = None
    else:
        if role not in ROLES:
            raise WireError(reasons.UNKNOWN_ROLE, "unknown role", req_id)
        counter = parse_counter(ctr)
        if counter is None:
            raise WireError(reasons.BAD_FRAME, "bad counter", req_id)
        if not valid_tag(tag):
            raise WireError(reasons.BAD_FRAME,
                            "tag must be %d lowercase hex digits" % TAG_HEX, req_id)
    try:
        args = decode(parts[4])
    except WireError as e:
        raise WireError(e.reason, e.msg, req_id) from None
    if not isinstance(args, dict):
        raise WireError(reasons.BAD_ARGS, "arguments must be an object", req_id)
    return req_id, role, counter, cmd, args, tag, body


def request_id_of(text):
    # The id of a request line ("@ID ..."), or None when it is not a valid id.
    sp = text.find(" ")
    req_id = text[1:sp] if sp > 0 else text[1:]
    return req_id if valid_id(req_id) else None


# --- responses and events ----------------------------------------------------------------------
# A reply is built as its body ("=ID DATA" / "!ID REASON DATA"), which the tag covers together
# with the request (pumpcore.auth.reply_tag), then sealed with tagged_line().
def ok_body(req_id, data):
    return "=%s %s" % (req_id, encode(data if data is not None else {}))


def error_body(req_id, reason, msg, extra=None):
    # req_id None -> "-" (the request could not be identified)
    data = {}
    if extra:
        for k in extra:
            data[k] = extra[k]
    data["msg"] = msg
    return "!%s %s %s" % (req_id if req_id is not None else "-", reason, encode(data))


def tagged_line(body, tag_hex):
    # A reply body + " " + tag ("-" when None) + " " + CRC.
    return seal(body + " " + (tag_hex if tag_hex is not None else "-"))


def event_body(boot, seq, data):
    return "~%d %d %s" % (boot, seq, encode(data))


def event_line(body, tags):
    # tags: one tag per role in ROLES order, None for a role without a key
    out = [body]
    for t in tags:
        out.append(t if t is not None else "-")
    return seal(" ".join(out))


def parse_reply(line):
    # Host side. line: str without LF. Returns None for a line that is not protocol output
    # (REPL chatter, echoes, blank lines), else a tuple (kind, ident, data, reason, body, tag):
    #   ("=", req_id, data, None, body, tag)          tag: hex str or None ("-")
    #   ("!", req_id or None, data, reason, body, tag)
    #   ("~", (boot, seq), data, None, body, [tag or None per role])
    # body is the part a tag covers. Raises WireError for a protocol line (first char = ! ~)
    # that is corrupted or malformed.
    if not line or line[0] not in "=!~":
        return None
    if len(line) > MAX_LINE or not is_printable(line):
        raise WireError(reasons.BAD_CHAR, "reply line not printable or too long")
    rest = check_crc(line)
    if rest is None:
        raise WireError(reasons.BAD_CRC, "reply CRC missing or wrong")
    kind = rest[0]
    ntags = len(ROLES) if kind == "~" else 1
    tags = []
    body = rest
    for _ in range(ntags):
        sp = body.rfind(" ")
        if sp < 0:
            raise WireError(reasons.BAD_FRAME, "reply without tag")
        t = body[sp + 1:]
        if t == "-":
            tags.append(None)
        elif valid_tag(t):
            tags.append(t)
        else:
            raise WireError(reasons.BAD_FRAME, "bad tag field")
        body = body[:sp]
    tags.reverse()
    sp = body.find(" ")
    if sp < 0:
        raise WireError(reasons.BAD_FRAME, "reply without data")
    first = body[1:sp]
    reason = None
    if kind == "~":
        sp2 = body.find(" ", sp + 1)
        if sp2 < 0:
            raise WireError(reasons.BAD_FRAME, "event without sequence number")
        boot = parse_seq(first)
        seq = parse_seq(body[sp + 1:sp2])
        if boot is None or seq is None or seq == 0:
            raise WireError(reasons.BAD_FRAME, "bad event boot/sequence number")
        sp = sp2
    elif kind == "!":
        sp2 = body.find(" ", sp + 1)
        if sp2 < 0:
            raise WireError(reasons.BAD_FRAME, "error reply without reason")
        reason = body[sp + 1:sp2]
        sp = sp2
    data = decode(body[sp + 1:])
    if not isinstance(data, dict):
        raise WireError(reasons.BAD_FRAME, "reply data must be an object")
    if kind == "~":
        return ("~", (boot, seq), data, None, body, tags)
    if first == "-" and kind == "!":
        return ("!", None, data, reason, body, tags[0])
    if not valid_id(first):
        raise WireError(reasons.BAD_FRAME, "bad reply id")
    return (kind, first, data, reason, body, tags[0])


# --- line splitting ----------------------------------------------------------------------------
class LineSplitter:
    # Splits a byte stream arriving in arbitrary chunks into lines (LF; a CR right before the LF is
    # dropped). feed(bytes) -> list of (status, text): status "ok" with the line as str, or
    # LINE_TOO_LONG / BAD_CHAR with the first characters of the line (for deciding whether it was
    # meant as a request). A too-long line is discarded up to its LF (resynchronisation).
    def __init__(self, max_line=MAX_LINE):
        self.max_line = max_line
        self.buf = bytearray()
        self.overflow = False
        self.head = ""

    def feed(self, data):
        out = []
        for b in data:
            if b == 10:
                buf = self.buf
                if self.overflow:
                    out.append((reasons.LINE_TOO_LONG, self.head))
                else:
                    if len(buf) and buf[-1] == 13:
                        buf = buf[:-1]
                    if len(buf) > self.max_line:
                        out.append((reasons.LINE_TOO_LONG, _head(buf)))
                        self.buf = bytearray()
                        continue
                    bad = False
                    for c in buf:
                        if c < 0x20 or c > 0x7E:
                            bad = True
                            break
                    if bad:
                        out.append((reasons.BAD_CHAR, _head(buf)))
                    else:
                        out.append(("ok", bytes(buf).decode()))
                self.buf = bytearray()
                self.overflow = False
                self.head = ""
            elif self.overflow:
                continue
            elif len(self.buf) >= self.max_line + 1:   # +1: room for a CR before the LF
                self.head = _head(self.buf)
                self.overflow = True
                self.buf = bytearray()
            else:
                self.buf.append(b)
        return out


def _head(buf):
    # First 8 bytes of a rejected line, non-printables replaced by "?" (for id/sigil recovery).
    head = bytearray(buf[:8])
    for i in range(len(head)):
        if head[i] < 0x20 or head[i] > 0x7E:
            head[i] = 0x3F
    return bytes(head).decode()
