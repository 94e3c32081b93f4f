// Copies host directories into the MicroPython WebAssembly interpreter's in-memory filesystem,
// so `import` works as on a board's flash (shared by runner.mjs and bridge.mjs).
import fs from "node:fs";
import path from "node:path";

function mkdirs(mp, dir) {
  let cur = "";
  for (const part of dir.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}

// Files ending .py/.toml/.json/.txt under hostDir, recursively, to mpDir.
export function copyTree(mp, hostDir, mpDir) {
  mkdirs(mp, mpDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || entry.name === "__pycache__") continue;
    const src = path.join(hostDir, entry.name);
    const dst = mpDir.replace(/\/$/, "") + "/" + entry.name;
    if (entry.isDirectory()) copyTree(mp, src, dst);
    else if (/\.(py|toml|json|txt)$/.test(entry.name)) mp.FS.writeFile(dst, fs.readFileSync(src));
  }
}

// Python source that puts every mount on sys.path.
export function sysPathCode(mounts) {
  const paths = mounts.map(([, mpDir]) => JSON.stringify(mpDir)).join(", ");
  return `import sys\nfor _p in [${paths}]:\n    sys.path.append(_p)\n`;
}
