# Device-side protocol dispatcher: request line -> authenticated command on the Pump facade ->
# exactly one response line; pump events -> "~" event lines. Specification: docs/protocol.md.
#
# Who calls what (the shell, pumpfw):
#   d = Dispatcher(pump, auth, info, persist=save_fn)
#   out = d.feed(bytes_from_serial)      # list of response lines (str, no LF): write each + "\n"
#   ev = d.event_lines(pump_events)      # list of "~" lines for events the shell popped from the
#                                        # pump (or None: the dispatcher calls pump.pop_events())
#   sec = d.pop_security_log()           # refusal/command log entries the shell must store
#   if auth.dirty: persist auth.snapshot() with the next flash write
# persist(snapshot) is called synchronously, after a state-changing command's counter is accepted
# and BEFORE the command runs or its response is sent; if it raises, the command is not executed
# and the reply is storage_error.
# No exception escapes feed()/handle_line()/event_lines() on any input. Allocation is fine here
# (this is not the control step).

from pumpcore import reasons, wire

CACHE_SIZE = 16      # replay cache: responses of the last 16 accepted authenticated requests
LOG_SIZE = 64        # protocol-side log ring kept in RAM for the `log` command
MAX_CHUNKS = 16      # chunked staging: at most 16 chunks ...
MAX_STAGED_TEXT = 16384  # ... and 16 KiB of rx text in total
LOG_REPLY_BUDGET = 1700  # bytes of log entries per `log` reply (the line must fit MAX_LINE)

C = "clinician"
P = "patient"
R = "readonly"

# command -> (roles allowed, state_changing, argument spec {name: (type, required)})
# type: "int", "bool", "str", "str_or_null", "obj". Unknown argument names are refused (bad_args).
COMMANDS = {
    "hello": ((), False, {}),                # unauthenticated (also accepted with any role's tag)
    "status": ((C, P, R), False, {}),
    "log": ((C, R), False, {"since": ("int", False), "limit": ("int", False)}),
    "review": ((C,), False, {"changes_offset": ("int", False)}),
    "stage": ((C,), True, {"rx": ("obj", True)}),
    "stage_chunk": ((C,), True, {"index": ("int", True), "count": ("int", True),
                                 "text": ("str", True)}),
    "commit": ((C,), True, {"checksum": ("str", True), "confirm_soft": ("bool", False),
                            "bridge": ("bool", False)}),
    "start": ((C,), True, {}),
    "stop": ((C,), True, {}),
    "suspend": ((C,), True, {"minutes": ("int", True)}),
    "resume": ((C,), True, {}),
    "prime": ((C,), True, {"volume_nl": ("int", True)}),
    "refill": ((C,), True, {"fill_nl": ("int", True), "new_admixture": ("bool", False)}),
    "bolus": ((C,), True, {"volume_nl": ("int", True), "duration_ms": ("int", True)}),
    "patient_bolus": ((C, P), True, {}),
    "ack": ((C,), True, {"alarm": ("str_or_null", False)}),
    "silence": ((C, P), True, {}),           # mutes alarm tones for <= 2 min (patient may too)
    "set_clock": ((C,), True, {"day": ("int", True), "ms_of_day": ("int", True)}),
}


def _type_ok(v, t):
    if t == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "bool":
        return v is True or v is False
    if t == "str":
        return isinstance(v, str)
    if t == "str_or_null":
        return v is None or isinstance(v, str)
    if t == "obj":
        return isinstance(v, dict)
    return False


def check_args(cmd, args):
    # -> None when args match the command's spec, else a message naming the argument.
    spec = COMMANDS[cmd][2]
    for k in args:
        if k not in spec:
            return "unknown argument %s" % k
    for k in spec:
        t, required = spec[k]
        if k not in args:
            if required:
                return "missing argument %s" % k
            continue
        if not _type_ok(args[k], t):
            return "argument %s must be %s" % (k, t)
    return None


class Dispatcher:
    def __init__(self, pump, auth, info=None, persist=None):
        # info: {"firmware": str, "device_id": str, "board": str} reported by hello.
        self.pump = pump
        self.auth = auth
        self.info = info or {}
        self.persist = persist
        self.splitter = wire.LineSplitter()
        self._cache = []          # [(req_id, body + " " + tag, response_line)], oldest first
        self._log = []            # [(seq, entry)], oldest first, at most LOG_SIZE
        self._pending = []        # own entries not yet turned into event lines
        self._security = []       # entries not yet popped by the shell for storage
        self._seq = 0
        self._chunks = None       # chunked staging in progress: list of texts received so far
        self._chunk_count = 0

    # --- input ---------------------------------------------------------------------------------
    def feed(self, data):
        # bytes in arbitrary chunks -> list of response lines (no LF). Never raises.
        out = []
        try:
            items = self.splitter.feed(data)
        except Exception:
            self.splitter = wire.LineSplitter()
            return out
        for status, text in items:
            if status == "ok":
                if text.startswith("@"):
                    r = self.handle_line(text)
                    if r is not None:
                        out.append(r)
                # anything else (blank lines, REPL chatter) is ignored silently
            elif text.startswith("@"):
                out.append(self._safe_error(None, status, "line discarded: %s" % status))
        return out

    def handle_line(self, line):
        # One request line (str, no LF) -> one response line (str, no LF); None only if even the
        # error reply cannot be built (out of memory). Never raises.
        try:
            return self._handle(line)
        except Exception as e:
            return self._safe_error(None, reasons.INTERNAL_ERROR, "dispatcher: %s" % type(e).__name__)

    def _safe_error(self, req_id, reason, msg, extra=None):
        try:
            return wire.error_line(req_id, reason, msg, extra)
        except Exception:
            try:
                return wire.error_line(req_id, reason, "?")
            except Exception:
                return None

    def _handle(self, line):
        try:
            req_id, role, counter, cmd, args, tag, body = wire.parse_request(line)
        except wire.WireError as e:
            if e.reason == reasons.UNKNOWN_ROLE:
                self._record({"kind": "auth_refused", "reason": e.reason, "role": None,
                              "id": e.req_id})
            return self._safe_error(e.req_id, e.reason, e.msg)
        signed = body + " " + (tag or "-")
        for cid, csigned, cresp in self._cache:
            if cid == req_id:
                if csigned == signed:
                    return cresp      # resend of an accepted request: same reply, not re-executed
                return self._safe_error(req_id, reasons.ID_REUSED,
                                        "request id recently used for a different request")
        spec = COMMANDS.get(cmd)
        if spec is None:
            return self._safe_error(req_id, reasons.UNKNOWN_COMMAND, "unknown command %s" % cmd)
        roles, changes, _ = spec
        if role is None:
            if cmd != "hello":
                self._refused(reasons.AUTH_REQUIRED, None, cmd, req_id)
                return self._safe_error(req_id, reasons.AUTH_REQUIRED,
                                        "%s needs a role, counter and tag" % cmd)
        else:
            code = self.auth.check(role, counter, body, tag)
            if code != reasons.OK:
                self._refused(code, role, cmd, req_id)
                return self._safe_error(req_id, code, _AUTH_MSG.get(code, code))
            if cmd != "hello" and role not in roles:
                self._refused(reasons.ROLE_FORBIDDEN, role, cmd, req_id)
                return self._safe_error(req_id, reasons.ROLE_FORBIDDEN,
                                        "role %s may not use %s" % (role, cmd))
        msg = check_args(cmd, args)
        if msg is not None:
            return self._safe_error(req_id, reasons.BAD_ARGS, msg)
        if role is not None:
            self.auth.accept(role, counter)
            if changes and self.persist is not None:
                try:
                    self.persist(self.auth.snapshot())
                except Exception:
                    resp = self._safe_error(req_id, reasons.STORAGE_ERROR,
                                            "counter not persisted; command not executed")
                    self._remember(req_id, signed, resp)
                    return resp
        try:
            code, data = self._execute(cmd, args)
        except Exception as e:
            code, data = reasons.INTERNAL_ERROR, {"msg": "pump: %s" % type(e).__name__}
        if changes:
            self._record({"kind": "command", "role": role, "cmd": cmd, "id": req_id,
                          "result": code})
        resp = self._reply(req_id, code, data)
        if role is not None:
            self._remember(req_id, signed, resp)
        return resp

    def _reply(self, req_id, code, data):
        if not isinstance(data, dict):
            data = {} if data is None else {"value": data}
        try:
            line = self._build(req_id, code, data)
            if len(line) > wire.MAX_LINE:
                # long lists are paged: "changes" (review; more via review changes_offset) and
                # "problems" (refusals); "<key>_total" tells the host how many there are
                key = "changes" if code == reasons.OK else "problems"
                line = self._trimmed(req_id, code, data, key)
        except wire.WireError as e:
            return self._safe_error(req_id, reasons.INTERNAL_ERROR,
                                    "result of %s not encodable: %s" % (code, e.msg))
        if line is None or len(line) > wire.MAX_LINE:
            return self._safe_error(req_id, reasons.INTERNAL_ERROR,
                                    "result of %s too long for one line" % code)
        return line

    def _build(self, req_id, code, data):
        if code == reasons.OK:
            return wire.ok_line(req_id, data)
        msg = data.get("msg")
        extra = {}
        for k in data:
            if k != "msg":
                extra[k] = data[k]
        return wire.error_line(req_id, code, msg if isinstance(msg, str) else code, extra)

    def _trimmed(self, req_id, code, data, key):
        items = data.get(key)
        if not isinstance(items, list):
            return None
        off = data.get(key + "_offset", 0)
        d = {}
        for k in data:
            d[k] = data[k]
        d[key] = []
        d[key + "_total"] = off + len(items)
        d[key + "_offset"] = off
        budget = wire.MAX_LINE - len(self._build(req_id, code, d)) - 2
        keep = []
        for item in items:
            n = len(wire.encode(item)) + 1
            if n > budget:
                break
            budget -= n
            keep.append(item)
        d[key] = keep
        return self._build(req_id, code, d)

    def _remember(self, req_id, signed, resp):
        self._cache.append((req_id, signed, resp))
        if len(self._cache) > CACHE_SIZE:
            self._cache.pop(0)

    def _execute(self, cmd, a):
        p = self.pump
        if cmd == "hello":
            return reasons.OK, {
                "protocol": wire.PROTOCOL_VERSION, "max_line": wire.MAX_LINE,
                "firmware": self.info.get("firmware", "?"),
                "device_id": self.info.get("device_id", "?"),
                "board": self.info.get("board", "?"),
                "counters": self.auth.counters()}
        if cmd == "status":
            return reasons.OK, p.status()
        if cmd == "log":
            return reasons.OK, self._log_reply(a.get("since", 0), a.get("limit", LOG_SIZE))
        if cmd == "review":
            code, data = p.review()
            off = a.get("changes_offset", 0)
            if code == reasons.OK and isinstance(data, dict) and off \
                    and isinstance(data.get("changes"), list):
                if off < 0:
                    return reasons.BAD_ARGS, {"msg": "changes_offset must be >= 0"}
                page = {}
                for k in data:
                    page[k] = data[k]
                page["changes"] = data["changes"][off:]
                page["changes_offset"] = off
                return code, page
            return code, data
        if cmd == "stage":
            return p.stage(a["rx"])
        if cmd == "stage_chunk":
            return self._stage_chunk(a["index"], a["count"], a["text"])
        if cmd == "commit":
            return p.commit(a["checksum"], a.get("confirm_soft", False), a.get("bridge", False))
        if cmd == "start":
            return p.start()
        if cmd == "stop":
            return p.stop()
        if cmd == "suspend":
            return p.suspend(a["minutes"])
        if cmd == "resume":
            return p.resume()
        if cmd == "prime":
            return p.prime(a["volume_nl"])
        if cmd == "refill":
            return p.refill(a["fill_nl"], a.get("new_admixture", False))
        if cmd == "bolus":
            return p.clinician_bolus(a["volume_nl"], a["duration_ms"])
        if cmd == "patient_bolus":
            return p.patient_bolus()
        if cmd == "ack":
            return p.ack(a.get("alarm"))
        if cmd == "silence":
            return p.silence()
        if cmd == "set_clock":
            return p.set_clock(a["day"], a["ms_of_day"])
        return reasons.UNKNOWN_COMMAND, None

    def _stage_chunk(self, index, count, text):
        # Chunked staging for programs whose `stage` line would exceed MAX_LINE: the canonical rx
        # text (wire.encode(rx)) is cut into `count` pieces sent in order as index 0..count-1.
        # Index 0 starts over; anything out of order discards the assembly. The last chunk stages.
        if not (1 <= count <= MAX_CHUNKS) or not (0 <= index < count):
            self._chunks = None
            return reasons.BAD_ARGS, {"msg": "chunk index/count out of range"}
        if index == 0:
            self._chunks = []
            self._chunk_count = count
        elif self._chunks is None or index != len(self._chunks) or count != self._chunk_count:
            self._chunks = None
            return reasons.BAD_ARGS, {"msg": "chunk out of order: restart at index 0"}
        size = len(text)
        for c in self._chunks:
            size += len(c)
        if size > MAX_STAGED_TEXT:
            self._chunks = None
            return reasons.BAD_ARGS, {"msg": "staged text longer than %d" % MAX_STAGED_TEXT}
        self._chunks.append(text)
        if index < count - 1:
            return reasons.OK, {"received": index + 1, "count": count}
        whole = "".join(self._chunks)
        self._chunks = None
        try:
            rx = wire.decode(whole)
        except wire.WireError as e:
            return reasons.BAD_ARGS, {"msg": "assembled rx: " + e.msg}
        if not isinstance(rx, dict):
            return reasons.BAD_ARGS, {"msg": "assembled rx must be an object"}
        return self.pump.stage(rx)

    # --- log and events ------------------------------------------------------------------------
    def _refused(self, reason, role, cmd, req_id):
        self._record({"kind": "auth_refused", "reason": reason, "role": role, "cmd": cmd,
                      "id": req_id})

    def _record(self, entry):
        # Protocol-side log entry: becomes an event line, a `log` entry and a security-log record.
        # "up_s" (pump uptime, when the pump offers now_s()) timestamps it; the shell adds more.
        try:
            entry["up_s"] = self.pump.now_s()
        except Exception:
            pass
        self._pending.append(entry)
        self._security.append(entry)
        if len(self._pending) > LOG_SIZE:
            self._pending.pop(0)
        if len(self._security) > LOG_SIZE:
            self._security.pop(0)

    def pop_security_log(self):
        # Entries (dicts) the shell must store with a timestamp; each is returned once.
        out = self._security
        self._security = []
        return out

    def _log_reply(self, since, limit):
        # Entries with seq > since, oldest first, limited by count and by the line budget.
        entries = []
        used = 0
        last = since
        more = False
        for seq, entry in self._log:
            if seq <= since:
                continue
            if len(entries) >= limit:
                more = True
                break
            try:
                n = len(wire.encode(entry)) + 16
            except wire.WireError:
                continue
            if used + n > LOG_REPLY_BUDGET:
                more = True
                break
            used += n
            entries.append([seq, entry])
            last = seq
        return {"entries": entries, "last": last, "more": more}

    def event_lines(self, events=None):
        # Pump events (list from pump.pop_events(); None: pop them here) plus the dispatcher's own
        # entries -> "~SEQ DATA" lines. Each event is also kept in the `log` ring. Never raises.
        out = []
        try:
            if events is None:
                try:
                    events = self.pump.pop_events()
                except Exception:
                    events = []
            pending = self._pending
            self._pending = []
            for ev in list(pending) + list(events or []):
                if not isinstance(ev, dict):
                    ev = {"event": ev}
                self._seq = self._seq + 1 if self._seq < wire.MAX_COUNTER else 1
                try:
                    line = wire.event_line(self._seq, ev)
                    if len(line) > wire.MAX_LINE:
                        raise wire.WireError(reasons.LINE_TOO_LONG, "event too long")
                except wire.WireError:
                    ev = {"event": "unencodable"}
                    line = wire.event_line(self._seq, ev)
                self._log.append((self._seq, ev))
                if len(self._log) > LOG_SIZE:
                    self._log.pop(0)
                out.append(line)
        except Exception:
            pass
        return out


_AUTH_MSG = {
    reasons.UNKNOWN_ROLE: "unknown role",
    reasons.NO_KEY: "no key provisioned for this role",
    reasons.BAD_TAG: "tag does not verify",
    reasons.STALE_COUNTER: "counter not greater than the last accepted",
}
