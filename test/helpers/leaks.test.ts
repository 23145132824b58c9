import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const require = createRequire(import.meta.url);
// As test/helpers/cli.ts: resolved with require's resolver, not import.meta.resolve.
const TSX = pathToFileURL(require.resolve("tsx")).href;
const MOCHA = fileURLToPath(new URL("../../node_modules/mocha/bin/mocha.js", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs mocha on one fixture with the leak report loaded as .mocharc.json loads it, without --exit,
 * until the process ends by itself (the leaking fixture's timer holds it 6 s).
 */
function runMocha(fixture: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        TSX,
        MOCHA,
        "--no-config",
        "--no-exit",
        "--extension",
        "ts",
        "--require",
        "test/helpers/leaks.ts",
        `test/helpers/fixtures/${fixture}`,
      ],
      { cwd: ROOT, env: { ...process.env, CI: "", REPORT_LEAKS: "", ...env } },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the report of what keeps mocha running after the tests (test/helpers/leaks.ts)", function () {
  this.timeout(60_000);

  it("names a timer a test left armed, with where it was created, and does not fail the run", async function () {
    const run = await runMocha("leaves-a-timer.fixture.ts", { REPORT_LEAKS: "1" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /1 passing/);
    assert.match(run.stderr, /\[leaks\] \d+ ms after the last test the process is still running/);
    assert.match(
      run.stderr,
      /--- Timeout \(setTimeout 6000 ms\)\n +at .*leaves-a-timer\.fixture\.ts:/,
    );
  });

  it("without tracking, still says that something is left and which kind", async function () {
    const run = await runMocha("leaves-a-timer.fixture.ts", {});
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /active resources: .*Timeout/);
    assert.match(run.stderr, /Run with REPORT_LEAKS=1/);
  });

  it("ends a run that a leak holds past the limit, with a failure that says so", async function () {
    const run = await runMocha("leaves-a-timer.fixture.ts", { LEAK_HOLD_LIMIT_MS: "3000" });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /1 passing/);
    assert.match(
      run.stderr,
      /\[leaks\] still running 3 s after the last test: ended with a failure/,
    );
  });

  it("says nothing, and lets the process end, when the tests leave nothing behind", async function () {
    const run = await runMocha("cleans-up.fixture.ts", { REPORT_LEAKS: "1" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /1 passing/);
    assert.doesNotMatch(run.stderr, /\[leaks\]/);
  });
});
