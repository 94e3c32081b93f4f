# pumpcore.commands: the one command table, and that everything built from it agrees with it.
# CPython + MicroPython.

from library_helpers import core_library
from pumpcore import commands, reasons, wire
from pumpcore import statemachine as SM
from pumpcore.dispatch import Dispatcher
from pumpcore.pump import Pump


def test_names_are_unique_wire_names_and_roles_are_known():
    names = commands.names()
    assert len(set(names)) == len(names)
    for c in commands.COMMANDS:
        assert wire.valid_cmd(c.name), c.name
        for r in c.roles:
            assert r in wire.ROLES
        assert c.help
        for a in c.args:
            assert a.kind in (commands.INT, commands.BOOL, commands.STR, commands.STR_OR_NULL,
                              commands.INT_OR_NULL, commands.OBJ)
            assert a.required or a.kind in (commands.BOOL, commands.STR_OR_NULL,
                                            commands.INT_OR_NULL) \
                or a.default is not None or c.name == commands.HELLO, (c.name, a.name)
            if a.kind == commands.INT:
                assert a.lo is not None and a.hi is not None and a.lo <= a.hi
                assert a.scale >= 1 and (a.scale == 1) == (a.shown == a.name), a.name
    assert commands.find("bolus") is None          # one name per command
    assert commands.find(commands.CLINICIAN_BOLUS).method == "clinician_bolus"


def test_every_row_is_served_by_the_facade_or_the_dispatcher():
    pump = Pump(library=core_library())
    for c in commands.COMMANDS:
        if c.method is None:
            assert hasattr(Dispatcher, "_cmd_" + c.name), c.name
        else:
            assert callable(getattr(pump, c.method)), c.method


def test_state_machine_commands_are_table_rows_that_change_state():
    for event in SM.COMMANDS:
        c = commands.find(event)
        assert c is not None and c.changes, event
    for state, event, nxt, guard in SM.TABLE:
        assert event in SM.COMMANDS or event in SM.INTERNAL


def test_check_args_names_the_argument():
    c = commands.find(commands.CLINICIAN_BOLUS)
    assert commands.check_args(c, {"volume_nl": 1000, "duration_ms": 60000}) is None
    assert commands.check_args(c, {"volume_nl": 1000}) == (
        reasons.BAD_ARGS, "missing argument duration_ms", {"arg": "duration_ms"})
    assert commands.check_args(c, {"volume_nl": 1000, "duration_ms": 60000, "x": 1}) == (
        reasons.BAD_ARGS, "unknown argument x", {"arg": "x"})
    assert commands.check_args(c, {"volume_nl": True, "duration_ms": 60000})[0] == \
        reasons.BAD_ARGS
    assert commands.check_args(c, {"volume_nl": 0, "duration_ms": 60000}) == (
        reasons.BAD_VALUE, "volume_nl must be 1..%d" % commands.CLINICIAN_BOLUS_MAX_NL,
        {"arg": "volume_nl", "value": 0, "min": 1, "max": commands.CLINICIAN_BOLUS_MAX_NL})
    ack = commands.find(commands.ACK)
    assert commands.check_args(ack, {}) is None and commands.check_args(ack, {"alarm": None}) \
        is None
    assert commands.check_args(ack, {"alarm": "x" * 33})[0] == reasons.BAD_VALUE


def test_call_args_fill_defaults_in_table_order():
    c = commands.find(commands.COMMIT)
    assert commands.call_args(c, {"checksum": "abc"}) == ["abc", False, False, False, None]
    assert commands.call_args(c, {"bridge": True, "checksum": "abc"}) == [
        "abc", False, True, False, None]
    assert commands.call_args(commands.find(commands.ACK), {}) == [None]
