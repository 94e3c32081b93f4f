"""Host-side tags of the itpump protocol v2 (docs/protocol.md, "Security"), with the standard
library's ``hmac``/``hashlib`` (the pump has its own HMAC in ``pumpcore.auth``; both are tested
against RFC 4231 and against each other).

A role's *wire key* is HMAC-SHA256(role key, "itpump-v2 key " + KID), KID being the key id the
pump reports in ``hello``; every tag is HMAC-SHA256(wire key, text) truncated to 128 bits, as
32 lowercase hex digits. What the text is: the request body for a request, the request body +
"\\n" + the reply body for a reply, the event body for an event.
"""

from __future__ import annotations

import hashlib
import hmac

from pumpcore import wire

KEY_LABEL = b"itpump-v2 key "


def wire_key(role_key: bytes, kid: str) -> bytes:
    """The key a role's tags are made with, for the pump's current key id ``kid``."""
    return hmac.new(role_key, KEY_LABEL + kid.encode("ascii"), hashlib.sha256).digest()


def tag(key: bytes, text: str) -> str:
    """HMAC-SHA256(key, text) truncated to 16 bytes, as 32 lowercase hex digits."""
    return hmac.new(key, text.encode("ascii"), hashlib.sha256).digest()[:wire.TAG_HEX // 2].hex()


def verifies(key: bytes, text: str, tag_hex: str | None) -> bool:
    """Whether ``tag_hex`` is the tag of ``text`` under ``key`` (constant-time comparison)."""
    return tag_hex is not None and hmac.compare_digest(tag(key, text), tag_hex)


def reply_text(request_body: str, reply_body: str) -> str:
    """What a reply's tag covers: the request it answers and the reply itself."""
    return request_body + "\n" + reply_body
