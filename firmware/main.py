# Device entry point: wiring only. The Pico boots into the pump application; the protocol shares
# USB-CDC with the REPL (Ctrl-C interrupts, so mpremote can still reach the board).
from pumpfw.app import App
from pumpfw.hal_rp2 import PicoHal

App(PicoHal()).run()
