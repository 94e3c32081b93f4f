# Pump motor driver: the step and enable outputs to the micro-pump's driver and the mechanism's
# feedback input (docs/hardware.md). Who calls it: pumpfw.hal_rp2 only.

import time


class Motor:
    def __init__(self, step, enable, feedback, timeout_ms):
        # step, enable: machine.Pin outputs, active high. feedback: machine.Pin input that goes
        # high when the mechanism completes a stroke. timeout_ms: how long a stroke may take.
        self.step = step
        self.enable = enable
        self.feedback = feedback
        self.timeout_ms = timeout_ms
        self.off()

    def stroke(self):
        """One stroke: True when the feedback pulse came within timeout_ms. The driver is
        de-energised on every way out, also when an exception (Ctrl-C) interrupts the wait."""
        fb = self.feedback
        self.enable.value(1)
        self.step.value(1)
        t0 = time.ticks_ms()
        seen = False
        try:
            while time.ticks_diff(time.ticks_ms(), t0) < self.timeout_ms:
                if fb.value():
                    seen = True
                    break
        finally:
            self.off()
        return seen

    def off(self):
        self.step.value(0)
        self.enable.value(0)

    def feedback_idle_ok(self):
        """With the driver off the feedback input must read low: a line stuck high would count
        strokes that never happened."""
        return not self.feedback.value()
