"""The HIL suite's machinery: one target seam (emulated rig, emulated RP2040, real bench, labgrid
place), the rig file, the safe state and its guardian, the IEC 60601-2-24 flow analysis, the
measurement report and the pytest plugin (``pumphil.hil.plugin``, entry point ``itpump_hil``).
docs/hil.md is the user's guide."""
