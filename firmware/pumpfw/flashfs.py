# The board's flash filesystem (LittleFS, mounted at / by the rp2 port) with the HAL's `fs`
# surface (pumpfw.hal.Fs): open, rename, remove, stat. Who calls it: pumpfw.hal_rp2, and
# `itpump provision` on the device.

import os


class FlashFs:
    def open(self, path, mode):
        return open(path, mode)

    def rename(self, src, dst):
        os.rename(src, dst)

    def remove(self, path):
        os.remove(path)

    def stat(self, path):
        return os.stat(path)
