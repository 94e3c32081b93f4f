"""The host's exception hierarchy: one root, precise subclasses.

Every failure the client or CLI reports is a :class:`PumpError`; ``reason`` is a reason code from
``pumpcore.reasons`` (the same string the pump sent) or a host-side code such as ``timeout``.
"""

from __future__ import annotations

from typing import Any

from pumpcore import reasons

#: Refusals caused by authentication/authorisation (raised as AuthError, not RefusedError).
AUTH_REASONS = frozenset({
    reasons.AUTH_REQUIRED, reasons.NO_KEY, reasons.BAD_TAG, reasons.STALE_COUNTER,
    reasons.COUNTER_JUMP, reasons.ROLE_FORBIDDEN, reasons.UNKNOWN_ROLE, reasons.LOCKED,
})
#: Refusals the pump sends without a tag (the request did not authenticate, or the pump could not
#: read it, or is locked or throttling the link). A reply of any other kind must verify.
UNTAGGED_REASONS = frozenset({
    reasons.BAD_CRC, reasons.LINE_TOO_LONG, reasons.BAD_CHAR, reasons.BAD_FRAME,
    reasons.BAD_ARGS, reasons.UNKNOWN_ROLE, reasons.AUTH_REQUIRED, reasons.NO_KEY,
    reasons.BAD_TAG, reasons.LOCKED, reasons.THROTTLED, reasons.INTERNAL_ERROR,
})
#: Refusals meaning the pump could not read our request (raised as ProtocolError).
PROTOCOL_REASONS = frozenset({
    reasons.BAD_CRC, reasons.LINE_TOO_LONG, reasons.BAD_CHAR, reasons.BAD_FRAME,
    reasons.BAD_ARGS, reasons.UNKNOWN_COMMAND, reasons.ID_REUSED,
})


class PumpError(Exception):
    """Root of every itpump host error. ``reason`` is a short lowercase code."""

    reason: str = "error"

    def __init__(self, message: str, reason: str | None = None,
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.message = message
        self.data: dict[str, Any] = data or {}

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class TransportError(PumpError):
    """The link failed: port missing, closed, timeout after all retries."""

    reason = "transport"


class OutcomeUnknownError(TransportError):
    """A state-changing request may or may not have run (reply lost and the pump forgot it,
    e.g. after a reset). Check `status`/`log` before repeating it."""

    reason = "outcome_unknown"


class ProtocolError(PumpError):
    """Malformed traffic: a garbled reply, or the pump could not parse our request."""

    reason = "protocol"


class RefusedError(PumpError):
    """The pump understood and refused the command; ``reason`` says why (e.g. ``lockout``)."""


class AuthError(PumpError):
    """Authentication or authorisation failed (bad tag, stale counter, wrong role, no key).
    ``authenticated`` is False when the refusal came in an untagged reply, which anyone on the
    link could have forged (docs/protocol.md, "What the host trusts")."""

    reason = "auth"
    authenticated = True


class LockedError(AuthError):
    """The pump's security state is lost or damaged: it serves nothing but ``hello`` until it is
    re-keyed over the physical channel (docs/protocol.md, "Lifecycle")."""

    reason = "locked"


class ReplyAuthError(AuthError):
    """A reply or hello from the pump does not verify: its tag is missing or wrong for the key
    file (a key file for another provisioning of this pump, or someone changing lines on the
    link). Nothing from it is used. For a state-changing command the outcome is unknown."""

    reason = "bad_reply_tag"


class ThrottledError(TransportError):
    """The pump is throttling this link after repeated refused requests; try again later."""

    reason = "throttled"


def error_for(reason: str, message: str, data: dict[str, Any] | None = None) -> PumpError:
    """The exception class matching a pump error reply."""
    if reason == reasons.LOCKED:
        return LockedError(message, reason, data)
    if reason == reasons.THROTTLED:
        return ThrottledError(message, reason, data)
    if reason in AUTH_REASONS:
        return AuthError(message, reason, data)
    if reason in PROTOCOL_REASONS:
        return ProtocolError(message, reason, data)
    return RefusedError(message, reason, data)
