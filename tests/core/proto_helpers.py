# Shared helpers for the protocol core tests (test_wire, test_auth, test_dispatch_*): a fake pump
# with behaviour (records calls, counts deliveries) and request builders. Runs under MicroPython.

from pumpcore import auth, reasons, wire

KEYS = {     # the role keys a host holds (the docs' public example keys)
    "clinician": bytes(range(32)),
    "patient": bytes(range(32, 64)),
    "readonly": bytes(range(64, 96)),
}
KIDS = {"clinician": "1111111111111111", "patient": "2222222222222222",
        "readonly": "3333333333333333"}
WIRE = {}   # the keys every tag is made with (pumpcore.auth.wire_key)
for _r in KEYS:
    WIRE[_r] = auth.wire_key(KEYS[_r], KIDS[_r])
INFO = {"firmware": "0.1.0-test", "device_id": "TEST0001", "board": "fake"}


class FakePump:
    # Implements the Pump facade's command methods with tiny, checkable behaviour.
    def __init__(self):
        self.calls = []
        self.boluses = 0
        self.patient_boluses = 0
        self.state = "stopped"
        self.staged = None
        self.committed = None
        self.events = []
        self.clock = None

    def _call(self, name, *args):
        self.calls.append((name,) + args)

    def status(self):
        self._call("status")
        return {"state": self.state, "boluses": self.boluses,
                "patient_boluses": self.patient_boluses}

    def stage(self, rx):
        self._call("stage", rx)
        if "reservoir" not in rx:
            return reasons.INVALID, {"problems": [[reasons.INVALID, "reservoir"]]}
        self.staged = rx
        return reasons.OK, {"checksum": "c%d" % len(wire.encode(rx)), "daily_ng": {"x": 1}}

    def review(self):
        self._call("review")
        if self.staged is None:
            return reasons.NOTHING_STAGED, None
        return reasons.OK, {"checksum": "c%d" % len(wire.encode(self.staged))}

    def commit(self, checksum, confirm_soft=False, bridge=False, continuing=False,
               refill_nl=None):
        self._call("commit", checksum, confirm_soft, bridge)
        if self.staged is None:
            return reasons.NOTHING_STAGED, None
        if checksum != "c%d" % len(wire.encode(self.staged)):
            return reasons.CHECKSUM_MISMATCH, None
        self.committed = self.staged
        return reasons.OK, {"checksum": checksum}

    def start(self):
        self._call("start")
        if self.committed is None:
            return reasons.NO_PROGRAM, None
        self.state = "running"
        self.events.append({"kind": "state", "state": "running"})
        return reasons.OK, None

    def stop(self):
        self._call("stop")
        self.state = "stopped"
        return reasons.OK, None

    def suspend(self, minutes):
        self._call("suspend", minutes)
        if minutes > 1000:     # a facade rule narrower than the command table's bounds
            return reasons.BAD_VALUE, {"msg": "minutes must be <= 1000"}
        self.state = "suspended"
        return reasons.OK, None

    def resume(self):
        self._call("resume")
        self.state = "running"
        return reasons.OK, None

    def prime(self, volume_nl):
        self._call("prime", volume_nl)
        return reasons.OK, {"volume_nl": volume_nl}

    def refill(self, fill_nl, new_admixture=False):
        self._call("refill", fill_nl, new_admixture)
        return reasons.OK, {"fill_nl": fill_nl}

    def clinician_bolus(self, volume_nl, duration_ms):
        self._call("clinician_bolus", volume_nl, duration_ms)
        if volume_nl <= 0 or duration_ms <= 0:
            return reasons.BAD_VALUE, None
        self.boluses += 1
        self.events.append({"kind": "bolus_started", "volume_nl": volume_nl})
        return reasons.OK, {"volume_nl": volume_nl}

    def patient_bolus(self):
        self._call("patient_bolus")
        if self.state != "running":
            return reasons.NOT_RUNNING, None
        self.patient_boluses += 1
        return reasons.OK, None

    def ack(self, alarm_code=None):
        self._call("ack", alarm_code)
        return reasons.OK, None

    def silence(self):
        self._call("silence")
        return reasons.OK, {"until_s": 120}

    def show_program(self):
        self._call("show_program")
        if self.committed is None:
            return reasons.NO_PROGRAM, {}
        return reasons.OK, {"rx": self.committed}

    def library_show(self):
        self._call("library_show")
        return reasons.OK, {"name": "fake", "version": "1", "checksum": "0" * 16}

    def library_stage(self, record):
        self._call("library_stage", record)
        self.staged_library = record
        return reasons.OK, {"checksum": "l%d" % len(wire.encode(record))}

    def library_commit(self, checksum, confirm_loosening=False):
        self._call("library_commit", checksum, confirm_loosening)
        return reasons.OK, {"checksum": checksum}

    def set_clock(self, day, ms_of_day):
        self._call("set_clock", day, ms_of_day)
        self.clock = (day, ms_of_day)
        return reasons.OK, None

    def pop_events(self):
        out = self.events
        self.events = []
        return out


class Signer:
    # Host-side request builder for tests: per-role counters, fresh ids, wire keys.
    def __init__(self, keys=None):
        self.keys = keys if keys is not None else WIRE
        self.counters = {"clinician": 0, "patient": 0, "readonly": 0}
        self.n = 0
        self.bodies = {}    # request id -> (role, body) of the lines made, to verify replies

    def line(self, cmd, args=None, role="clinician", req_id=None, counter=None, key=None):
        self.n += 1
        if req_id is None:
            req_id = "r%d" % self.n
        if role is None:
            body = wire.request_body(req_id, None, None, cmd, args)
            self.bodies[req_id] = (None, body)
            return wire.request_line(body, None)
        if counter is None:
            self.counters[role] += 1
            counter = self.counters[role]
        body = wire.request_body(req_id, role, counter, cmd, args)
        self.bodies[req_id] = (role, body)
        return wire.request_line(body, auth.tag(key if key is not None else self.keys[role], body))


def make(persist=None, locked=None):
    from pumpcore.dispatch import Dispatcher
    pump = FakePump()
    a = auth.Auth(WIRE, KIDS)
    return Dispatcher(pump, a, INFO, persist, locked), pump, a


def reply(line):
    # -> (kind, id, data, reason, body, tag) of a response line, asserting the CRC.
    r = wire.parse_reply(line)
    assert r is not None, line
    return r


def verified(line, signer, role=None):
    # The reply's data after checking its tag against the request it answers (the Signer's
    # body for that id) with the request role's wire key. role: for a hello, the role it named.
    kind, rid, data, reason, body, tag = reply(line)
    req_role, req_body = signer.bodies[rid]
    r = role or req_role
    assert tag is not None, "untagged reply: " + line
    assert tag == auth.tag(WIRE[r], auth.reply_input(req_body, body)), "tag does not verify"
    return kind, data, reason


def expect_error(line, reason, tagged=None):
    # tagged: None = either; True/False = the reply must (not) carry a tag
    kind, _, data, got, _, tag = reply(line)
    assert kind == "!" and got == reason, "expected %s, got %s" % (reason, line)
    if tagged is not None:
        assert (tag is not None) == tagged, line
    return data


def expect_ok(line):
    kind, _, data, _, _, _ = reply(line)
    assert kind == "=", line
    return data
