// Native helpers the WebAssembly MicroPython lacks, as the JS module `itpump_native` (shared by
// runner.mjs and bridge.mjs). That build has no C binascii (its `binascii` is micropython-lib's
// pure Python); the Pico's rp2 port has it in C. pumphil/mpy/mp_binascii.py wraps these with
// binascii's signatures and byte-for-byte results (tests/emulator/test_mpy_binascii.py).
//   b64encode(hex)  the standard base64 (RFC 4648 alphabet, "=" padding, no newline) of the
//                   bytes whose lowercase hex is given: strings both ways, which cross the
//                   interpreter's boundary as one copy each
export function registerNative(mp) {
  mp.registerJsModule("itpump_native", {
    b64encode: (hex) => Buffer.from(hex, "hex").toString("base64"),
  });
}
