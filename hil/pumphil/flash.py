"""The virtual board's flash: a real littlefs image (littlefs-python), kept as a file in the state
directory, with the os-like surface the firmware's storage uses (open/rename/remove/stat).

Geometry matches the Pico's default MicroPython filesystem (rp2 `_boot.py` mounts
`VfsLfs2(bdev, progsize=256)`; extmod/vfs_lfsx.c adds block_cycles=100): 4 KiB blocks,
1408 KiB = 352 blocks, 256-byte programs, wear levelling every 100 erases, a 32-byte lookahead.
Those fix what lands on flash (commit padding, when metadata moves; the inline-file limit is the
same).
Reads and caches are 4 KiB here, where the Pico reads 32 bytes into 1 KiB caches: that changes
only how many calls littlefs makes into the chip and when it flushes them (and RAM use on the
Pico), not the on-flash format or anything the firmware sees; it is ~20 % faster per state record.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from littlefs import LittleFS, LittleFSError, UserContext

BLOCK_SIZE = 4096
BLOCK_COUNT = 352
PROG_SIZE = 256
BLOCK_CYCLES = 100
LOOKAHEAD_SIZE = 32
READ_SIZE = CACHE_SIZE = 4096      # emulator's choice (the Pico: 32 and 1024), see above
_ERASED = b"\xff" * BLOCK_SIZE


class FlashChip(UserContext):
    """The flash device under littlefs: one bytearray, erase = 0xFF, reads and programs at any
    offset. littlefs-python's own UserContext formats a debug log line (with the repr of the data)
    for every call even when logging is off; this one does the same work without it (a month of
    simulation makes ~50k flash calls). ``progs`` and ``erases`` count the program and erase
    operations (wear, and the test that refused frames cost no flash write)."""

    def __init__(self, buffsize: int | None = None, buffer: bytearray | None = None) -> None:
        super().__init__(buffsize, buffer)  # type: ignore[arg-type]
        self.progs = 0
        self.erases = 0

    def read(self, cfg: Any, block: int, off: int, size: int) -> bytearray:
        start = block * BLOCK_SIZE + off
        return self.buffer[start:start + size]

    def prog(self, cfg: Any, block: int, off: int, data: bytes) -> int:
        self.progs += 1
        start = block * BLOCK_SIZE + off
        self.buffer[start:start + len(data)] = data
        return 0

    def erase(self, cfg: Any, block: int) -> int:
        self.erases += 1
        start = block * BLOCK_SIZE
        self.buffer[start:start + BLOCK_SIZE] = _ERASED
        return 0


def _lfs(chip: FlashChip, mount: bool) -> LittleFS:
    return LittleFS(chip, mount=mount, block_size=BLOCK_SIZE, block_count=BLOCK_COUNT,
                    prog_size=PROG_SIZE, read_size=READ_SIZE, cache_size=CACHE_SIZE,
                    lookahead_size=LOOKAHEAD_SIZE, block_cycles=BLOCK_CYCLES)


def _new_fs(image: bytes | None = None) -> LittleFS:
    """A littlefs on a FlashChip: mounted from image bytes, or freshly formatted."""
    if image is None:
        chip = FlashChip(buffsize=BLOCK_SIZE * BLOCK_COUNT)
        return _lfs(chip, True)
    chip = FlashChip(buffer=bytearray(image))
    fs = _lfs(chip, False)
    fs.mount()
    return fs


def _oserror(exc: LittleFSError) -> OSError:
    """littlefs-python raises its own error type; the firmware expects OSError like on the Pico."""
    if exc.code == LittleFSError.Error.LFS_ERR_NOENT:
        return FileNotFoundError(2, str(exc))
    return OSError(5, str(exc))


class Flash:
    def __init__(self, image: Path | None) -> None:
        self.image = image
        if image is not None and image.exists():
            self.lfs = _new_fs(image.read_bytes())
        else:
            self.lfs = _new_fs()
        self.dirty = False

    # -- the firmware's fs surface -----------------------------------------------------------------
    def open(self, path: str, mode: str) -> IO[Any]:
        if any(c in mode for c in "wa+"):
            self.dirty = True
        try:
            if "a" in mode:
                # littlefs-python's append mode does not create a missing file (MicroPython's
                # does): create it empty first
                try:
                    self.lfs.stat(path)
                except LittleFSError:
                    self.lfs.open(path, "wb").close()
            return self.lfs.open(path, mode)
        except LittleFSError as exc:
            raise _oserror(exc) from exc

    def rename(self, src: str, dst: str) -> None:
        self.dirty = True
        try:
            self.lfs.rename(src, dst)
        except LittleFSError as exc:
            raise _oserror(exc) from exc

    def remove(self, path: str) -> None:
        self.dirty = True
        try:
            self.lfs.remove(path)
        except LittleFSError as exc:
            raise _oserror(exc) from exc

    def stat(self, path: str) -> tuple[int, ...]:
        try:
            st = self.lfs.stat(path)
        except LittleFSError as exc:
            raise _oserror(exc) from exc
        # os.stat layout as on MicroPython: (mode, ino, dev, nlink, uid, gid, size, atime, mtime, ctime)
        mode = 0x4000 if st.type == 2 else 0x8000
        return (mode, 0, 0, 0, 0, 0, st.size, 0, 0, 0)

    @property
    def programs(self) -> int:
        """Program operations on the chip since this filesystem was mounted or formatted."""
        chip = self.lfs.context
        assert isinstance(chip, FlashChip)
        return chip.progs

    def listdir(self, path: str = "/") -> list[str]:
        return list(self.lfs.listdir(path))

    # -- host side -----------------------------------------------------------------------------------
    def sync(self) -> None:
        """Write the image file (the state directory keeps the flash across emulator runs)."""
        if self.image is not None and self.dirty:
            tmp = self.image.with_suffix(".tmp")
            tmp.write_bytes(bytes(self.lfs.context.buffer))
            tmp.replace(self.image)
            self.dirty = False

    def wipe(self) -> None:
        """What the rp2 port does when a mount fails: a freshly formatted, empty filesystem."""
        self.lfs = _new_fs()
        self.dirty = True
