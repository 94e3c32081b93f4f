# Shared helpers for helper B's core tests (clock, delivery, bolus, catheter, ledger, reservoir).
# Runs under CPython and MicroPython: no pytest, no random module (a tiny LCG instead).
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"


def run_no_alloc(fn, arg):
    """Call fn(arg) with the MicroPython heap locked: any allocation raises MemoryError and fails
    the test. On CPython it just runs fn(arg). Returns fn's result (must be a small int or None)."""
    if not IS_MICROPYTHON:
        return fn(arg)
    import gc

    import micropython

    gc.collect()
    micropython.heap_lock()
    try:
        res = fn(arg)
    finally:
        micropython.heap_unlock()
    return res


class Lcg:
    """Deterministic pseudo-random ints (same sequence on both runtimes)."""

    def __init__(self, seed=12345):
        self.s = seed & 0x7FFFFFFF

    def _bits15(self):
        # 31-bit LCG (glibc constants); the top 15 bits are the output.
        self.s = (1103515245 * self.s + 12345) & 0x7FFFFFFF
        return self.s >> 16

    def below(self, n):
        """An int in [0, n), n < 2**30."""
        if n <= 1 << 15:
            return self._bits15() % n
        return ((self._bits15() << 15) | self._bits15()) % n

    def choice(self, seq):
        return seq[self.below(len(seq))]
