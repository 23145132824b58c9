#!/usr/bin/env node
// Launcher: check the Node.js version before loading anything that needs a newer one, so that an
// old `node` on PATH gives one clear line instead of a syntax or import error.
const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  process.stderr.write(
    `error: matrix-whatsapp-interop needs Node.js 24 or newer, this is ${process.version}.\n` +
      "Run it through npm (npm start, npx matrix-whatsapp-interop), which uses the Node 24 that\n" +
      "`npm ci` installs into node_modules/.bin, or install Node.js 24.\n",
  );
  process.exit(1);
}
// Started by npm (`npx`, `npm start`), this process runs under `npm exec` → `sh -c` → here. A
// SIGTERM to npm reaches the shell, which dies without passing it on, and left the bridge running
// as an orphan. So under npm, losing the parent counts as being told to stop: the same graceful
// SIGTERM path as a direct signal. Not elsewhere: a bridge started with `nohup … &` from a shell
// that exits must keep running.
if (process.env.npm_command !== undefined) {
  const parent = process.ppid;
  const watch = globalThis.setInterval(() => {
    if (process.ppid === parent) return;
    globalThis.clearInterval(watch);
    process.kill(process.pid, "SIGTERM");
  }, 250);
  watch.unref();
}
const { main } = await import("../dist/src/main.js");
// Exit explicitly: a library timer left behind after a failed start must not keep the process up.
process.exit(await main(process.argv.slice(2)));
