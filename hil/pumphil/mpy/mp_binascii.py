# Base64 for the emulator's `micropython` runtime, installed into `binascii` by mp_board.py.
# Runs under the WebAssembly MicroPython only.
#
# Why: that build (@micropython/micropython-webassembly-pyscript) has no C binascii; its
# `binascii` is micropython-lib's pure-Python module, whose b2a_base64 allocates O(n**2) (3.2 MB
# and ~13 ms for the 1,156 bytes of one ledger slot, so ~20 ms per state record: a third of the
# reference month). The Pico's rp2 port has the C module. Encoding goes to Node's C++ base64
# (itpump_native, pumphil/mpy/native.mjs: ~0.05 ms a slot; a linear Python loop took 1.7 ms)
# when the host registered it; decoding (a boot's restore only) is linear Python here. Both
# give CPython's binascii's bytes (tests/emulator/test_mpy_binascii.py); the firmware calling
# them is unchanged.
try:
    from itpump_native import b64encode as _native_b64
except ImportError:
    _native_b64 = None

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PAD = 61                   # "="
_DECODE = bytearray(b"\xff" * 256)
for _i in range(64):
    _DECODE[_ALPHABET[_i]] = _i


def b2a_base64(data, newline=True):
    """As binascii.b2a_base64(data, *, newline=True): bytes, "\\n"-terminated by default."""
    if _native_b64 is not None:
        out = _native_b64(bytes(data).hex()).encode() if len(data) else b""
        return out + b"\n" if newline else out
    n = len(data)
    full = n - n % 3
    out = bytearray((n + 2) // 3 * 4 + (1 if newline else 0))
    t = _ALPHABET
    j = 0
    for i in range(0, full, 3):
        v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
        out[j] = t[v >> 18]
        out[j + 1] = t[(v >> 12) & 63]
        out[j + 2] = t[(v >> 6) & 63]
        out[j + 3] = t[v & 63]
        j += 4
    left = n - full
    if left:
        v = data[full] << 16
        if left == 2:
            v |= data[full + 1] << 8
        out[j] = t[v >> 18]
        out[j + 1] = t[(v >> 12) & 63]
        out[j + 2] = t[(v >> 6) & 63] if left == 2 else _PAD
        out[j + 3] = _PAD
        j += 4
    if newline:
        out[j] = 10
    return bytes(out)


def a2b_base64(data):
    """As binascii.a2b_base64 (CPython's default, non-strict): characters outside the alphabet
    are skipped, decoding ends once the padding completes a quad; ValueError when the data
    characters do not end on a quad boundary without padding."""
    if isinstance(data, str):
        data = data.encode()
    out = bytearray(len(data) * 3 // 4 + 3)
    d = _DECODE
    quad = 0                # data characters of the current quad seen
    left = 0                # their bits not yet output
    pads = 0
    j = 0
    for c in data:
        if c == _PAD:
            pads += 1
            if quad >= 2 and quad + pads >= 4:
                quad = 0
                break
            continue
        v = d[c]
        if v == 255:
            continue
        pads = 0
        if quad == 0:
            left = v
            quad = 1
        elif quad == 1:
            out[j] = (left << 2) | (v >> 4)
            j += 1
            left = v & 15
            quad = 2
        elif quad == 2:
            out[j] = ((left << 4) | (v >> 2)) & 255
            j += 1
            left = v & 3
            quad = 3
        else:
            out[j] = ((left << 6) | v) & 255
            j += 1
            quad = 0
    if quad:
        raise ValueError("Incorrect padding")
    return bytes(out[:j])
