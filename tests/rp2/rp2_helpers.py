"""Helpers for tests/rp2 (imported by the test modules; pytest puts this folder on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pumphil.rp2.target import Rp2Board
from pumphost.deploy import Board, wait_for_hello

ROOT = Path(__file__).resolve().parents[2]
ITPUMP = [sys.executable, "-m", "pumphost.cli"]


def itpump(*args: str, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (as a user runs it)."""
    return subprocess.run([*ITPUMP, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def on_board(board: Rp2Board, code: str) -> str:
    """Run code in the board's raw REPL (the application is interrupted, its watchdog fed by the
    session) and return what it printed; the board is then reset (machine.reset) and this waits
    until the pump answers hello again."""
    port = board.open_pty()
    b = Board(port, timeout_s=20.0)
    try:
        b.enter()
        return b.exec(code).decode()
    finally:
        b.reset()
        wait_for_hello(board.serial_url, 90.0)


def board_failed(board: Rp2Board, what: str) -> str:
    return f"{what}\n--- rp2 console (tail) ---\n{board.console()[-3000:]}"


