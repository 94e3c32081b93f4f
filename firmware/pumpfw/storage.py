# Persistent storage on the board's flash (LittleFS on the Pico; a real littlefs image in the
# emulator). Who calls it: pumpfw.app, and the provisioning functions at the end (factory
# provisioning and re-keying over the physical channel: itpump provision on the board, the emulator).
#
# Files (all small JSON):
#   /identity.json  {"device_id": ..., "device_key": 64 hex}   written by factory provisioning only
#   /security.json  MAC line + the security record (pumpcore.auth.Auth.snapshot(): wire keys, key
#                   ids, 48-bit counters, boot number)        at boot and before every accepted
#                                                             state-changing command
#   /state.json     MAC line + pump snapshot                  every state change
#   /library.json   MAC line + the drug library record        factory provisioning, and after
#                   (pumpcore.library; the pump enforces it)  every library_commit (written
#                                                             after the state record)
#   /log0.txt ..    event log, one JSON entry per line, rotated (board.LOG_FILES x LOG_FILE_MAX)
#   /sec0.txt ..    security log (refusal summaries, counter warnings, boots), rotated on its own
#                   (board.SEC_LOG_FILES): nothing the therapy log does can push these out, and a
#                   flood of refused frames adds at most one entry an hour (pumpcore.dispatch)
# Records: the first line is HMAC-SHA256(device key, body) as 64 lowercase hex digits; a record
# that does not verify reads as CORRUPT. The device key is the pump's own secret (never sent over
# the protocol), so a record cannot be forged or moved from another pump without it.
# Atomic update: write <name>.tmp, close, rename over <name> (LittleFS rename is atomic on power
# loss). Missing state at boot is a fault, never "first boot defaults": provisioning writes a
# factory state record, so a fresh device is distinguishable from one whose flash was re-formatted.

import json
import os

from pumpcore import auth as _auth
from pumpcore import library as _library
from pumpcore import reasons, wire
from pumpcore.dispatch import SECURITY_KINDS

from pumpfw import board

OK = "ok"
MISSING = "missing"
CORRUPT = "corrupt"

IDENTITY = "/identity.json"
SECURITY = "/security.json"
STATE = "/state.json"
LIBRARY = "/library.json"
DEVICE_KEY_BYTES = 32


class Storage:
    def __init__(self, fs, key=None):
        # fs: object with open(path, mode), rename(src, dst), remove(path), stat(path)
        # key: the device key (bytes) records are authenticated with; None: records can be
        # neither written nor read (an unprovisioned pump).
        self.fs = fs
        self._mac = _auth._Mac(key) if key else None
        self.writes = 0            # number of flash writes (benchmarks, wear estimate)
        self._tails = []           # log files whose last line was checked since boot

    # -- records with a MAC ----------------------------------------------------------------------
    def save(self, name, obj):
        if self._mac is None:
            raise OSError("no device key")
        # compact separators (MicroPython >= 1.20 takes them too): ~20 % fewer bytes to program
        body = json.dumps(obj, separators=(",", ":")).encode()
        tmp = name + ".tmp"
        f = self.fs.open(tmp, "wb")
        try:
            f.write(wire.to_hex(self._mac.digest(body)).encode() + b"\n")
            f.write(body)
        finally:
            f.close()
        self.fs.rename(tmp, name)
        self.writes += 1

    def load(self, name):
        """(OK, obj) | (MISSING, None) | (CORRUPT, None)."""
        try:
            f = self.fs.open(name, "rb")
        except OSError:
            return MISSING, None
        try:
            data = f.read()
        finally:
            f.close()
        if self._mac is None:
            return CORRUPT, None
        nl = data.find(b"\n")
        if nl != 64:
            return CORRUPT, None
        body = data[nl + 1:]
        if not _auth.equal_ct(wire.to_hex(self._mac.digest(body)).encode(), data[:nl]):
            return CORRUPT, None
        try:
            return OK, json.loads(body)
        except ValueError:
            return CORRUPT, None

    # -- plain provisioning files ------------------------------------------------------------------
    def load_plain(self, name):
        try:
            f = self.fs.open(name, "rb")
        except OSError:
            return None
        try:
            return json.loads(f.read())
        except ValueError:
            return None
        finally:
            f.close()

    def save_plain(self, name, obj):
        tmp = name + ".tmp"
        f = self.fs.open(tmp, "wb")
        try:
            f.write(json.dumps(obj).encode())
        finally:
            f.close()
        self.fs.rename(tmp, name)
        self.writes += 1

    # -- event logs ----------------------------------------------------------------------------------
    def append_log(self, entries):
        # Security entries (pumpcore.dispatch.SECURITY_KINDS) go to the security log, boots to
        # both logs, everything else to the event log. One flash write per log touched.
        if not entries:
            return
        main = []
        sec = []
        for e in entries:
            kind = e.get("kind") if isinstance(e, dict) else None
            if kind in SECURITY_KINDS:
                sec.append(e)
            else:
                main.append(e)
                if kind == "boot":
                    sec.append(e)
        if main:
            self._append("/log", board.LOG_FILES, main)
        if sec:
            self._append("/sec", board.SEC_LOG_FILES, sec)

    def _append(self, prefix, files, entries):
        first = prefix + "0.txt"
        if self._size(first) >= board.LOG_FILE_MAX:
            self._rotate(prefix, files)
        torn = self._torn_tail(first)
        f = self.fs.open(first, "ab")
        try:
            if torn:
                f.write(b"\n")     # a line torn by a power cut stays alone, never merged
            for e in entries:
                f.write(json.dumps(e).encode() + b"\n")
        finally:
            f.close()
        self.writes += 1

    def read_log(self, since_seq=None, limit=1000, security=False):
        """Stored entries, oldest first (at most `limit`): all of them, or those with a pump
        sequence number above since_seq; security=True reads the security log."""
        prefix, files = ("/sec", board.SEC_LOG_FILES) if security else ("/log", board.LOG_FILES)
        out = []
        for i in range(files - 1, -1, -1):
            name = "%s%d.txt" % (prefix, i)
            try:
                f = self.fs.open(name, "rb")
            except OSError:
                continue
            try:
                for line in f.read().split(b"\n"):
                    if not line:
                        continue
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue   # a torn last line after power loss is skipped, not fatal
                    if since_seq is None or e.get("seq", 0) > since_seq:
                        out.append(e)
            finally:
                f.close()
        return out[:limit]

    def _torn_tail(self, name):
        """True when `name` ends in a partial line (power lost mid-append); checked once per
        file and boot."""
        if name in self._tails:
            return False
        self._tails.append(name)
        size = self._size(name)
        if not size:
            return False
        f = self.fs.open(name, "rb")
        try:
            f.seek(size - 1)
            return f.read(1) != b"\n"
        finally:
            f.close()

    def last_logged_seq(self):
        """The highest pump sequence number in the newest event-log file that has one (0: none):
        read line by line at boot."""
        for i in range(board.LOG_FILES):
            try:
                f = self.fs.open("/log%d.txt" % i, "rb")
            except OSError:
                continue
            best = 0
            try:
                while True:
                    line = f.readline()
                    if not line:
                        break
                    j = line.find(b'"seq":')
                    if j >= 0:
                        s = _int_at(line, j + 6)
                        if s > best:
                            best = s
            finally:
                f.close()
            if best:
                return best
        return 0

    def log_page(self, after_seq, after_skip, limit, budget):
        """One page of the stored event log, oldest first, streamed line by line (never a whole
        file in RAM). Position of an entry: (s, k) where s is the pump sequence number of the
        last pump event at or before it ("seq", the only key of that name in any entry: pump events
        carry it, command rows and security entries do not) and k counts the entries without one
        since it (0 for the pump event itself). Returns ([[s, k], entry]...] after
        (after_seq, after_skip): at most `limit` entries and `budget` bytes of stored lines; the
        last position returned (the cursor for the next page); and whether more follow. A line
        torn by a power cut (not ending in "}\n": _append keeps it alone on its line) is skipped
        and takes no position."""
        out = []
        used = 0
        more = False
        last = [after_seq, after_skip]
        cur = 0
        k = 0
        for i in range(board.LOG_FILES - 1, -1, -1):
            try:
                f = self.fs.open("/log%d.txt" % i, "rb")
            except OSError:
                continue
            try:
                while True:
                    line = f.readline()
                    if not line:
                        break
                    if line[-2:] != b"}\n":
                        continue     # torn by a power cut mid-append: no entry, no position
                    j = line.find(b'"seq":')
                    if j >= 0:
                        cur = _int_at(line, j + 6)
                        k = 0
                    else:
                        k += 1
                    if cur < after_seq or (cur == after_seq and k <= after_skip):
                        continue
                    if len(out) >= limit or (out and used + len(line) > budget):
                        more = True
                        break
                    try:
                        e = json.loads(line)
                    except ValueError:
                        e = {"kind": "unreadable", "bytes": len(line)}
                    if len(line) > budget:
                        e = {"kind": "too_long", "bytes": len(line)}
                    used += len(line)
                    out.append([[cur, k], e])
                    last = [cur, k]
            finally:
                f.close()
            if more:
                break
        return out, last, more

    def _size(self, name):
        try:
            return self.fs.stat(name)[6]
        except OSError:
            return 0

    def _rotate(self, prefix, files):
        try:
            self.fs.remove("%s%d.txt" % (prefix, files - 1))
        except OSError:
            pass
        for i in range(files - 2, -1, -1):
            try:
                self.fs.rename("%s%d.txt" % (prefix, i), "%s%d.txt" % (prefix, i + 1))
            except OSError:
                pass


def _int_at(line, j):
    """The decimal integer in bytes `line` from index j on (leading spaces skipped)."""
    n = len(line)
    while j < n and line[j] == 32:
        j += 1
    v = 0
    while j < n and 48 <= line[j] <= 57:
        v = v * 10 + line[j] - 48
        j += 1
    return v


# -- identity -----------------------------------------------------------------------------------------
def device_identity(fs):
    """(device_id, device_key bytes) from /identity.json, or None when it is missing or
    malformed (an unprovisioned pump)."""
    ident = Storage(fs).load_plain(IDENTITY)
    if not isinstance(ident, dict) or not isinstance(ident.get("device_id"), str):
        return None
    key = ident.get("device_key")
    key = wire.from_hex(key) if isinstance(key, str) else None
    if key is None or len(key) != DEVICE_KEY_BYTES:
        return None
    return ident["device_id"], key


def _random_hex(n):
    # n random bytes as lowercase hex (the port's os.urandom: the Pico's ring oscillator, the
    # host's CSPRNG when the emulator or a provisioning tool runs this)
    return wire.to_hex(os.urandom(n))


def _fresh_record(keys_hex, old=None):
    # A security record with a fresh random key id (and so fresh wire keys) and counter zero for
    # every role in keys_hex; other roles as in `old` (an Auth) when given.
    a = _auth.Auth()
    if old is not None:
        a.restore(old.snapshot())
    for role in keys_hex:
        raw = wire.from_hex(keys_hex[role])
        if role not in wire.ROLES or raw is None or not (16 <= len(raw) <= 64):
            raise ValueError("bad key for role %s" % role)
        kid = _random_hex(_auth.KID_HEX // 2)
        a.set_key(role, _auth.wire_key(raw, kid), kid)
    return a


# -- provisioning (the physical channel: never reachable through the protocol) ------------------------
def provision(fs, device_id, keys_hex, device_key_hex=None, library=None):
    """Factory provisioning: identity with a new device key (random unless given), a security
    record for the role keys {role: 64 hex} (fresh key ids, counters zero), a factory state
    record and, when given, the drug library record (pumpcore.library; validated first: a bad
    one raises ValueError before anything is written). Everything signed before, under any keys,
    no longer verifies. Returns the key ids {role: kid} (the pump reports them in `hello` too)."""
    if library is not None:
        problems = _library.validate_record(library)[0]
        if problems:
            raise ValueError("library record: %s" % problems[0][:2])
    dkey = device_key_hex if device_key_hex is not None else _random_hex(DEVICE_KEY_BYTES)
    if wire.from_hex(dkey) is None or len(dkey) != 2 * DEVICE_KEY_BYTES:
        raise ValueError("device key must be %d lowercase hex digits" % (2 * DEVICE_KEY_BYTES))
    st = Storage(fs, wire.from_hex(dkey))
    st.save_plain(IDENTITY, {"device_id": device_id, "device_key": dkey})
    a = _fresh_record(keys_hex)
    st.save(SECURITY, a.snapshot())
    st.save(STATE, {"factory": True})
    if library is not None:
        st.save(LIBRARY, library)
    return a.kids()


def install_library(fs, library):
    """Write a drug library record over the physical channel (the emulator for a state
    directory made before libraries were records). Raises ValueError for an unprovisioned pump
    or a record that does not validate."""
    ident = device_identity(fs)
    if ident is None:
        raise ValueError("no device identity: factory provisioning needed")
    problems = _library.validate_record(library)[0]
    if problems:
        raise ValueError("library record: %s" % problems[0][:2])
    Storage(fs, ident[1]).save(LIBRARY, library)


def rekey(fs, keys_hex):
    """Re-key roles over the physical channel, keeping the device key, the pump state and the other
    roles: each role in keys_hex gets a fresh key id and counter zero (the way out of an exhausted
    or burnt counter, or a lost handset). When the security record is damaged or missing every
    role must be re-keyed (the old counters are unknown), which also unlocks the pump.
    Raises ValueError when the pump has no identity (use provision) or a role is missing.
    Returns the key ids {role: kid}."""
    ident = device_identity(fs)
    if ident is None:
        raise ValueError("no device identity: factory provisioning needed")
    st = Storage(fs, ident[1])
    code, snap = st.load(SECURITY)
    old = _auth.Auth()
    if code != OK or old.restore(snap) != reasons.OK:
        for role in wire.ROLES:
            if role not in keys_hex:
                raise ValueError("security record %s: every role must be re-keyed"
                                 % (code if code != OK else "unreadable"))
        old = None
    a = _fresh_record(keys_hex, old)
    st.save(SECURITY, a.snapshot())
    return a.kids()
