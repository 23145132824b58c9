import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { loadEmbeddedGatekeeper } from "../../src/cli/embedded-entry.js";
import { BridgeError } from "../../src/util/errors.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);
const tsc = path.join(ROOT, "node_modules", ".bin", "tsc");

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/** The source files a build config compiles (each one is emitted). */
async function programFiles(project: string): Promise<string[]> {
  const { stdout } = await run(tsc, ["-p", project, "--listFilesOnly"], { cwd: ROOT });
  return stdout
    .split("\n")
    .filter((f) => f !== "" && !f.includes("/node_modules/"))
    .map((f) => path.relative(ROOT, f));
}

describe("the product build and the embedded gatekeeper", function () {
  this.timeout(240_000);
  // Beside dist/ (same depth), so that the build finds node_modules and package.json as dist/ does.
  const out = path.join(ROOT, ".product-build-test");
  let data: string;

  before(async function () {
    await rm(out, { recursive: true, force: true });
    await run(tsc, ["-p", "tsconfig.build.json", "--outDir", out], { cwd: ROOT });
    data = await mkdtemp(path.join(tmpdir(), "mwi-product-"));
  });
  after(async function () {
    await rm(out, { recursive: true, force: true });
    if (data !== undefined) await rm(data, { recursive: true, force: true });
  });

  it("the product build (npm run build, prepare, the default image) has no simulator file", async function () {
    const files = await filesUnder(out);
    assert.ok(files.includes(path.join("src", "main.js")), "the bridge itself is built");
    assert.ok(files.includes(path.join("src", "cli", "embedded-entry.js")));
    const leaked = files.filter(
      (f) => f.startsWith("simulator" + path.sep) || f.includes("embedded-gatekeeper"),
    );
    assert.deepEqual(leaked, []);
  });

  it("an embedded config on the product build fails at start with what to do", async function () {
    // What bin/ does, with the build under test instead of dist/.
    const cli = (...args: string[]) =>
      run(process.execPath, [
        "--input-type=module",
        "-e",
        "const { main } = await import(process.argv[1]); process.exit(await main(process.argv.slice(2)));",
        path.join(out, "src", "main.js"),
        ...args,
      ]);
    await cli("init", "-d", data, "--homeserver-url", "http://127.0.0.1:9", "--domain", "hs.test");
    const result = await cli("-c", path.join(data, "config.yaml")).then(
      () => assert.fail("the bridge started without a gatekeeper"),
      (err: { code?: number; stderr?: string }) => err,
    );
    assert.equal(result.code, 1);
    assert.match(String(result.stderr), /no embedded gatekeeper.*npm run build:embedded/);
  });

  it("the embedded build (npm start, the demo image) adds the simulator and its entry point", async function () {
    const files = await programFiles("tsconfig.embedded.json");
    assert.ok(files.includes(path.join("simulator", "embedded-gatekeeper.ts")));
    assert.ok(files.includes(path.join("simulator", "main.ts")));
  });

  it("from the sources the embedded entry point loads (the path of npm start and the tests)", async function () {
    assert.equal(typeof (await loadEmbeddedGatekeeper()), "function");
  });

  it("an entry point that is not there is a StartupError naming the fix", async function () {
    await assert.rejects(
      loadEmbeddedGatekeeper("./embedded-gatekeeper-absent.js"),
      (err: unknown) =>
        err instanceof BridgeError &&
        err.code === "embedded-gatekeeper-not-built" &&
        /build:embedded/.test(err.message),
    );
  });
});
