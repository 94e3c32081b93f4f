# Cell voltage sense driver: the cell through a resistive divider on an ADC input
# (docs/hardware.md). Who calls it: pumpfw.hal_rp2 only.

ADC_MAX = 4095


class BatterySense:
    def __init__(self, adc, vref_mv, divider):
        # adc: machine.ADC; vref_mv: the ADC's full scale (3300 on the Pico); divider: the cell
        # voltage over the ADC pin voltage (2 for two equal resistors)
        self.adc = adc
        self.scale = vref_mv * divider

    def mv(self):
        return (self.adc.read_u16() >> 4) * self.scale // ADC_MAX
