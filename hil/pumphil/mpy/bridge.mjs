// The emulator's `micropython` runtime: the real MicroPython interpreter (the official WebAssembly
// build, @micropython/micropython-webassembly-pyscript, pinned in package.json) in Node, driven
// by the CPython emulator (pumphil/mpy_board.py) over this process's stdin/stdout.
//
// usage: node bridge.mjs [--heap BYTES] [--mount HOSTDIR:/MPDIR]...
//   Mounts as runner.mjs does (each on sys.path), then serves, one line each:
//   stdin   a JSON string: Python source run as one top-level runPython call, or, while that
//           call runs, the reply to a crossing (the text itpump_bridge.call returns)
//   stdout  "C<text>"  a crossing: itpump_bridge.call(text) from Python, waiting for a reply line
//           "D<text>"  itpump_bridge.send(text): no reply (the end of a command)
//           "E<json>"  the top-level call raised (its traceback, a JSON string)
//   Python's own print goes to stderr. Reads are blocking (fs.readSync on fd 0): a crossing is a
//   synchronous call from the interpreter into the CPython process. The process ends at EOF.
// Each command is its own top-level call because this build's garbage collector frees nothing
// while Python code runs (it cannot scan the WebAssembly stack), only between such calls.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import { copyTree, sysPathCode } from "./mount.mjs";
import { registerNative } from "./native.mjs";

const argv = process.argv.slice(2);
let heap = 8 * 1024 * 1024;
const mounts = [];
while (argv.length) {
  const flag = argv.shift();
  const value = argv.shift();
  if (flag === "--heap") heap = parseInt(value, 10);
  else if (flag === "--mount") {
    const i = value.lastIndexOf(":");
    mounts.push([value.slice(0, i), value.slice(i + 1)]);
  } else {
    console.error(`bridge.mjs: unknown option ${flag}`);
    process.exit(2);
  }
}

// The published build has Emscripten's assertions on: every call that can longjmp (MicroPython's
// nlr, i.e. nearly every call the VM makes) re-reads the function table to check its mirror.
// Table.get is memoised here (entries change only through set and grow, which drop the memo):
// the same functions, about a tenth less time (docs/emulator.md, "Runtimes").
{
  const proto = WebAssembly.Table.prototype;
  const get = proto.get, set = proto.set, grow = proto.grow;
  const memo = new WeakMap();
  proto.get = function (i) {
    let m = memo.get(this);
    if (m === undefined) memo.set(this, (m = []));
    let f = m[i];
    if (f === undefined) f = m[i] = get.call(this, i);
    return f;
  };
  proto.set = function (...a) { memo.delete(this); return set.apply(this, a); };
  proto.grow = function (...a) { memo.delete(this); return grow.apply(this, a); };
}

const mp = await loadMicroPython({
  heapsize: heap,
  stdout: (line) => process.stderr.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
for (const [hostDir, mpDir] of mounts) copyTree(mp, hostDir, mpDir);
registerNative(mp);

let pending = Buffer.alloc(0);
const chunk = Buffer.alloc(1 << 16);

function readLine() {
  for (;;) {
    const i = pending.indexOf(10);
    if (i >= 0) {
      const line = pending.subarray(0, i).toString("utf8");
      pending = pending.subarray(i + 1);
      return line;
    }
    let n;
    try {
      n = fs.readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      if (e.code === "EAGAIN") continue;
      if (e.code === "EOF") return null;
      throw e;
    }
    if (n === 0) return null;
    pending = Buffer.concat([pending, chunk.subarray(0, n)]);
  }
}

function writeLine(text) {
  const data = Buffer.from(text + "\n", "utf8");
  let off = 0;
  while (off < data.length) off += fs.writeSync(1, data, off, data.length - off);
}

function call(text) {
  writeLine("C" + text);
  const reply = readLine();
  if (reply === null) process.exit(0);     // the emulator went away mid-call
  return reply;
}

mp.registerJsModule("itpump_bridge", { call, send: (text) => writeLine("D" + text) });
mp.runPython(sysPathCode(mounts));
for (;;) {
  const line = readLine();
  if (line === null) break;
  try {
    mp.runPython(JSON.parse(line));
  } catch (err) {
    writeLine("E" + JSON.stringify(String(err && err.message ? err.message : err)));
  }
}
