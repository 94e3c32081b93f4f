# Alarm indicators: red and yellow LEDs and a piezo buzzer on PWM (docs/hardware.md).
# Who calls it: pumpfw.hal_rp2 only.

HIGH_HZ = 2000
OTHER_HZ = 1000
DUTY = 20000        # of 65535: a piezo is loudest near 30 %


class Indicators:
    def __init__(self, red, yellow, buzzer):
        # red, yellow: machine.Pin outputs (LED on when high); buzzer: machine.PWM
        self.red = red
        self.yellow = yellow
        self.buzzer = buzzer
        self.show(None)

    def show(self, pattern):
        """Pattern "high": red and a 2-kHz tone; "medium"/"low": yellow and a 1-kHz tone;
        None: all off. The tone cadence (bursts) is the main loop's wake-ups, not this driver's."""
        self.red.value(1 if pattern == "high" else 0)
        self.yellow.value(1 if pattern == "medium" or pattern == "low" else 0)
        if pattern:
            self.buzzer.freq(HIGH_HZ if pattern == "high" else OTHER_HZ)
            self.buzzer.duty_u16(DUTY)
        else:
            self.buzzer.duty_u16(0)
