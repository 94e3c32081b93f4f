"""Helpers for tests/rp2 (imported by the test modules; pytest puts this folder on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pumphil.rp2.target import Rp2Board
from pumphost.deploy import Board, wait_for_hello

ROOT = Path(__file__).resolve().parents[2]
ITPUMP = [sys.executable, "-m", "pumphost.cli"]


def itpump(*args: str, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (as a user runs it)."""
    return subprocess.run([*ITPUMP, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@contextmanager
def repl(board: Rp2Board, wait_hello: bool = True) -> Iterator[Board]:
    """The board's raw REPL through mpremote (the application is interrupted, its watchdog fed
    by the session); afterwards the board is reset (machine.reset) and, with wait_hello, this
    waits until the pump answers hello again."""
    b = Board(board.open_pty(), timeout_s=20.0)
    try:
        b.enter()
        yield b
    finally:
        b.reset()
        if wait_hello:
            wait_for_hello(board.serial_url, 120.0)


def board_failed(board: Rp2Board, what: str) -> str:
    return f"{what}\n--- rp2 console (tail) ---\n{board.console()[-3000:]}"


