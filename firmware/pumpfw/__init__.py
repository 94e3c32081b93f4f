# pumpfw: the device shell of itpump. Wires pumpcore to hardware through a HAL object (real Pico:
# pumpfw.hal_rp2; emulator: pumphil.board), runs the main loop, persists state, feeds the watchdog.
