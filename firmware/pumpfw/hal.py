# The HAL: every call the device application (pumpfw.app, pumpfw.supervisor, pumpfw.storage)
# makes on its hardware, with units, timing and errors. One interface, three implementations:
#   pumpfw.hal_rp2.PicoHal       the Raspberry Pi Pico (MicroPython rp2 port), built from the
#                                small drivers in pumpfw (motor, pressure, battery, indicators,
#                                button, usb_link/uart_link, flashfs, resetcause)
#   pumphil.board.VirtualHal     the emulator's virtual board (CPython, virtual time)
#   BridgedHal (hil/pumphil/     the emulator's micropython runtime: the firmware on a laptop
#     mpy/mp_board.py)           MicroPython, plant and flash bridged to CPython
# tests/test_hal.py checks that each implements every call below with the same parameters, and
# tests/rp2 checks PicoHal on the real rp2 port.
#
# Nobody calls this class: it is the contract, written as code so that tools can read it. The
# implementations do not inherit from it (an inherited stub would hide a missing call).
#
# Conventions: times are integer ms; pressures integer Pa (gauge); voltages integer mV. "Blocks"
# means the call returns after that much time has passed on the board's clock; the watchdog keeps
# running meanwhile, so a caller feeds it before any call that blocks for long. No call allocates
# in the steady state unless it says so. Errors: only the calls that say so raise; a HAL never
# raises for a hardware fault it can report (a stroke without feedback returns False).


class Hal:
    # The board's flash filesystem (LittleFS on the Pico), an object with the Fs calls below.
    fs = None
    # Optional, not part of the checked contract: `board_name`, what hello reports as the board
    # (default pumpfw.board.BOARD, "rpi-pico"; the emulator's "emulator").

    def ticks_ms(self):
        """Monotonic ms counter, time.ticks_ms semantics: wraps at 2**30 (~12.4 days). Compare
        only with ticks_diff. Does not block."""
        raise NotImplementedError

    def ticks_diff(self, a, b):
        """Signed ms from ticks b to ticks a (time.ticks_diff); valid within +-2**29 ms."""
        raise NotImplementedError

    def wait(self, ms):
        """Sleep up to ms (the core's next due time, <= board.WDT_FEED_MS). Returns early when
        serial input arrives or the bolus button is pressed. ms <= 0 returns at once. The board
        may lower its power in between; nothing else runs."""
        raise NotImplementedError

    def serial_read(self):
        """(link, bytes) received since the last call, or None when nothing arrived. link is a
        small int naming the connection the bytes came from (the Pico: 0, its one port; the
        emulator: one per host connection). Never blocks. Allocates the returned bytes (input
        is not the steady state)."""
        raise NotImplementedError

    def serial_write(self, data, link=None):
        """Send bytes (one or more protocol lines ending in LF) to `link` (a reply to the link
        that asked), or with link None to every link (events). Blocks while the link's buffer is
        full (USB-CDC with no host attached drops, it does not block)."""
        raise NotImplementedError

    def button_pressed(self):
        """True once per press of the patient's bolus button since the last call (latched by an
        interrupt, debounced), else False. Does not block."""
        raise NotImplementedError

    def motor_stroke(self):
        """One pump stroke (board.STROKE_NL): energise the driver, wait for the feedback pulse,
        de-energise. Blocks <= board.STROKE_TIMEOUT_MS (the real mechanism: ~50 ms). True when
        the feedback pulse came, False when it did not (stall, broken driver): not an error."""
        raise NotImplementedError

    def motor_off(self):
        """De-energise the pump driver at once, also mid-stroke. Idempotent; never raises (the
        fail-safe handler calls it)."""
        raise NotImplementedError

    def read_pressure(self, buf, n, period_ms, start=0):
        """Fill buf[start:start + n] with outlet pressure samples in Pa (integers; gauge, may be
        negative), one every period_ms, the first at once. Blocks n * period_ms (it returns one
        period after the last sample, so consecutive captures keep the sampling grid). buf is a
        preallocated list of ints (the supervisor's); nothing is allocated."""
        raise NotImplementedError

    def battery_mv(self):
        """The cell's voltage in mV (integer), measured now. Does not block (one ADC read)."""
        raise NotImplementedError

    def indicate(self, pattern):
        """Show an alarm priority on the buzzer and LEDs: "high", "medium", "low", or None for
        silence. Holds until the next call. Does not block."""
        raise NotImplementedError

    def wdt_feed(self):
        """Feed the hardware watchdog (board.WDT_TIMEOUT_MS). Only a healthy loop calls it."""
        raise NotImplementedError

    def self_test(self):
        """Check the sensor range, the filesystem and the motor driver. Returns None when all
        pass, else a short failure text (which enters the safe state). Blocks a few ms."""
        raise NotImplementedError

    def reset_cause(self):
        """Why the board last started: "power_on" (power cut or brown-out), "watchdog" (the
        watchdog fired: the loop hung or stopped feeding), "soft" (a requested restart:
        MicroPython soft reset, machine.reset() after flashing) or "unknown". Fixed for the life
        of the HAL object; does not block."""
        raise NotImplementedError


class Fs:
    # The `fs` object: os-like access to the board's flash filesystem. Paths are absolute
    # ("/state.json"). Errors: OSError (ENOENT for a missing file) as MicroPython's os raises.

    def open(self, path, mode):
        """A file object (read/write/close, context manager; read files also readline and seek)
        as open() returns; modes "rb", "wb", "ab". Raises OSError when a file to read is
        missing."""
        raise NotImplementedError

    def rename(self, src, dst):
        """Atomic replace of dst by src (LittleFS commits the rename in one metadata write)."""
        raise NotImplementedError

    def remove(self, path):
        """Delete a file; OSError when it is missing."""
        raise NotImplementedError

    def stat(self, path):
        """os.stat tuple (mode, ino, dev, nlink, uid, gid, size, atime, mtime, ctime); size is
        index 6. OSError when missing."""
        raise NotImplementedError
