"""pumphil: the emulator (virtual rig), pyvisa instrument drivers, rig config, pytest plugin and
the bridge to the real MicroPython runtime. Only tests and the CLI's
emulate/simulate/campaign commands import it."""

from . import accel as _accel

_accel.install(__path__, "pumphil")   # the mypyc build of board/flash when current (accel.py)
