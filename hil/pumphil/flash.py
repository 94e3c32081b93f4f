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

Power-cut hooks (the every-write campaign, tests/emulator/powercut.py): the chip counts its
programs and erases, can cut the power right before the k-th of them (optionally leaving that
program as a torn page), and can keep a journal of them; a Flash can be mounted from image bytes,
and can commit every file write at once (the behaviour of a filesystem without copy-on-write
files, such as FAT, which the firmware's temporary-file-and-rename rule is written for).

Written through: with an image file (and no image bytes given instead), the chip IS that file,
mapped into memory (mmap, shared), so every program and erase is in the file the moment the chip
makes it. A killed emulator (even `kill -9`) leaves exactly what a Pico's flash would hold after
a power cut at that instant, and littlefs mounts it the next time as it would on the Pico.
"""

from __future__ import annotations

import io
import mmap
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

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
    simulation makes ~50k flash calls).

    Counts: ``progs`` and ``erases`` (wear, and the test that refused frames cost no flash write);
    ``writes`` is both together, the index of the next one.

    Power-cut hooks (all off by default):
      cut_at     >= 0: `cut_image` becomes the flash as a power cut right BEFORE write number
                 cut_at (0-based) leaves it. The chip itself goes on working (littlefs-python
                 aborts the process when a failed file close is retried, so an unpowered chip
                 cannot be modelled by failing its calls); the run is over for the harness.
      torn       with cut_at, when that write is a program: it is left half done in cut_image,
                 as NOR flash leaves an interrupted program: its first half of whole pages, then
                 half of the next page programmed, the rest as it was (erased, 0xFF)
      journal    a list: every program is appended as (block, off, data), every erase as
                 (block, -1, b"")
      on_write   called with the write's index before each program/erase, so a harness can note
                 what the firmware had done when that write started
    """

    def __init__(self, buffer: bytearray | mmap.mmap) -> None:
        super().__init__(buffer=buffer)  # type: ignore[arg-type]
        # the memory itself: a bytearray, or the image file mapped (write-through); kept in an
        # attribute of our own type (the base class declares `buffer` a bytearray)
        self.mem: bytearray | mmap.mmap = buffer
        self.progs = 0
        self.erases = 0
        self.cut_at = -1
        self.torn = False
        self.cut_image: bytes | None = None
        self.journal: list[tuple[int, int, bytes]] | None = None
        self.on_write: Callable[[int], None] | None = None

    @property
    def writes(self) -> int:
        return self.progs + self.erases

    @property
    def cut(self) -> bool:
        return self.cut_image is not None

    def read(self, cfg: Any, block: int, off: int, size: int) -> bytearray:
        start = block * BLOCK_SIZE + off
        data = self.mem[start:start + size]
        return data if isinstance(data, bytearray) else bytearray(data)   # an mmap gives bytes

    def _before_write(self, start: int, data: bytes) -> None:
        """Before a program (data) or an erase (b""), not yet counted: tell on_write and take the
        cut image at cut_at."""
        k = self.progs + self.erases
        if self.on_write is not None:
            self.on_write(k)
        if k == self.cut_at:
            image = bytearray(self.mem)
            if self.torn and data:
                n = torn_length(len(data))
                image[start:start + n] = data[:n]
            self.cut_image = bytes(image)

    def prog(self, cfg: Any, block: int, off: int, data: bytes) -> int:
        start = block * BLOCK_SIZE + off
        if self.journal is not None:
            self.journal.append((block, off, bytes(data)))
        self._before_write(start, data)
        self.progs += 1
        self.mem[start:start + len(data)] = data
        return 0

    def erase(self, cfg: Any, block: int) -> int:
        start = block * BLOCK_SIZE
        if self.journal is not None:
            self.journal.append((block, -1, b""))
        self._before_write(start, b"")
        self.erases += 1
        self.mem[start:start + BLOCK_SIZE] = _ERASED
        return 0


def torn_length(size: int) -> int:
    """Bytes a program of `size` bytes (a multiple of PROG_SIZE) leaves programmed when the power
    goes in its middle: its first half of whole pages, then half of the next page."""
    return (size // 2) // PROG_SIZE * PROG_SIZE + PROG_SIZE // 2


def _lfs(chip: FlashChip, mount: bool) -> LittleFS:
    return LittleFS(chip, mount=mount, block_size=BLOCK_SIZE, block_count=BLOCK_COUNT,
                    prog_size=PROG_SIZE, read_size=READ_SIZE, cache_size=CACHE_SIZE,
                    lookahead_size=LOOKAHEAD_SIZE, block_cycles=BLOCK_CYCLES)


def _new_fs(image: bytes | None = None) -> LittleFS:
    """A littlefs on a FlashChip: mounted from image bytes, or freshly formatted."""
    if image is None:
        chip = FlashChip(bytearray(_ERASED) * BLOCK_COUNT)
        return _lfs(chip, True)
    chip = FlashChip(bytearray(image))
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
    chip = FlashChip(mm)
    if fresh:
        return mm, _lfs(chip, True)
    fs = _lfs(chip, False)
    fs.mount()
    return mm, fs


class _CommittedFile:
    """A file open for writing whose every write() is committed to flash at once (lfs_file_sync),
    as a filesystem without copy-on-write files does: a cut leaves the partly written file."""

    def __init__(self, f: io.BufferedWriter) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        n = self._f.write(data)
        self._f.flush()                    # the buffered writer hands the bytes to littlefs ...
        self._f.raw.flush()                # ... and the raw file's flush is lfs_file_sync
        return n

    def read(self, size: int = -1) -> bytes:
        return cast(bytes, self._f.read(size))

    def close(self) -> None:
        self._f.close()


class Flash:
    def __init__(self, image: Path | None, data: bytes | None = None,
                 commit_each_write: bool = False) -> None:
        """image: the file that keeps the flash, mapped as the chip (written through; None: RAM
        only); data: image bytes to mount instead (in RAM; the file is then only written by
        sync()); commit_each_write: see _CommittedFile (littlefs, like the Pico's, otherwise
        commits a file when it is closed)."""
        self.image = image
        self._map: mmap.mmap | None = None
        if data is not None:
            self.lfs = _new_fs(data)
        elif image is not None:
            self._map, self.lfs = _mapped(image)
        else:
            self.lfs = _new_fs()
        self.dirty = False
        self.commit_each_write = commit_each_write

    @property
    def chip(self) -> FlashChip:
        return cast(FlashChip, self.lfs.context)

    def image_bytes(self) -> bytes:
        """The flash's content now (what a power cut leaves once the chip is cut)."""
        return bytes(self.chip.mem)

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
            f = self.lfs.open(path, mode)
            if self.commit_each_write and isinstance(f, io.BufferedWriter):
                return cast(IO[Any], _CommittedFile(f))
            return f
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
        return self.chip.progs

    def listdir(self, path: str = "/") -> list[str]:
        return list(self.lfs.listdir(path))

    # -- host side -----------------------------------------------------------------------------------
    def sync(self) -> None:
        """The image file up to date: a mapped image is already (this asks the OS to put it on
        disk, msync: only against the machine itself going down); one mounted from bytes is
        written (tmp file, then rename)."""
        if self.dirty and self._map is not None:
            self._map.flush()
            self.dirty = False
        elif self.image is not None and self.dirty:
            tmp = self.image.with_suffix(".tmp")
            tmp.write_bytes(self.image_bytes())
            tmp.replace(self.image)
            self.dirty = False

    def close(self) -> None:
        """sync, then unmap the image; the Flash is unusable afterwards."""
        self.sync()
        if self._map is not None:
            self._map.close()
            self._map = None

    def wipe(self) -> None:
        """What the rp2 port does when a mount fails: a freshly formatted, empty filesystem."""
        if self._map is not None:
            self._map[:] = _ERASED * BLOCK_COUNT
            self.lfs = _lfs(FlashChip(self._map), True)
        else:
            self.lfs = _new_fs()
        self.dirty = True
