# pumpcore: the pure therapy logic of itpump.
# Runs unchanged under CPython and MicroPython; imports nothing outside pumpcore (see
# docs/architecture.md). Research and education software, not a medical device.
