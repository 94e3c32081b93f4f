# Why the RP2040 last started, for pumpfw.hal.Hal.reset_cause(). Read it before this boot arms
# its own watchdog. Who calls it: pumpfw.hal_rp2 only.
#
# The rp2 port's machine.reset_cause() tells only PWRON_RESET from WDT_RESET, and reports
# WDT_RESET for machine.reset() too (that is a watchdog FORCE trigger). The watchdog's own
# registers tell more (RP2040 datasheet, watchdog): REASON bit 0 = the timer expired, bit 1 =
# software forced it; both are cleared only by a power-on or RUN-pin reset. A MicroPython soft
# reset does not reset the chip, so the watchdog the previous run armed is still enabled.
# Decision: a soft reset after a watchdog expiry still reports "watchdog" (REASON keeps the
# expiry until the next power-on); for dose safety, calling a hang a requested restart would be
# the worse mistake.

import machine

_WATCHDOG_CTRL = 0x40058000
_WATCHDOG_REASON = 0x40058008
_CTRL_ENABLE = 1 << 30
_REASON_TIMER = 1
_REASON_FORCE = 2


def reset_cause():
    reason = machine.mem32[_WATCHDOG_REASON]
    if reason & _REASON_TIMER:
        return "watchdog"
    if machine.mem32[_WATCHDOG_CTRL] & _CTRL_ENABLE:
        return "soft"               # still armed by the previous run: no chip reset since
    if reason & _REASON_FORCE:
        return "soft"               # machine.reset()
    if machine.reset_cause() == machine.PWRON_RESET:
        return "power_on"
    return "unknown"
