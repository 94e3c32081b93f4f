"""The emulated board never hangs a test: a stalled or dead Node runner is a clear failure with
the board's console, and closing the board ends the runner."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest
from pumphil.rp2.target import Rp2Board, Rp2Error


def test_a_stalled_runner_fails_with_the_console_and_is_killed_on_close() -> None:
    board = Rp2Board(None).start()
    pid = board.runner_pid
    assert pid is not None
    try:
        board.wait_usb()
        with socket.create_connection(("127.0.0.1", board.port)) as s:
            s.sendall(b"\r\n")                      # the REPL answers with its prompt
            board.wait_console(">>> ", timeout_s=30)
        os.kill(pid, signal.SIGSTOP)               # Node hangs
        t0 = time.monotonic()
        with pytest.raises(Rp2Error) as e:
            board.advance(1_000, timeout_s=2.0)
        assert time.monotonic() - t0 < 10
        assert "timed out after 2 s" in str(e.value)
        assert ">>> " in str(e.value).split("--- console")[1]   # the console comes with it
    finally:
        board.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)                             # gone (killed, reaped)


def test_a_dead_runner_is_reported_at_once() -> None:
    with Rp2Board(None) as board:
        board.wait_usb()
        pid = board.runner_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(Rp2Error) as e:
            board.advance(1_000, timeout_s=30.0)
        assert time.monotonic() - t0 < 5
        assert "exited" in str(e.value) or "not running" in str(e.value)
