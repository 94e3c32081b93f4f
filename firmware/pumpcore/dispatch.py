# Device-side protocol dispatcher: request line -> authenticated command on the Pump facade ->
# exactly one tagged response line; pump events -> tagged "~" event lines. Specification:
# docs/protocol.md (version 2). Commands, roles and arguments come from pumpcore.commands.
#
# Who calls what (the shell, pumpfw):
#   d = Dispatcher(pump, auth, info, persist=save_fn, locked=None or a reason text)
#   out = d.feed(bytes_from_serial, link)   # response lines (str, no LF) for that link only
#   d.advance(elapsed_ms)                   # throttles and the refusal summary run on pump time
#   ev = d.event_lines(pump_events)         # "~" lines for every link (None: the dispatcher
#                                           # calls pump.pop_events())
#   sec = d.pop_security_log()              # entries the shell must store (commands, refusal
#                                           # summaries, counter warnings)
#   if auth.dirty: persist auth.snapshot() with the next flash write
# persist(snapshot) is called synchronously, after a state-changing command's counter is accepted
# and BEFORE the command runs or its response is sent; if it raises, the command is not executed
# and the reply is storage_error.
#
# Refusals are cheap: a refused request changes nothing, writes nothing to flash and produces no
# event line; it is counted in RAM and the counts are summarised in one `refusals` entry at most
# once per SUMMARY_EVERY_MS. A link (a serial port, one emulator connection) that gets
# THROTTLE_AFTER refusals in a row is throttled: for a while every request on it is answered
# `throttled` without being parsed or verified (the wait doubles up to THROTTLE_MAX_MS while the
# refusals go on; one accepted request ends it).
# No exception escapes feed()/handle_line()/event_lines() on any input. Allocation is fine here
# (this is not the control step).

from pumpcore import commands, reasons, wire

CACHE_SIZE = 16          # replay cache: responses of the last 16 accepted authenticated requests
LOG_SIZE = 64            # protocol-side log ring kept in RAM for the `log` command
MAX_STAGED_TEXT = 16384  # chunked staging: at most 16 KiB of rx text in total
LOG_REPLY_BUDGET = 1700  # bytes of log entries per `log` reply (the line must fit MAX_LINE)
MAX_LINKS = 8            # links with their own line assembly and throttle (least recent evicted)
THROTTLE_AFTER = 8       # refusals in a row on one link before it is throttled
THROTTLE_FIRST_MS = 1000
THROTTLE_MAX_MS = 60000
SUMMARY_EVERY_MS = 3600000   # at most one `refusals` entry per hour
_TAIL = 1 + wire.TAG_HEX + 1 + 8   # " TAG CRC" after a reply body

# entries the shell keeps in its security log (pumpfw.storage), apart from the therapy log
SECURITY_KINDS = ("refusals", "counter_high")

# refusals answered without a tag: the request did not authenticate, so nothing may be signed
_UNTAGGED_MSG = {
    reasons.UNKNOWN_ROLE: "unknown role",
    reasons.NO_KEY: "no key provisioned for this role",
    reasons.BAD_TAG: "tag does not verify",
}


class _Link:
    def __init__(self):
        self.splitter = wire.LineSplitter()
        self.streak = 0          # refusals in a row
        self.hold_ms = 0         # throttled for this much longer
        self.next_hold_ms = THROTTLE_FIRST_MS
        self.used = 0


class Dispatcher:
    def __init__(self, pump, auth, info=None, persist=None, locked=None, table=None,
                 stored_log=None):
        # info: {"firmware": str, "device_id": str, "board": str} reported by hello.
        # locked: None, or why the security state cannot be trusted (then only hello is served,
        # unauthenticated, until the pump is re-provisioned). table: the command table
        # (default pumpcore.commands.COMMANDS, read at every request).
        self.pump = pump
        self.auth = auth
        self.info = info or {}
        self.persist = persist
        self.locked = locked
        self.table = table
        # stored_log(seq, skip, limit, budget) -> (entries, last, more): the shell's reader of the
        # event log on flash (pumpfw.storage.Storage.log_page); None: nothing stored (empty pages)
        self.stored_log = stored_log
        self._links = {}
        self._held = False        # some link is throttled (advance() counts its time down)
        self._use = 0
        self._cache = []          # [(req_id, body + " " + tag, response_line)], oldest first
        self._log = []            # [(seq, entry)], oldest first, at most LOG_SIZE
        self._pending = []        # own entries not yet turned into event lines
        self._security = []       # entries not yet popped by the shell for storage
        self._seq = 0             # last event sequence number of this boot
        self._chunks = None       # chunked staging in progress: list of texts received so far
        self._chunk_count = 0
        self._chunk_what = None   # what the assembly is: "rx" or "library"
        self._summary_left_ms = SUMMARY_EVERY_MS
        self._refusals = {}       # reason -> count since the last summary
        self._refused_roles = {}  # claimed role -> count
        self._refused_links = {}  # link -> count
        self.refused_total = 0    # since boot (RAM)

    def lock(self, why):
        self.locked = why

    # --- time ----------------------------------------------------------------------------------
    def advance(self, elapsed_ms):
        # Elapsed pump time: throttles run out, and a summary of the refusals counted since the
        # last one becomes a log entry when SUMMARY_EVERY_MS have passed.
        if elapsed_ms <= 0:
            return
        if self._held:
            held = False
            for k in self._links:
                ln = self._links[k]
                if ln.hold_ms > 0:
                    ln.hold_ms = ln.hold_ms - elapsed_ms if ln.hold_ms > elapsed_ms else 0
                    held = held or ln.hold_ms > 0
            self._held = held
        self._summary_left_ms -= elapsed_ms
        if self._summary_left_ms <= 0:
            self._summary_left_ms = SUMMARY_EVERY_MS
            if self._refusals:
                n = 0
                for r in self._refusals:
                    n += self._refusals[r]
                self._record({"kind": "refusals", "count": n, "reasons": self._refusals,
                              "roles": self._refused_roles, "links": self._refused_links})
                self._refusals = {}
                self._refused_roles = {}
                self._refused_links = {}

    # --- input ---------------------------------------------------------------------------------
    def _link(self, link):
        ln = self._links.get(link)
        if ln is None:
            if len(self._links) >= MAX_LINKS:
                oldest = None
                for k in self._links:
                    if oldest is None or self._links[k].used < self._links[oldest].used:
                        oldest = k
                del self._links[oldest]
            ln = _Link()
            self._links[link] = ln
        self._use += 1
        ln.used = self._use
        return ln

    def feed(self, data, link=0):
        # bytes from one link in arbitrary chunks -> list of response lines (no LF) for that link.
        # Never raises.
        out = []
        try:
            ln = self._link(link)
            items = ln.splitter.feed(data)
        except Exception:
            self._links.pop(link, None)
            return out
        for status, text in items:
            if status == "ok":
                if text.startswith("@"):
                    r = self.handle_line(text, link)
                    if r is not None:
                        out.append(r)
                # anything else (blank lines, REPL chatter) is ignored silently
            elif text.startswith("@"):
                out.append(self._refuse(ln, link, None, status, "line discarded: %s" % status))
        return out

    def handle_line(self, line, link=0):
        # One request line (str, no LF) -> one response line (str, no LF); None only if even the
        # error reply cannot be built (out of memory). Never raises.
        try:
            return self._handle(line, link)
        except Exception as e:
            return self._safe_error(None, reasons.INTERNAL_ERROR,
                                    "dispatcher: %s" % type(e).__name__)

    def _safe_error(self, req_id, reason, msg, extra=None):
        # An untagged error reply.
        try:
            return wire.tagged_line(wire.error_body(req_id, reason, msg, extra), None)
        except Exception:
            try:
                return wire.tagged_line(wire.error_body(req_id, reason, "?"), None)
            except Exception:
                return None

    def _count(self, reason, role, link):
        self.refused_total += 1
        self._refusals[reason] = self._refusals.get(reason, 0) + 1
        who = role if role in wire.ROLES else ("-" if role is None else "?")
        self._refused_roles[who] = self._refused_roles.get(who, 0) + 1
        key = str(link)
        if key not in self._refused_links and len(self._refused_links) >= MAX_LINKS:
            key = "other"           # bounded: connections come and go on the emulator
        self._refused_links[key] = self._refused_links.get(key, 0) + 1

    def _failed(self, ln):
        ln.streak += 1
        if ln.streak >= THROTTLE_AFTER:
            ln.hold_ms = ln.next_hold_ms
            self._held = True
            ln.next_hold_ms = min(ln.next_hold_ms * 2, THROTTLE_MAX_MS)

    def _refuse(self, ln, link, req_id, reason, msg, role=None, extra=None):
        # A refusal of a request that did not authenticate: counted, untagged, nothing else.
        self._count(reason, role, link)
        self._failed(ln)
        return self._safe_error(req_id, reason, msg, extra)

    def _handle(self, line, link):
        ln = self._link(link)
        if ln.hold_ms > 0:
            # throttled: no parsing, no HMAC; the id only when the CRC says it is intact
            rest = wire.check_crc(line) if len(line) <= wire.MAX_LINE else None
            rid = wire.request_id_of(rest) if rest is not None else None
            self._count(reasons.THROTTLED, None, link)
            return self._safe_error(rid, reasons.THROTTLED,
                                    "too many refused requests on this link: retry later",
                                    {"retry_ms": ln.hold_ms})
        try:
            req_id, role, counter, cmd, args, tag, body = wire.parse_request(line)
        except wire.WireError as e:
            return self._refuse(ln, link, e.req_id, e.reason, e.msg)
        signed = body + " " + (tag or "-")
        same_id = None
        for entry in self._cache:
            if entry[0] == req_id:
                if entry[1] == signed:
                    return entry[2]   # resend of an accepted request: same reply, not re-executed
                same_id = entry
        if self.locked is not None and (cmd != commands.HELLO or role is not None):
            return self._refuse(ln, link, req_id, reasons.LOCKED,
                                "security state lost (%s): re-provision the pump" % self.locked,
                                role)
        if role is None:
            if cmd != commands.HELLO:
                return self._refuse(ln, link, req_id, reasons.AUTH_REQUIRED,
                                    "%s needs a role, counter and tag" % cmd)
            return self._hello(ln, link, req_id, args, body)
        code = self.auth.verify(role, body, tag)
        if code != reasons.OK:
            return self._refuse(ln, link, req_id, code, _UNTAGGED_MSG.get(code, code), role)
        # From here the request is authentic: every reply is tagged with its role's key.
        if same_id is not None:
            return self._deny(ln, link, role, body, req_id, reasons.ID_REUSED,
                              "request id recently used for a different request")
        code = self.auth.fresh(role, counter)
        if code != reasons.OK:
            last = wire.format_counter(self.auth.last_counter(role))
            msg = "counter not greater than the last accepted" if code == reasons.STALE_COUNTER \
                else "counter too far above the last accepted"
            return self._deny(ln, link, role, body, req_id, code, msg, {"last": last})
        row = commands.find(cmd, self.table)
        if row is None:
            return self._deny(ln, link, role, body, req_id, reasons.UNKNOWN_COMMAND,
                              "unknown command %s" % cmd)
        if cmd != commands.HELLO and role not in row.roles:
            return self._deny(ln, link, role, body, req_id, reasons.ROLE_FORBIDDEN,
                              "role %s may not use %s" % (role, cmd))
        bad = commands.check_args(row, args)
        if bad is not None:
            return self._deny(ln, link, role, body, req_id, bad[0], bad[1], bad[2])
        if self.auth.accept(role, counter):
            self._record({"kind": "counter_high", "role": role,
                          "counter": wire.format_counter(counter)})
        if row.changes and self.persist is not None:
            try:
                self.persist(self.auth.snapshot())
            except Exception:
                resp = self._reply(role, body, req_id, reasons.STORAGE_ERROR,
                                   {"msg": "counter not persisted; command not executed"})
                self._remember(req_id, signed, resp)
                self._failed(ln)
                return resp
        try:
            code, data = self._execute(row, args)
        except Exception as e:
            code, data = reasons.INTERNAL_ERROR, {"msg": "pump: %s" % type(e).__name__}
        if row.changes:
            self._record({"kind": "command", "role": role, "cmd": cmd, "id": req_id,
                          "result": code})
        if code == reasons.OK:
            ln.streak = 0
            ln.next_hold_ms = THROTTLE_FIRST_MS
        else:
            self._failed(ln)
        resp = self._reply(role, body, req_id, code, data)
        self._remember(req_id, signed, resp)
        return resp

    def _deny(self, ln, link, role, body, req_id, reason, msg, extra=None):
        # A refusal of an authentic request: counted like any refusal, but tagged.
        self._count(reason, role, link)
        self._failed(ln)
        data = {"msg": msg}
        if extra:
            for k in extra:
                data[k] = extra[k]
        return self._reply(role, body, req_id, reason, data)

    def _hello(self, ln, link, req_id, args, body):
        # Unauthenticated hello. With {"nonce": 32 lowercase hex, "role": R} the reply is tagged
        # with R's key (bound to this request, so to the nonce): the host's one way to learn the
        # counters, key ids and event position from the pump itself. A locked pump answers
        # untagged (its keys are not trusted).
        nonce = args.get("nonce")
        role = args.get("role")
        if args and (set(args) != {"nonce", "role"} or not wire.valid_tag(nonce)
                     or role not in wire.ROLES):
            return self._refuse(ln, link, req_id, reasons.BAD_ARGS,
                                "hello takes no arguments or nonce (32 lowercase hex) and role")
        if role is not None and self.locked is None and not self.auth.has_key(role):
            return self._refuse(ln, link, req_id, reasons.NO_KEY,
                                _UNTAGGED_MSG[reasons.NO_KEY], role)
        code, data = self._cmd_hello(args)
        if self.locked is not None:
            role = None
        return self._reply(role, body, req_id, code, data)

    def _reply(self, role, req_body, req_id, code, data):
        # The reply line: tagged with role's key over the request and the reply (untagged when
        # role is None). Long lists are paged to fit one line.
        if not isinstance(data, dict):
            data = {} if data is None else {"value": data}
        try:
            rbody = self._body(req_id, code, data)
            if len(rbody) + _TAIL > wire.MAX_LINE:
                # long lists are paged: "changes" (review; more via review changes_offset) and
                # "problems" (refusals); "<key>_total" tells the host how many there are
                key = "changes" if code == reasons.OK else "problems"
                rbody = self._trimmed(req_id, code, data, key)
        except wire.WireError as e:
            code = reasons.INTERNAL_ERROR
            rbody = wire.error_body(req_id, code, "result not encodable: %s" % e.msg)
        if rbody is None or len(rbody) + _TAIL > wire.MAX_LINE:
            code = reasons.INTERNAL_ERROR
            rbody = wire.error_body(req_id, code, "result too long for one line")
        tag = self.auth.reply_tag(role, req_body, rbody) if role is not None else None
        return wire.tagged_line(rbody, tag)

    def _body(self, req_id, code, data):
        if code == reasons.OK:
            return wire.ok_body(req_id, data)
        msg = data.get("msg")
        extra = {}
        for k in data:
            if k != "msg":
                extra[k] = data[k]
        return wire.error_body(req_id, code, msg if isinstance(msg, str) else code, extra)

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
        budget = wire.MAX_LINE - _TAIL - len(self._body(req_id, code, d)) - 2
        keep = []
        for item in items:
            n = len(wire.encode(item)) + 1
            if n > budget:
                break
            budget -= n
            keep.append(item)
        d[key] = keep
        return self._body(req_id, code, d)

    def _remember(self, req_id, signed, resp):
        self._cache.append((req_id, signed, resp))
        if len(self._cache) > CACHE_SIZE:
            self._cache.pop(0)

    # --- commands ------------------------------------------------------------------------------
    def _execute(self, row, args):
        # -> (code, data). A facade method returns (code, data), or a query (status) its data.
        if row.method is None:
            return getattr(self, "_cmd_" + row.name)(args)
        res = getattr(self.pump, row.method)(*commands.call_args(row, args))
        if isinstance(res, tuple) and len(res) == 2 and isinstance(res[0], str):
            return res
        return reasons.OK, res

    def _cmd_hello(self, args):
        return reasons.OK, {
            "protocol": wire.PROTOCOL_VERSION, "max_line": wire.MAX_LINE,
            "firmware": self.info.get("firmware", "?"),
            "device_id": self.info.get("device_id", "?"),
            "board": self.info.get("board", "?"),
            "locked": self.locked,
            "counters": self.auth.counters(), "kids": self.auth.kids(),
            "boot": self.auth.boot, "event_seq": self._seq}

    def _cmd_log(self, args):
        return reasons.OK, self._log_reply(args.get("since", 0),
                                           args.get("limit", commands.MAX_LOG_ENTRIES))

    def _cmd_log_stored(self, args):
        if self.stored_log is None:
            return reasons.OK, {"entries": [], "last": [0, 0], "more": False}
        entries, last, more = self.stored_log(args.get("seq", 0), args.get("skip", 0),
                                              args.get("limit", commands.MAX_LOG_ENTRIES),
                                              LOG_REPLY_BUDGET)
        return reasons.OK, {"entries": entries, "last": last, "more": more}

    def _cmd_review(self, args):
        code, data = self.pump.review()
        off = args.get("changes_offset", 0)
        if code == reasons.OK and isinstance(data, dict) and off \
                and isinstance(data.get("changes"), list):
            page = {}
            for k in data:
                page[k] = data[k]
            page["changes"] = data["changes"][off:]
            page["changes_offset"] = off
            return code, page
        return code, data

    def _cmd_stage_chunk(self, args):
        # Chunked staging for programs whose `stage` line would exceed MAX_LINE: the canonical rx
        # text (wire.encode(rx)) is cut into `count` pieces sent in order as index 0..count-1.
        # Index 0 starts over; anything out of order discards the assembly. The last chunk stages.
        return self._chunk(args, "rx", self.pump.stage)

    def _cmd_library_chunk(self, args):
        # The same for a drug library record too long for one `library_stage` line.
        return self._chunk(args, "library", self.pump.library_stage)

    def _chunk(self, args, what, stage):
        index = args["index"]
        count = args["count"]
        text = args["text"]
        if not (0 <= index < count):
            self._chunks = None
            return reasons.BAD_ARGS, {"msg": "chunk index/count out of range"}
        if index == 0:
            self._chunks = []
            self._chunk_count = count
            self._chunk_what = what
        elif self._chunks is None or index != len(self._chunks) or count != self._chunk_count \
                or what != self._chunk_what:
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
            obj = wire.decode(whole)
        except wire.WireError as e:
            return reasons.BAD_ARGS, {"msg": "assembled %s: %s" % (what, e.msg)}
        if not isinstance(obj, dict):
            return reasons.BAD_ARGS, {"msg": "assembled %s must be an object" % what}
        return stage(obj)

    # --- log and events ------------------------------------------------------------------------
    def _record(self, entry):
        # Protocol-side log entry: becomes an event line, a `log` entry and a stored record.
        # "up_s" (pump uptime, when the pump offers now_s()) timestamps it; the shell adds more.
        try:
            entry["up_s"] = self.pump.now_s()
            # the wall clock too (-1 when never set), as the pump's own entries carry it, so a
            # log filtered by time keeps the command rows
            entry["day"], entry["ms"] = self.pump.wall_now()
        except Exception:
            pass
        self._pending.append(entry)
        self._security.append(entry)
        if len(self._pending) > LOG_SIZE:
            self._pending.pop(0)
        if len(self._security) > LOG_SIZE:
            self._security.pop(0)

    def has_pending(self):
        return len(self._pending) > 0

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
        # entries -> "~BOOT SEQ DATA TAGS" lines for every link. Each event is also kept in the
        # `log` ring. Never raises.
        out = []
        try:
            if events is None:
                try:
                    events = self.pump.pop_events()
                except Exception:
                    events = []
            pending = self._pending
            self._pending = []
            boot = self.auth.boot
            for ev in list(pending) + list(events or []):
                if not isinstance(ev, dict):
                    ev = {"event": ev}
                if self._seq < wire.MAX_SEQ:
                    self._seq += 1
                try:
                    body = wire.event_body(boot, self._seq, ev)
                    if len(body) + 4 * (wire.TAG_HEX + 1) + 9 > wire.MAX_LINE:
                        raise wire.WireError(reasons.LINE_TOO_LONG, "event too long")
                except wire.WireError:
                    ev = {"event": "unencodable"}
                    body = wire.event_body(boot, self._seq, ev)
                self._log.append((self._seq, ev))
                if len(self._log) > LOG_SIZE:
                    self._log.pop(0)
                tags = self.auth.event_tags(body) if self.locked is None \
                    else [None] * len(wire.ROLES)
                out.append(wire.event_line(body, tags))
        except Exception:
            pass
        return out
