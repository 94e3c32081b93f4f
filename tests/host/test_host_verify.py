"""What the host trusts (docs/protocol.md): a man in the middle on the TCP link rewrites replies,
hellos and event lines and recomputes their CRC, as an attacker would. The client takes nothing
that does not verify."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pump_server import PumpServer
from pumpcore import auth, reasons, wire
from pumphost import signing
from pumphost.client import PumpClient
from pumphost.errors import AuthError, ReplyAuthError


def _client(server: PumpServer, **kw: object) -> PumpClient:
    kw.setdefault("timeout_s", 0.5)
    return PumpClient.open(server.url, **kw)  # type: ignore[arg-type]


def rewrite(kind: str, change: Callable[[dict], dict]) -> Callable[[str], str | None]:
    """A reply filter that changes the data of every `kind` line and re-seals the CRC."""
    def f(line: str) -> str | None:
        if not line.startswith(kind):
            return line
        parsed = wire.parse_reply(line)
        assert parsed is not None
        body, data = parsed[4], parsed[2]
        new_body = body[:body.index("{")] + wire.encode(change(dict(data)))
        rest = line[len(body):line.rfind(" ")]          # the tag field(s), unchanged
        return wire.seal(new_body + rest)
    return f


def test_a_rewritten_status_is_refused(server: PumpServer) -> None:
    with _client(server) as c:
        c.hello()
        server.pump.state = "running"
        server.reply_filter = rewrite("=", lambda d: {**d, "state": "stopped", "alarms": []})
        with pytest.raises(ReplyAuthError) as ei:
            c.status()
        assert c.replies_rejected == c.retries + 1
        assert "state" not in ei.value.data
        server.reply_filter = None
        assert c.status()["state"] == "running"      # the genuine reply is taken again


def test_a_forged_hello_cannot_set_the_counters(server: PumpServer) -> None:
    # v1's burn: a forged hello said counter 2**30-1 and the host signed with it; now the
    # counters come only from a hello that verifies with our key over our fresh nonce
    server.reply_filter = rewrite("=", lambda d: {**d, "counters": {
        "clinician": str(2 ** 30 - 1), "patient": str(2 ** 30 - 1), "readonly": str(2 ** 48 - 2)}}
        if "counters" in d else d)
    with _client(server) as c:
        with pytest.raises(ReplyAuthError):
            c.hello()
        assert c.info is None and c._counters == {}
        server.reply_filter = None
        c.stop()
    assert server.auth.last_counter("clinician") == (0, 1)     # nothing burnt


def test_an_untagged_copy_of_a_reply_is_not_taken(server: PumpServer) -> None:
    # dropping the tag (an "unauthenticated" ok) is no way around it either
    def strip(line: str) -> str | None:
        if not line.startswith("="):
            return line
        parsed = wire.parse_reply(line)
        assert parsed is not None
        return wire.tagged_line(parsed[4], None)
    with _client(server) as c:
        c.hello()
        server.reply_filter = strip
        with pytest.raises(ReplyAuthError):
            c.stop()
    assert [x[0] for x in server.pump.calls] == ["stop"]   # it ran once: resends hit the cache


def test_a_forged_refusal_is_reported_as_unauthenticated(server: PumpServer) -> None:
    # an untagged refusal is what a pump sends for a request it could not authenticate; it is
    # resent (an executed request comes back from the cache) and, if it persists, reported as
    # unverified: the host never presents it as the pump's word on the request
    def forge(line: str) -> str | None:
        if line.startswith("="):
            rid = wire.parse_reply(line)[1]  # type: ignore[index]
            return wire.tagged_line(wire.error_body(rid, reasons.BAD_TAG, "forged"), None)
        return line
    with _client(server) as c:
        c.hello()
        server.reply_filter = forge
        with pytest.raises(AuthError) as ei:
            c.stop()
        assert ei.value.reason == reasons.BAD_TAG and not ei.value.authenticated
        assert "unauthenticated" in ei.value.message and "may have run" in ei.value.message


def test_events_forged_lost_or_replayed_are_detected(server: PumpServer) -> None:
    issues: list[dict] = []
    seen: list[dict] = []
    captured: list[str] = []
    with _client(server) as c:
        c.hello()
        c.on_event(seen.append)
        c.on_event_issue(issues.append)

        def tap(line: str) -> str | None:
            if line.startswith("~"):
                captured.append(line)
            return line
        server.reply_filter = tap
        server.send_events([{"kind": "alarm", "code": "occlusion"}])
        c.poll_events(1.0)
        assert [e["code"] for e in seen] == ["occlusion"]
        # forged: "no alarm" with the CRC recomputed
        server.reply_filter = rewrite("~", lambda d: {**d, "code": "none"})
        server.send_events([{"kind": "alarm", "code": "occlusion"}])
        c.poll_events(0.5)
        # lost: the next one is dropped on the way
        server.reply_filter = lambda line: None if line.startswith("~") else line
        server.send_events([{"kind": "alarm", "code": "leak"}])
        server.reply_filter = None
        server.send_events([{"kind": "alarm", "code": "dislodgement"}])
        c.poll_events(1.0)
        # replayed: the first, captured line again
        with server.lock:
            assert server._conn is not None
            server._conn.sendall(captured[0].encode() + b"\n")
        c.poll_events(0.5)
    assert [e["code"] for e in seen] == ["occlusion", "dislodgement"]
    assert [i["issue"] for i in issues] == ["forged", "lost", "replayed"]
    assert issues[1]["count"] == 2          # the forged one and the dropped one
    assert c.events_rejected == 2 and c.events_lost == 2


def test_a_throttled_reply_is_waited_out(server: PumpServer) -> None:
    n = {"throttled": 0}

    def throttle_once(line: str) -> str | None:
        if line.startswith("=") and not n["throttled"]:
            n["throttled"] += 1
            rid = wire.parse_reply(line)[1]  # type: ignore[index]
            return wire.tagged_line(wire.error_body(rid, reasons.THROTTLED, "wait",
                                                    {"retry_ms": 50}), None)
        return line
    with _client(server) as c:
        c.hello()
        server.reply_filter = throttle_once
        c.stop()
        assert c.resends == 1
    assert [x[0] for x in server.pump.calls] == ["stop"]


def test_hello_data_is_what_the_cli_shows(server: PumpServer) -> None:
    with _client(server) as c:
        info = c.hello()
    assert json.loads(json.dumps(info))["kids"] == server.auth.kids()


def test_host_tags_are_rfc4231_hmac_and_match_the_firmware() -> None:
    # RFC 4231 test case 2 (key "Jefe"), truncated to 128 bits as the protocol's tags are
    assert signing.tag(b"Jefe", "what do ya want for nothing?") == \
        "5bdcc146bf60754e6a042426089575c7"
    for key in (bytes(range(32)), b"\xaa" * 131):
        for text in ("", "@1 clinician 1 stop {}", "x" * 3000):
            assert signing.tag(key, text) == auth.tag(key, text)
        assert signing.wire_key(key, "0123456789abcdef") == auth.wire_key(key, "0123456789abcdef")
