# The Raspberry Pi Pico HAL (MicroPython rp2 port): pumpfw.hal's contract, composed of the small
# drivers in pumpfw, each given its pins or bus here. The wiring is docs/hardware.md; the pin
# numbers and sensor constants are pumpfw.board's. Only pumpfw.app and main.py use this object.

import select
import time

import machine

from pumpfw import board
from pumpfw.battery import BatterySense
from pumpfw.button import Button
from pumpfw.flashfs import FlashFs
from pumpfw.indicators import Indicators
from pumpfw.link import UartLink, UsbLink
from pumpfw.motor import Motor
from pumpfw.pressure import ADC_MAX, PressureSensor
from pumpfw.resetcause import reset_cause

SENSOR_RAIL_MARGIN = 6      # raw counts at either rail that mean a disconnected or shorted sensor


class PicoHal:
    def __init__(self, use_uart=False):
        Pin = machine.Pin
        self._reset_cause = reset_cause()        # before this boot arms its watchdog
        self.fs = FlashFs()
        self.motor = Motor(Pin(board.PIN_MOTOR_STEP, Pin.OUT, value=0),
                           Pin(board.PIN_MOTOR_ENABLE, Pin.OUT, value=0),
                           Pin(board.PIN_MOTOR_FEEDBACK, Pin.IN, Pin.PULL_DOWN),
                           board.STROKE_TIMEOUT_MS)
        self.pressure = PressureSensor(machine.ADC(Pin(board.PIN_PRESSURE_ADC)),
                                       board.PRESSURE_FULL_SCALE_PA, board.PRESSURE_OFFSET_PA)
        self.battery = BatterySense(machine.ADC(Pin(board.PIN_BATTERY_ADC)), board.ADC_VREF_MV,
                                    board.BATTERY_DIVIDER)
        self.indicators = Indicators(Pin(board.PIN_LED_RED, Pin.OUT, value=0),
                                     Pin(board.PIN_LED_YELLOW, Pin.OUT, value=0),
                                     machine.PWM(Pin(board.PIN_BUZZER)))
        self.button = Button(Pin(board.PIN_BUTTON, Pin.IN, Pin.PULL_UP))
        if use_uart:
            self.link = UartLink(machine.UART(0, baudrate=115200, tx=Pin(board.PIN_UART_TX),
                                              rx=Pin(board.PIN_UART_RX), rxbuf=4096))
        else:
            self.link = UsbLink()
        # the main loop sleeps until host input, a button press or its timeout
        self._sleep = select.poll()
        self._sleep.register(self.link.pollable(), select.POLLIN)
        self._sleep.register(self.button, select.POLLIN)
        self.wdt = machine.WDT(timeout=board.WDT_TIMEOUT_MS)

    ticks_ms = staticmethod(time.ticks_ms)
    ticks_diff = staticmethod(time.ticks_diff)

    def wait(self, ms):
        if ms > 0 and not self.button.pending():
            self._sleep.ipoll(ms)     # WFE inside; ipoll allocates no result list

    # One link (0): USB-CDC, or UART0 with use_uart. The Pico's USB-CDC is one serial port owned by
    # one host program at a time; several host programs share it through a host-side multiplexer
    # (docs/protocol.md, "Several hosts").
    def serial_read(self):
        data = self.link.read()
        return None if data is None else (0, data)

    def serial_write(self, data, link=None):
        self.link.write(data)

    def button_pressed(self):
        return self.button.pressed()

    def motor_stroke(self):
        return self.motor.stroke()

    def motor_off(self):
        self.motor.off()

    def read_pressure(self, buf, n, period_ms, start=0):
        self.pressure.read_into(buf, n, period_ms, start)

    def battery_mv(self):
        return self.battery.mv()

    def indicate(self, pattern):
        self.indicators.show(pattern)

    def wdt_feed(self):
        self.wdt.feed()

    def self_test(self):
        raw = self.pressure.raw()
        if raw < SENSOR_RAIL_MARGIN or raw > ADC_MAX - SENSOR_RAIL_MARGIN:
            return "pressure sensor out of range"
        if not self.motor.feedback_idle_ok():
            return "motor feedback stuck high"
        try:
            self.fs.stat("/")
        except OSError:
            return "flash not mounted"
        return None

    def reset_cause(self):
        return self._reset_cause
