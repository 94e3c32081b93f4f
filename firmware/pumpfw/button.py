# The patient's bolus button: a push button to GND on an input with pull-up (docs/hardware.md).
# Who calls it: pumpfw.hal_rp2 only.
#
# A press is latched by the pin interrupt and read once. The button is also a pollable stream
# (io.IOBase with ioctl): registered with select.poll next to the host link, a press ends the
# main loop's sleep at once instead of at the next wake-up.

import io
import time

DEBOUNCE_MS = 50
_MP_STREAM_POLL = 3
_POLLIN = 1


class Button(io.IOBase):
    def __init__(self, pin):
        # pin: machine.Pin input with pull-up; pressed = low
        self.pin = pin
        self._latched = False
        self._last = time.ticks_add(time.ticks_ms(), -DEBOUNCE_MS)
        pin.irq(trigger=pin.IRQ_FALLING, handler=self._edge)

    def _edge(self, pin):
        now = time.ticks_ms()
        if time.ticks_diff(now, self._last) >= DEBOUNCE_MS:   # contact bounce is one press
            self._latched = True
        self._last = now

    def pressed(self):
        p = self._latched
        self._latched = False
        return p

    def pending(self):
        return self._latched

    def ioctl(self, req, arg):
        if req == _MP_STREAM_POLL:
            return arg & _POLLIN if self._latched else 0
        return 0
