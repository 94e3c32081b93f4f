# Persistent storage on the board's flash (LittleFS on the Pico; a real littlefs image in the
# emulator). Who calls it: pumpfw.app only.
#
# Files (all small JSON, one record per file unless noted):
#   /identity.json  {"device_id": ...}                       written at provisioning
#   /keys.json      {"clinician": hex, "patient": hex, "readonly": hex}   written at provisioning
#   /state.json     integrity line + pump snapshot             every state change (atomic)
#   /auth.json      integrity line + auth counters             before every accepted command
#   /log0.txt ..    event log, one JSON entry per line, rotated (board.LOG_FILES x LOG_FILE_MAX)
# Atomic update: write <name>.tmp, close, rename over <name> (LittleFS rename is atomic on power
# loss). Integrity: the first line is the sha256 hex of the body; a mismatch reads as CORRUPT.
# Missing state at boot is a fault, never "first boot defaults": provisioning writes a factory
# state record, so a fresh device is distinguishable from one whose flash was re-formatted.

import binascii
import hashlib
import json

from pumpfw import board

OK = "ok"
MISSING = "missing"
CORRUPT = "corrupt"


def _hex(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


class Storage:
    def __init__(self, fs):
        # fs: object with open(path, mode), rename(src, dst), remove(path), stat(path)
        self.fs = fs
        self.writes = 0            # number of flash writes (benchmarks, wear estimate)

    # -- records with integrity ------------------------------------------------------------------
    def save(self, name, obj):
        # compact separators (MicroPython >= 1.20 takes them too): ~20 % fewer bytes to program
        body = json.dumps(obj, separators=(",", ":")).encode()
        tmp = name + ".tmp"
        f = self.fs.open(tmp, "wb")
        try:
            f.write(_hex(body).encode() + b"\n")
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
        nl = data.find(b"\n")
        if nl != 64:
            return CORRUPT, None
        body = data[nl + 1:]
        if _hex(body).encode() != data[:nl]:
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

    # -- event log -----------------------------------------------------------------------------------
    def append_log(self, entries):
        if not entries:
            return
        size = self._size("/log0.txt")
        if size >= board.LOG_FILE_MAX:
            self._rotate()
        f = self.fs.open("/log0.txt", "ab")
        try:
            for e in entries:
                f.write(json.dumps(e).encode() + b"\n")
        finally:
            f.close()
        self.writes += 1

    def read_log(self, since_seq=0, limit=1000):
        """Stored entries with seq > since_seq, oldest first (at most `limit`)."""
        out = []
        for i in range(board.LOG_FILES - 1, -1, -1):
            name = "/log%d.txt" % i
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
                    if e.get("seq", 0) > since_seq:
                        out.append(e)
            finally:
                f.close()
        return out[:limit]

    def _size(self, name):
        try:
            return self.fs.stat(name)[6]
        except OSError:
            return 0

    def _rotate(self):
        last = "/log%d.txt" % (board.LOG_FILES - 1)
        try:
            self.fs.remove(last)
        except OSError:
            pass
        for i in range(board.LOG_FILES - 2, -1, -1):
            try:
                self.fs.rename("/log%d.txt" % i, "/log%d.txt" % (i + 1))
            except OSError:
                pass


def provision(fs, device_id, keys_hex):
    """Factory provisioning: identity, keys and a factory state record (host tools / emulator)."""
    st = Storage(fs)
    st.save_plain("/identity.json", {"device_id": device_id})
    st.save_plain("/keys.json", keys_hex)
    st.save("/state.json", {"factory": True})
    st.save("/auth.json", {"factory": True})
