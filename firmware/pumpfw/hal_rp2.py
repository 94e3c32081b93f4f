# The real Raspberry Pi Pico HAL (MicroPython rp2 port). Wiring in docs/hardware.md; pins in
# pumpfw.board. Only pumpfw.app uses this object (see the HAL contract there).

import os
import select
import sys
import time

import machine

from pumpfw import board


class OsFs:
    """The board's LittleFS through os + open (the HAL's `fs`)."""

    def open(self, path, mode):
        return open(path, mode)

    def rename(self, src, dst):
        os.rename(src, dst)

    def remove(self, path):
        os.remove(path)

    def stat(self, path):
        return os.stat(path)


class PicoHal:
    def __init__(self, use_uart=False):
        self.fs = OsFs()
        self.step_pin = machine.Pin(board.PIN_MOTOR_STEP, machine.Pin.OUT, value=0)
        self.enable_pin = machine.Pin(board.PIN_MOTOR_ENABLE, machine.Pin.OUT, value=0)
        self.feedback_pin = machine.Pin(board.PIN_MOTOR_FEEDBACK, machine.Pin.IN, machine.Pin.PULL_DOWN)
        self.button_pin = machine.Pin(board.PIN_BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
        self.red = machine.Pin(board.PIN_LED_RED, machine.Pin.OUT, value=0)
        self.yellow = machine.Pin(board.PIN_LED_YELLOW, machine.Pin.OUT, value=0)
        self.buzzer = machine.PWM(machine.Pin(board.PIN_BUZZER))
        self.buzzer.duty_u16(0)
        self.adc_p = machine.ADC(board.PIN_PRESSURE_ADC)
        self.adc_b = machine.ADC(board.PIN_BATTERY_ADC)
        self._pressed = False
        self.button_pin.irq(trigger=machine.Pin.IRQ_FALLING, handler=self._on_button)
        if use_uart:
            self.uart = machine.UART(0, baudrate=115200, tx=machine.Pin(board.PIN_UART_TX),
                                     rx=machine.Pin(board.PIN_UART_RX), rxbuf=4096)
            self._in = self.uart
        else:
            self.uart = None
            self._in = sys.stdin.buffer
        self.poll = select.poll()
        self.poll.register(self._in, select.POLLIN)
        self.wdt = machine.WDT(timeout=board.WDT_TIMEOUT_MS)

    def _on_button(self, pin):
        self._pressed = True

    ticks_ms = staticmethod(time.ticks_ms)
    ticks_diff = staticmethod(time.ticks_diff)

    def wait(self, ms):
        if ms > 0 and not self._pressed:
            self.poll.poll(ms)        # WFI inside; returns early on serial input

    # One link (0): USB-CDC, or UART0 with use_uart. The Pico's USB-CDC is one serial port owned by
    # one host program at a time; several host programs share it through a host-side multiplexer
    # (docs/protocol.md, "Several hosts").
    def serial_read(self):
        if not self.poll.poll(0):
            return None
        if self.uart is not None:
            return (0, self.uart.read())
        return (0, sys.stdin.buffer.read(1))

    def serial_write(self, data, link=None):
        if self.uart is not None:
            self.uart.write(data)
        else:
            sys.stdout.buffer.write(data)

    def button_pressed(self):
        p = self._pressed
        self._pressed = False
        return p

    def motor_stroke(self):
        self.enable_pin.value(1)
        self.step_pin.value(1)
        t0 = time.ticks_ms()
        seen = False
        while time.ticks_diff(time.ticks_ms(), t0) < board.STROKE_TIMEOUT_MS:
            if self.feedback_pin.value():
                seen = True
                break
        self.step_pin.value(0)
        self.enable_pin.value(0)
        return seen

    def motor_off(self):
        self.step_pin.value(0)
        self.enable_pin.value(0)

    def read_pressure(self, buf, n, period_ms, start=0):
        span = board.PRESSURE_FULL_SCALE_PA
        off = board.PRESSURE_OFFSET_PA
        for i in range(n):
            buf[start + i] = off + self.adc_p.read_u16() * span // 65535
            if i + 1 < n:
                time.sleep_ms(period_ms)

    def battery_mv(self):
        return self.adc_b.read_u16() * 3300 * 2 // 65535

    def indicate(self, pattern):
        # Steady indication here; the tone cadence (bursts) is played by the main loop's wake-ups.
        self.red.value(1 if pattern == "high" else 0)
        self.yellow.value(1 if pattern in ("medium", "low") else 0)
        self.buzzer.freq(2000 if pattern == "high" else 1000)
        self.buzzer.duty_u16(20000 if pattern else 0)

    def wdt_feed(self):
        self.wdt.feed()

    def self_test(self):
        raw = self.adc_p.read_u16()
        if raw < 100 or raw > 65400:
            return "pressure sensor out of range"
        try:
            os.stat("/")
        except OSError:
            return "flash not mounted"
        return None
