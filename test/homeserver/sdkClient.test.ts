import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const FIXTURE = fileURLToPath(new URL("./fixtures/sdk-clients-then-exit.ts", import.meta.url));
// As test/helpers/cli.ts: resolved with require's resolver, not import.meta.resolve.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
/** Generous for a loaded machine; js-sdk's stray timers alone held such a process 60 to 110 s. */
const EXIT_WITHIN_MS = 10_000;

describe("matrix-js-sdk test clients (sdkClient.ts)", function () {
  this.timeout(120_000);

  it("once stopped with their homeserver, crypto clients leave nothing that keeps the process running", async function () {
    const child = spawn(process.execPath, ["--import", TSX, FIXTURE], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => resolve(code)),
    );

    // Everything up to "stopped" is the scenario; the clock starts there.
    const stoppedAt = await new Promise<number>((resolve, reject) => {
      const onData = (): void => {
        if (!stdout.includes("stopped\n")) return;
        child.stdout.off("data", onData);
        resolve(Date.now());
      };
      child.stdout.on("data", onData);
      void exited.then(() =>
        reject(new Error(`the scenario ended before stopping: ${stdout}\n${stderr.slice(-4000)}`)),
      );
    });
    let deadline: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      exited.then((code) => ({ code })),
      new Promise<"running">((resolve) => {
        deadline = setTimeout(() => resolve("running"), EXIT_WITHIN_MS);
      }),
    ]).finally(() => clearTimeout(deadline));
    if (outcome === "running") {
      child.kill("SIGKILL");
      assert.fail(
        `the process still ran ${EXIT_WITHIN_MS} ms after its clients and homeserver stopped: ${stdout}`,
      );
    }
    assert.equal(outcome.code, 0, stderr.slice(-4000));
    assert.ok(Date.now() - stoppedAt < EXIT_WITHIN_MS);
  });
});
