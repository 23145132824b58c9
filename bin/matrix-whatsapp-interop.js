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
const { main } = await import("../dist/src/main.js");
// Exit explicitly: a library timer left behind after a failed start must not keep the process up.
process.exit(await main(process.argv.slice(2)));
