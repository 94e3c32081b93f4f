# The protocol's crypto under the real MicroPython interpreter (run by bench/bench_crypto.py
# through pumphil.mpy_runtime): the firmware's HMAC-SHA256 (C sha256 underneath) against a
# pure-Python ChaCha20-Poly1305 AEAD (RFC 8439, written here only to measure it; MicroPython has
# no AEAD in C), per frame of typical sizes, and a whole authenticated request through the
# dispatcher. Prints "key value" lines.
import struct
import sys
import time

sys.path.append("/tests/core")
from proto_helpers import Signer, make  # noqa: E402
from pumpcore import auth  # noqa: E402

M32 = 0xFFFFFFFF


def _rotl(v, n):
    return ((v << n) | (v >> (32 - n))) & M32


def _quarter(x, a, b, c, d):
    x[a] = (x[a] + x[b]) & M32
    x[d] = _rotl(x[d] ^ x[a], 16)
    x[c] = (x[c] + x[d]) & M32
    x[b] = _rotl(x[b] ^ x[c], 12)
    x[a] = (x[a] + x[b]) & M32
    x[d] = _rotl(x[d] ^ x[a], 8)
    x[c] = (x[c] + x[d]) & M32
    x[b] = _rotl(x[b] ^ x[c], 7)


def chacha20_block(key, counter, nonce):
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key)) + [counter] + list(struct.unpack("<3I", nonce))
    x = list(state)
    for _ in range(10):
        _quarter(x, 0, 4, 8, 12)
        _quarter(x, 1, 5, 9, 13)
        _quarter(x, 2, 6, 10, 14)
        _quarter(x, 3, 7, 11, 15)
        _quarter(x, 0, 5, 10, 15)
        _quarter(x, 1, 6, 11, 12)
        _quarter(x, 2, 7, 8, 13)
        _quarter(x, 3, 4, 9, 14)
    return struct.pack("<16I", *[(x[i] + state[i]) & M32 for i in range(16)])


def chacha20(key, counter, nonce, data):
    out = bytearray(len(data))
    for j in range(0, len(data), 64):
        ks = chacha20_block(key, counter + j // 64, nonce)
        for i in range(min(64, len(data) - j)):
            out[j + i] = data[j + i] ^ ks[i]
    return bytes(out)


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i:i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def _pad16(b):
    return b"\x00" * ((16 - len(b) % 16) % 16)


def aead_seal(key, nonce, aad, plaintext):
    otk = chacha20_block(key, 0, nonce)[:32]
    ct = chacha20(key, 1, nonce, plaintext)
    mac = aad + _pad16(aad) + ct + _pad16(ct) + struct.pack("<QQ", len(aad), len(ct))
    return ct, poly1305(otk, mac)


# RFC 8439 section 2.8.2: the implementation measured is the real thing
_KEY = bytes(range(0x80, 0xA0))
_NONCE = bytes([7, 0, 0, 0]) + bytes(range(0x40, 0x48))
_AAD = bytes([0x50, 0x51, 0x52, 0x53, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7])
_PT = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
       b"future, sunscreen would be it.")
_ct, _tag = aead_seal(_KEY, _NONCE, _AAD, _PT)
assert _tag.hex() == "1ae10b594f09e26a7e902ecbd0600691", _tag.hex()
assert _ct[:16].hex() == "d31a8d34648e60db7b86afbc53ef7ec2"
print("rfc8439_vector ok")


def per_op_us(fn, n):
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    return time.ticks_diff(time.ticks_us(), t0) // n


mac = auth._Mac(bytes(range(32)))
for size in (100, 400, 2000):
    msg = b"x" * size
    per_op_us(lambda m=msg: mac.tag(m), 50)                  # warm-up
    print("hmac_us_%d %d" % (size, per_op_us(lambda m=msg: mac.tag(m), 1000)))
    print("aead_us_%d %d" % (size, per_op_us(lambda m=msg: aead_seal(_KEY, _NONCE, b"", m), 3)))

# a whole authenticated `status` through the dispatcher: parse, verify, execute, tagged reply
d, pump, a = make()
s = Signer()
lines = [s.line("status", role="readonly") for _ in range(100)]
t0 = time.ticks_us()
for ln in lines:
    d.handle_line(ln)
print("request_us %d" % (time.ticks_diff(time.ticks_us(), t0) // len(lines)))
