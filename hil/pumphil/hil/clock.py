"""The ``clock`` fixture: rig time for tests, the same code on every target.

All times are *rig* milliseconds: on the emulator virtual ms (``advance`` runs the firmware
through them at once), on a bench wall ms x ``time_scale`` (``advance`` sleeps; 1 on a real
bench). A test written with this clock takes the same rig time everywhere; what differs is the
wall time it costs, which is why long tests carry ``@pytest.mark.hil_duration(minutes)``.
"""

from __future__ import annotations

from collections.abc import Callable

from .target import Target


class RigClock:
    def __init__(self, target: Target) -> None:
        self.target = target

    def now_ms(self) -> int:
        return self.target.now_ms()

    def advance(self, ms: int) -> None:
        """Let ms of rig time pass."""
        self.target.advance(int(ms))

    def advance_to(self, t_ms: int) -> None:
        """Until rig time t_ms (no-op when it has passed): sampling on a fixed grid, so the time
        the instrument queries take on a bench does not accumulate as drift."""
        left = int(t_ms) - self.now_ms()
        if left > 0:
            self.advance(left)

    def wait_for(self, condition: Callable[[], bool], within_ms: int, step_ms: int) -> int | None:
        """Advance in steps of step_ms until condition() is true; return the rig ms it took
        (a multiple of step_ms on the emulator, so step_ms is the measurement's resolution), or
        None when within_ms passed without it."""
        t0 = self.now_ms()
        while True:
            if condition():
                return self.now_ms() - t0
            if self.now_ms() - t0 >= within_ms:
                return None
            self.advance_to(self.now_ms() + step_ms)
