import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The bridge processes (not npm, not the shell) whose command line names `marker`. */
async function bridgePids(marker: string): Promise<number[]> {
  const { stdout } = await run("ps", ["-eo", "pid=,args="]);
  return stdout
    .split("\n")
    .filter((line) => line.includes(marker) && /^\s*\d+\s+\S*node\s/.test(line))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

/** The installed program as an admin runs it: `npx` in the checkout, the build in dist/. */
describe("npx matrix-whatsapp-interop", function () {
  this.timeout(180_000);
  let dir: string;
  const started: number[] = [];

  before(async function () {
    // bin/ runs the build: make it match the sources under test. The bridge started here runs
    // the embedded default, so the build is the embedded one (the product build plus simulator/).
    await run("npm", ["run", "-s", "build:embedded"], { cwd: ROOT });
  });
  beforeEach(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "mwi-npx-"));
  });
  afterEach(async function () {
    for (const pid of started.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  it("prints no npm warnings", async function () {
    const { stdout, stderr } = await run("npx", ["matrix-whatsapp-interop", "--version"], {
      cwd: ROOT,
    });
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
    assert.doesNotMatch(stderr, /npm warn/i);
  });

  it("stopping the npx process stops the bridge gracefully", async function () {
    const init = await run(
      "npx",
      [
        "matrix-whatsapp-interop",
        "init",
        "-d",
        dir,
        "--homeserver-url",
        "http://127.0.0.1:9",
      ].concat(["--domain", "hs.test"]),
      { cwd: ROOT },
    );
    assert.match(init.stdout, /created/);
    const config = path.join(dir, "config.yaml");
    const npx = spawn(
      "npx",
      ["matrix-whatsapp-interop", "-c", config, "-p", String(await freePort())],
      {
        cwd: ROOT,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    started.push(npx.pid ?? 0);
    let stderr = "";
    npx.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 60_000;
    while (!stderr.includes("appservice listener ready")) {
      assert.ok(Date.now() < deadline, `the bridge did not start: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const bridges = await bridgePids(config);
    assert.equal(bridges.length, 1, `one bridge process: ${bridges.join(",")}`);
    const bridge = bridges[0] ?? 0;
    started.push(bridge);
    npx.kill("SIGTERM");
    const stopBy = Date.now() + 20_000;
    while (alive(bridge) && Date.now() < stopBy) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(alive(bridge), false, "the bridge stopped with npx");
  });

  it("sqlite3 is built from source: prebuild-install finds the project's setting", async function () {
    // An installed checkout: the project's files at the top, the addon below node_modules.
    const project = path.join(dir, "project");
    const addon = path.join(project, "node_modules", "sqlite3");
    await mkdir(addon, { recursive: true });
    await copyFile(
      path.join(ROOT, ".prebuild-installrc"),
      path.join(project, ".prebuild-installrc"),
    );
    await writeFile(path.join(addon, "package.json"), JSON.stringify({ name: "sqlite3" }));
    const rc = path.join(ROOT, "node_modules", "prebuild-install", "rc.js");
    const { stdout } = await run(
      process.execPath,
      [
        "-e",
        `console.log(JSON.stringify(require(${JSON.stringify(rc)})({ name: "sqlite3" }).buildFromSource))`,
      ],
      { cwd: addon, env: { PATH: process.env["PATH"] ?? "" } },
    );
    assert.equal(JSON.parse(stdout), true);
  });
});
