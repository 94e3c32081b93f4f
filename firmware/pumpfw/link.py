# The host link: protocol lines to and from the host (docs/protocol.md). Who calls it:
# pumpfw.hal_rp2 only.
#   UsbLink   USB-CDC, shared with the MicroPython REPL (Ctrl-C still interrupts, so mpremote
#             reaches the board)
#   UartLink  UART0 for a rig whose USB only powers the board
# read() never blocks and allocates only the bytes it returns; pollable() is what select.poll
# waits on.

import select
import sys

RX_MAX = 256        # bytes taken per read(); the rest waits for the next one


class UsbLink:
    def __init__(self):
        self.inp = sys.stdin.buffer
        self.out = sys.stdout.buffer
        self._rx = select.poll()
        self._rx.register(self.inp, select.POLLIN)
        self._buf = bytearray(RX_MAX)
        self._mv = memoryview(self._buf)
        self._one = bytearray(1)

    def _ready(self):
        for _ in self._rx.ipoll(0):     # ipoll: no list allocated per check
            return True
        return False

    def read(self):
        n = 0
        buf = self._buf
        one = self._one
        while n < RX_MAX and self._ready():
            self.inp.readinto(one)
            buf[n] = one[0]
            n += 1
        return bytes(self._mv[:n]) if n else None

    def write(self, data):
        self.out.write(data)

    def pollable(self):
        return self.inp


class UartLink:
    def __init__(self, uart):
        # uart: machine.UART, already configured (baud rate, pins, rxbuf)
        self.uart = uart

    def read(self):
        return self.uart.read() if self.uart.any() else None

    def write(self, data):
        self.uart.write(data)

    def pollable(self):
        return self.uart
