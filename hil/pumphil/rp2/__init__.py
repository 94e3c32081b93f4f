"""The real rp2 port in an emulated RP2040: the official MicroPython firmware (vendored in
``firmware/``) on rp2040js, driven from Python (:mod:`pumphil.rp2.target`), with flash images
built from the project's firmware (:mod:`pumphil.rp2.image`). docs/hardware.md, "The emulated
board"."""
