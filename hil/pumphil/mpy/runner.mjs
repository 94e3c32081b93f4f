// Runs a Python file under the real MicroPython interpreter (the official WebAssembly build from
// npm, @micropython/micropython-webassembly-pyscript, pinned in package.json) inside Node.
//
// usage: node runner.mjs [--heap BYTES] [--mount HOSTDIR:/MPDIR]... [--then CODE]... SCRIPT.py [ARG...]
//   --then runs CODE after the script, each as its own top-level runPython call, in the script's
//   globals. This build's garbage collector frees nothing while Python code is running (it
//   cannot scan the WebAssembly stack): gc.collect() inside a long script leaves every object
//   allocated, so heap measurements need these top-level calls in between.
//   --mount copies HOSTDIR recursively (files ending .py/.toml/.json/.txt) into the interpreter's
//   in-memory filesystem at /MPDIR, so `import` works as on a board's flash.
//   Every /MPDIR is put on sys.path. The script sees its arguments in the global `ARGV`
//   (ARGV[0] is the script path): this port's `sys` has no settable argv.
// Exit code: 0 when the script finished, 1 when it raised (traceback on stderr), 2 on usage error.
// stdout and stderr of the script are passed through line by line.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import { copyTree, sysPathCode } from "./mount.mjs";
import { registerNative } from "./native.mjs";

const argv = process.argv.slice(2);
let heap = 8 * 1024 * 1024;
const mounts = [];
const then = [];
while (argv.length && argv[0].startsWith("--")) {
  const flag = argv.shift();
  const value = argv.shift();
  if (flag === "--heap") heap = parseInt(value, 10);
  else if (flag === "--mount") {
    const i = value.lastIndexOf(":");
    mounts.push([value.slice(0, i), value.slice(i + 1)]);
  } else if (flag === "--then") then.push(value);
  else {
    console.error(`runner.mjs: unknown option ${flag}`);
    process.exit(2);
  }
}
if (argv.length < 1) {
  console.error("usage: node runner.mjs [--heap BYTES] [--mount HOSTDIR:/MPDIR]... SCRIPT.py [ARG...]");
  process.exit(2);
}
const script = argv[0];

const mp = await loadMicroPython({
  heapsize: heap,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

for (const [hostDir, mpDir] of mounts) copyTree(mp, hostDir, mpDir);
registerNative(mp);

mp.globals.set("_RUNNER_ARGV", argv);
const source = fs.readFileSync(script, "utf8");
try {
  mp.runPython(sysPathCode(mounts) + "ARGV = [str(a) for a in _RUNNER_ARGV]\ndel _RUNNER_ARGV\n");
  mp.runPython(source);
  for (const code of then) mp.runPython(code);
} catch (err) {
  process.stderr.write(String(err && err.message ? err.message : err) + "\n");
  process.exit(1);
}
