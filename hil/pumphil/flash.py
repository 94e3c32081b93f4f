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

Written through: with an image file, the chip IS that file, mapped into memory (mmap, shared), so
every program and erase is in the file the moment the chip makes it. A killed emulator (even
`kill -9`) leaves exactly what a Pico's flash would hold after a power cut at that instant, and
littlefs mounts it the next time as it would on the Pico.
"""

from __future__ import annotations

import mmap
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

    def __init__(self, buffsize: int | None = None,
                 buffer: bytearray | mmap.mmap | None = None) -> None:
        super().__init__(buffsize, buffer)  # type: ignore[arg-type]
        # the memory itself: a bytearray, or the image file mapped (write-through); kept in an
        # attribute of our own type (the base class declares `buffer` a bytearray)
        self.mem: bytearray | mmap.mmap = buffer if buffer is not None else self.buffer
        self.progs = 0
        self.erases = 0

    def read(self, cfg: Any, block: int, off: int, size: int) -> bytearray:
        start = block * BLOCK_SIZE + off
        data = self.mem[start:start + size]
        return data if isinstance(data, bytearray) else bytearray(data)   # an mmap gives bytes

    def prog(self, cfg: Any, block: int, off: int, data: bytes) -> int:
        self.progs += 1
        start = block * BLOCK_SIZE + off
        self.mem[start:start + len(data)] = data
        return 0

    def erase(self, cfg: Any, block: int) -> int:
        self.erases += 1
        start = block * BLOCK_SIZE
        self.mem[start:start + BLOCK_SIZE] = _ERASED
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


def _mapped(path: Path) -> tuple[mmap.mmap, LittleFS]:
    """The image file as the chip (see the module's docstring): mounted when it holds a
    filesystem of this geometry, formatted when it is new."""
    size = BLOCK_SIZE * BLOCK_COUNT
    fresh = not path.exists()
    if not fresh and path.stat().st_size != size:
        raise OSError(f"{path}: a flash image is {size} bytes, this one {path.stat().st_size}")
    with path.open("r+b" if not fresh else "w+b") as f:
        if fresh:
            f.write(_ERASED * BLOCK_COUNT)
            f.flush()
        mm = mmap.mmap(f.fileno(), size)      # the mapping outlives the file object
    chip = FlashChip(buffer=mm)
    if fresh:
        return mm, _lfs(chip, True)
    fs = _lfs(chip, False)
    fs.mount()
    return mm, fs


class Flash:
    def __init__(self, image: Path | None) -> None:
        self.image = image
        self._map: mmap.mmap | None = None
        if image is not None:
            self._map, self.lfs = _mapped(image)
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
        """Ask the OS to put the mapped image on disk (msync). Not needed for a killed emulator
        (the page cache keeps every write), only against the machine itself going down."""
        if self._map is not None and self.dirty:
            self._map.flush()
            self.dirty = False

    def close(self) -> None:
        """Unmap the image (after sync); the Flash is unusable afterwards."""
        if self._map is not None:
            self.sync()
            self._map.close()
            self._map = None

    def wipe(self) -> None:
        """What the rp2 port does when a mount fails: a freshly formatted, empty filesystem."""
        if self._map is not None:
            self._map[:] = _ERASED * BLOCK_COUNT
            self.lfs = _lfs(FlashChip(buffer=self._map), True)
        else:
            self.lfs = _new_fs()
        self.dirty = True
