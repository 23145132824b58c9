import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

/**
 * In a fresh process (this one has loaded everything already): whether undici is loaded after
 * importing the Matrix HTTP modules and making a media client, and again after one homeserver
 * request and one media download against a local server.
 */
async function undiciLoaded(): Promise<{ atStart: boolean; afterUse: boolean; answered: unknown }> {
  const http = pathToFileURL(path.join(ROOT, "src/matrix/http.ts")).href;
  const media = pathToFileURL(path.join(ROOT, "src/matrix/media.ts")).href;
  const script = `
    import { createRequire } from "node:module";
    import { createServer } from "node:http";
    const cache = createRequire(import.meta.url).cache;
    const loaded = () => Object.keys(cache).some((f) => /node_modules\\/undici\\//.test(f));
    const { homeserverRequest, closeHomeserverPools } = await import(${JSON.stringify(http)});
    const { MatrixMedia } = await import(${JSON.stringify(media)});
    const server = createServer((req, res) => {
      res.setHeader("content-type", req.url.includes("/media/") ? "application/octet-stream" : "application/json");
      res.end(req.url.includes("/media/") ? "bytes" : JSON.stringify({ ok: true }));
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = "http://127.0.0.1:" + server.address().port;
    const client = new MatrixMedia({ homeserverUrl: url, asToken: "t", maxBytes: 100 });
    const atStart = loaded();
    const answered = await homeserverRequest({ homeserverUrl: url, accessToken: "t" }, undefined, "GET", "/x", undefined);
    const chunks = [];
    for await (const chunk of await client.download("mxc://example.org/abc")) chunks.push(chunk);
    await client.close();
    await closeHomeserverPools();
    server.close();
    process.stdout.write(JSON.stringify({ atStart, afterUse: loaded(), answered }));
  `;
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", script],
    { cwd: ROOT, timeout: 60_000 },
  );
  return JSON.parse(stdout) as { atStart: boolean; afterUse: boolean; answered: unknown };
}

describe("the Matrix side's HTTP client", function () {
  this.timeout(90_000);

  it("is loaded on the first homeserver request, not by an idle bridge", async function () {
    const { atStart, afterUse, answered } = await undiciLoaded();
    assert.equal(atStart, false, "undici was loaded before any request");
    assert.deepEqual(answered, { ok: true });
    assert.equal(afterUse, true);
  });
});
