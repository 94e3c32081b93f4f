# Outlet pressure sensor driver: a ratiometric gauge sensor on an ADC input (docs/hardware.md).
# Who calls it: pumpfw.hal_rp2 only.
#
# The RP2040's ADC has 12 bits; MicroPython's read_u16() scales them to 16 (raw << 4 | raw >> 8),
# so raw = read_u16() >> 4 exactly. Scaling the 12-bit value keeps every product below 2**30: a
# small int on the Pico, no allocation per sample (65535 * 20000 would be a big int).

import time

ADC_MAX = 4095


class PressureSensor:
    def __init__(self, adc, full_scale_pa, offset_pa):
        # adc: machine.ADC; raw 0 reads offset_pa, raw ADC_MAX reads offset_pa + full_scale_pa
        self.adc = adc
        self.span = full_scale_pa
        self.offset = offset_pa

    def raw(self):
        return self.adc.read_u16() >> 4

    def read_pa(self):
        return self.offset + (self.adc.read_u16() >> 4) * self.span // ADC_MAX

    def read_into(self, buf, n, period_ms, start=0):
        """buf[start:start + n] = n samples in Pa, period_ms apart, the first at once; returns
        one period after the last, so back-to-back captures stay on one 25-Hz grid (the
        emulator's board does the same)."""
        for i in range(n):
            buf[start + i] = self.offset + (self.adc.read_u16() >> 4) * self.span // ADC_MAX
            time.sleep_ms(period_ms)
