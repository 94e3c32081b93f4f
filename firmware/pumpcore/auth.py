# Authentication for itpump, both directions: HMAC-SHA256 (RFC 2104) built on hashlib.sha256
# (MicroPython has no hmac module), constant-time tag comparison, one 48-bit monotonic counter per
# role, per-role key ids, and the tags of replies and events. Specification: docs/protocol.md.
#
# Keys. The host holds one random 32-byte key per role (`itpump keys generate`). The pump holds
# per role a key id (KID, 16 lowercase hex digits drawn at random by the provisioning function on
# every (re-)provisioning) and the WIRE KEY = HMAC-SHA256(role key, "itpump-v2 key " + KID); every
# tag is made with wire keys. The host derives the same wire key from its role key and the KID the
# pump reports in `hello`. A fresh KID per provisioning means that nothing signed before a
# (re-)provisioning verifies after it, even if the same role keys are provisioned again: that is
# what keeps a damaged security record from re-opening replay (docs/protocol.md, "Lifecycle").
#
# What a tag (32 lowercase hex = HMAC-SHA256 truncated to 128 bits) covers:
#   request  "@ID ROLE COUNTER CMD ARGS"                          with the role's wire key
#   reply    request body + "\n" + "=ID DATA" or "!ID REASON DATA" with the request's role key
#   event    "~BOOT SEQ DATA"                                      with each role's wire key
# The three inputs cannot be confused: only a request starts with "@" and has no "\n"; only an
# event starts with "~". A reply is tagged only when the request's own tag verified (a hello
# names its role and a fresh nonce instead), so the pump never tags text an attacker chose.
#
# Counters: a request from role R is accepted only when its counter is above the last accepted
# for R and at most MAX_STEP_PARTS * 2**24 above it (one frame cannot exhaust the 2**48 space).
# Counters are (hi, lo) pairs of 24-bit parts (small ints on the Pico).

import hashlib

from pumpcore import reasons, wire

ROLES = wire.ROLES
BLOCK = 64                   # SHA-256 block size in bytes
KID_HEX = 16                 # key id: 8 random bytes as lowercase hex
KEY_LABEL = "itpump-v2 key "
MAX_STEP_PARTS = 1           # a counter may be at most 2**24 above the last accepted one
WARN_HI = 1 << 23            # counter past 2**47: half the space used, re-key advised
RECORD_VERSION = 2


def hmac_sha256(key, msg):
    # RFC 2104 HMAC with SHA-256. key, msg: bytes (str msg is encoded as ASCII). -> 32 bytes.
    return _Mac(key).digest(msg)


class _Mac:
    # HMAC-SHA256 with one key: the padded key blocks are made once (the per-message cost is two
    # C-level sha256 runs on the Pico).
    def __init__(self, key):
        if len(key) > BLOCK:
            key = hashlib.sha256(key).digest()
        ipad = bytearray(BLOCK)
        opad = bytearray(BLOCK)
        for i in range(BLOCK):
            k = key[i] if i < len(key) else 0
            ipad[i] = k ^ 0x36
            opad[i] = k ^ 0x5C
        self.ipad = bytes(ipad)
        self.opad = bytes(opad)

    def digest(self, msg):
        if isinstance(msg, str):
            msg = msg.encode()
        h = hashlib.sha256(self.ipad)
        h.update(msg)
        inner = h.digest()
        h = hashlib.sha256(self.opad)
        h.update(inner)
        return h.digest()

    def tag(self, msg):
        return wire.to_hex(self.digest(msg)[:wire.TAG_HEX // 2])


def tag(key, body):
    # HMAC-SHA256(key, body) truncated to 16 bytes, as 32 lowercase hex digits.
    return _Mac(key).tag(body)


def wire_key(role_key, kid):
    # The key every tag of a role is made with: HMAC-SHA256(role key, "itpump-v2 key " + KID).
    return hmac_sha256(role_key, KEY_LABEL + kid)


def reply_input(request_body, reply_body):
    # What a reply's tag covers: the request it answers and the reply itself.
    return request_body + "\n" + reply_body


def equal_ct(a, b):
    # Constant-time comparison of two str/bytes: the time depends only on the lengths (public).
    if len(a) != len(b):
        return False
    diff = 0
    if isinstance(a, str):
        for i in range(len(a)):
            diff |= ord(a[i]) ^ ord(b[i])
    else:
        for i in range(len(a)):
            diff |= a[i] ^ b[i]
    return diff == 0


def valid_kid(kid):
    return isinstance(kid, str) and len(kid) == KID_HEX and wire.from_hex(kid) is not None


class Auth:
    # The pump's security state: per role a wire key, its key id and the last accepted counter,
    # and the boot number (events carry it, so an event line from an earlier boot never passes
    # for a new one). All of it is one record (snapshot/restore), authenticated with the device
    # key by the shell's storage (pumpfw.storage).
    # Who calls what: the dispatcher calls check() then accept(), reply_tag() and event_tags();
    # the shell calls restore() at boot (a damaged record -> the dispatcher is locked), next_boot()
    # once per boot, and persists snapshot() when `dirty` is True.
    # PERSISTENCE CONTRACT: after accept() for a state-changing command the dispatcher calls its
    # persist hook with snapshot() BEFORE executing the command and sending the response (a reset
    # must never make an accepted counter acceptable again for a command with an effect).
    # Counters of read-only commands (status, log) are only marked dirty; the shell persists them
    # with its next write (a replayed read after a power cut can at worst read data again).
    def __init__(self, keys=None, kids=None):
        # keys: {role: wire key (bytes or hex)}, kids: {role: KID} (tests and the docs' example
        # pump; a device restores both from its record).
        self._keys = {}
        self._macs = {}
        self._kids = {}
        self._last = {}
        for r in ROLES:
            self._last[r] = wire.ZERO
        self.boot = 0
        self.dirty = False
        self.warned = {}
        if keys:
            for role in keys:
                self.set_key(role, keys[role], (kids or {}).get(role, "0" * KID_HEX))

    def set_key(self, role, key, kid):
        # key: 16..64 bytes (32 recommended) or their hex, or None to remove the role's key.
        # A new key starts its counter at zero (frames under the old key no longer verify).
        if role not in ROLES:
            raise ValueError("unknown role")
        if key is None:
            self._keys.pop(role, None)
            self._macs.pop(role, None)
            self._kids.pop(role, None)
            return
        if isinstance(key, str):
            key = wire.from_hex(key)
            if key is None:
                raise ValueError("key not lowercase hex")
        if not isinstance(key, (bytes, bytearray)) or not (16 <= len(key) <= 64):
            raise ValueError("key must be 16..64 bytes")
        if not valid_kid(kid):
            raise ValueError("key id must be %d lowercase hex digits" % KID_HEX)
        self._keys[role] = bytes(key)
        self._macs[role] = _Mac(bytes(key))
        self._kids[role] = kid
        self._last[role] = wire.ZERO

    def has_key(self, role):
        return role in self._keys

    def kids(self):
        # {role: KID} of the provisioned roles, as reported by `hello`.
        out = {}
        for r in ROLES:
            if r in self._kids:
                out[r] = self._kids[r]
        return out

    def last_counter(self, role):
        return self._last[role]

    def counters(self):
        # {role: last accepted counter as decimal text} ("0" = none yet), as reported by `hello`.
        out = {}
        for r in ROLES:
            out[r] = wire.format_counter(self._last[r])
        return out

    # -- requests ----------------------------------------------------------------------------------
    def verify(self, role, body, tag_hex):
        # -> reasons.OK, NO_KEY or BAD_TAG; changes nothing. tag_hex is lowercase (wire checked it).
        mac = self._macs.get(role)
        if mac is None:
            return reasons.NO_KEY
        if not isinstance(tag_hex, str) or not equal_ct(mac.tag(body), tag_hex):
            return reasons.BAD_TAG
        return reasons.OK

    def fresh(self, role, counter):
        # After verify(): -> reasons.OK, STALE_COUNTER (not above the last accepted: replay,
        # reorder, rollback) or COUNTER_JUMP (too far above it). Changes nothing.
        last = self._last[role]
        if not wire.counter_after(counter, last):
            return reasons.STALE_COUNTER
        if not wire.counter_within(counter, last, MAX_STEP_PARTS):
            return reasons.COUNTER_JUMP
        return reasons.OK

    def check(self, role, counter, body, tag_hex):
        # verify() then fresh(): the tag first, so an unauthenticated sender learns nothing.
        if role not in ROLES:
            return reasons.UNKNOWN_ROLE
        code = self.verify(role, body, tag_hex)
        if code != reasons.OK:
            return code
        return self.fresh(role, counter)

    def accept(self, role, counter):
        # Record counter as the last accepted for role (caller has check()ed it). Sets dirty.
        # -> True the first time the role's counter passes WARN_HI (the caller logs it).
        if wire.counter_after(counter, self._last[role]):
            self._last[role] = counter
            self.dirty = True
        if counter[0] >= WARN_HI and not self.warned.get(role):
            self.warned[role] = True
            return True
        return False

    # -- replies and events ---------------------------------------------------------------------------
    def reply_tag(self, role, request_body, reply_body):
        mac = self._macs.get(role)
        if mac is None:
            return None
        return mac.tag(reply_input(request_body, reply_body))

    def event_tags(self, body):
        # One tag per role in ROLES order (None for a role without a key).
        out = []
        for r in ROLES:
            mac = self._macs.get(r)
            out.append(mac.tag(body) if mac is not None else None)
        return out

    # -- the record ---------------------------------------------------------------------------------
    def next_boot(self):
        # Once per boot, before any event line: the boot number events carry. Sets dirty (the
        # shell persists it before serving the protocol).
        self.boot = self.boot + 1 if self.boot < wire.MAX_SEQ else 1
        self.dirty = True
        return self.boot

    def snapshot(self):
        # The security record: what must survive power-off. Keys are wire keys (role keys never
        # reach the pump's flash).
        keys = {}
        ctr = {}
        for r in ROLES:
            if r in self._keys:
                keys[r] = wire.to_hex(self._keys[r])
            ctr[r] = [self._last[r][0], self._last[r][1]]
        return {"v": RECORD_VERSION, "keys": keys, "kids": self.kids(), "ctr": ctr,
                "boot": self.boot}

    def restore(self, snap):
        # -> reasons.OK or reasons.BAD_VALUE (nothing changed). Takes keys, key ids and the boot
        # number from the record; counters only ever move forward.
        if not isinstance(snap, dict) or snap.get("v") != RECORD_VERSION:
            return reasons.BAD_VALUE
        keys = snap.get("keys")
        kids = snap.get("kids")
        ctr = snap.get("ctr")
        boot = snap.get("boot")
        if not isinstance(keys, dict) or not isinstance(kids, dict) or not isinstance(ctr, dict) \
                or not _small(boot):
            return reasons.BAD_VALUE
        parsed = {}
        for r in keys:
            k = keys[r]
            kb = wire.from_hex(k) if isinstance(k, str) else None
            if r not in ROLES or kb is None or not (16 <= len(kb) <= 64) \
                    or not valid_kid(kids.get(r)):
                return reasons.BAD_VALUE
            parsed[r] = kb
        for r in ctr:
            v = ctr[r]
            if r not in ROLES or not isinstance(v, list) or len(v) != 2 \
                    or not _part(v[0]) or not _part(v[1]):
                return reasons.BAD_VALUE
        for r in ROLES:
            if r in parsed:
                self._keys[r] = parsed[r]
                self._macs[r] = _Mac(parsed[r])
                self._kids[r] = kids[r]
            else:
                self._keys.pop(r, None)
                self._macs.pop(r, None)
                self._kids.pop(r, None)
        for r in ctr:
            c = (ctr[r][0], ctr[r][1])
            if wire.counter_after(c, self._last[r]):
                self._last[r] = c
        if boot > self.boot:
            self.boot = boot
        self.dirty = False
        return reasons.OK


def _small(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= wire.MAX_SEQ


def _part(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < wire.PART
