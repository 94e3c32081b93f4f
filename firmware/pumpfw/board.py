# Board constants of the itpump reference board (Raspberry Pi Pico + peristaltic micro-pump
# module + outlet pressure sensor). Documented in docs/hardware.md. All integers.

FIRMWARE_VERSION = "0.1.0"
BOARD = "rpi-pico"

STROKE_NL = 250            # volume moved per pump stroke (nL): the delivery engine's quantum
STROKE_TIMEOUT_MS = 100    # feedback pulse expected within this after a stroke command

# Watchdog: rp2 maximum is 8388 ms; the loop feeds it at least every WDT_FEED_MS while healthy
# (the longest blocking work in one step, a 4-s sensing window, fits in the remaining margin only
# because the loop feeds right before it: see App.step).
WDT_TIMEOUT_MS = 8388
WDT_FEED_MS = 7000
SUPERVISION_TICK_MS = 60000  # motor/battery supervision integrates elapsed time per minute

# Pressure sensing (docs/detectors.md): 25 Hz samples.
SAMPLE_PERIOD_MS = 40
PRE_STROKE_N = 5           # samples averaged just before every stroke
STROKE_CAPTURE_N = 50      # samples after a stroke (2 s), fewer when the next stroke is sooner
LINE_SETTLE_MS = 1500      # 5 nominal time constants (0.3 s): a stroke response has decayed
WINDOW_N = 100             # sensing window: 4 s at 25 Hz ...
WINDOW_EVERY_MS = 300000   # ... every 5 min

# Battery voltage backstop (the consumption model in pumpcore.detect_battery is primary): the
# Li-SOCl2 cell's open-circuit voltage is flat until its knee; docs/detectors.md.
BATTERY_ERI_MV = 3450        # ~10 % left on the reference cell's curve
BATTERY_EOS_MV = 3100        # ~2 % left: stop flow, keep enough to alarm and hold state
BATTERY_HYSTERESIS_MV = 50

# Self-test: at boot and then every SELF_TEST_EVERY_MS (sensor sanity, flash read-back)
SELF_TEST_EVERY_MS = 86400000

# Persistence
# While running, the state record is also rewritten once SNAPSHOT_EVERY_NL have been delivered
# since the last one, or SNAPSHOT_EVERY_MS have passed, whichever comes first (and at every state
# change). That bounds what a power cut can take from the counters, the 24-h dose ledger and the
# reservoir volume in drug, not only in time: <= 10 uL (40 strokes) at any rate, where a 10-min
# period lost up to 167 uL at 1 mL/h (docs/safety.md, H14). Flash wear: ~70 records a day at
# 0.7 mL/day, 2,400 at 1 mL/h (littlefs levels them over ~340 blocks: > 15 years at 100k cycles).
SNAPSHOT_EVERY_NL = 10000
SNAPSHOT_EVERY_MS = 1800000
LOG_FILE_MAX = 32768        # bytes per event-log file; LOG_FILES files are kept (rotation)
LOG_FILES = 4
SEC_LOG_FILES = 2           # the security log's files (pumpfw.storage), LOG_FILE_MAX each

# Pico pin map (docs/hardware.md)
PIN_UART_TX = 0
PIN_UART_RX = 1
PIN_MOTOR_STEP = 2
PIN_MOTOR_FEEDBACK = 3
PIN_MOTOR_ENABLE = 4
PIN_BUTTON = 14
PIN_BUZZER = 15
PIN_LED_RED = 16
PIN_LED_YELLOW = 17
PIN_PRESSURE_ADC = 26      # ADC0: outlet pressure sensor (ratiometric, 0.5-4.5 V scaled to 0-3.3 V)
PIN_BATTERY_ADC = 28       # ADC2: cell voltage through a 1:2 divider
PRESSURE_FULL_SCALE_PA = 20000   # sensor span mapped to the full ADC range
PRESSURE_OFFSET_PA = -2000       # ADC 0 reads this pressure (gauge)
ADC_VREF_MV = 3300               # the ADC's full scale (the Pico's 3V3 reference)
BATTERY_DIVIDER = 2              # cell voltage / ADC2 pin voltage (two equal resistors)
