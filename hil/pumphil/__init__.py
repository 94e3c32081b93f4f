"""pumphil: the emulator (virtual rig), pyvisa instrument drivers, rig config, pytest plugin and
the bridge to the real MicroPython runtime. Only tests and the CLI's emulate/simulate import it."""
