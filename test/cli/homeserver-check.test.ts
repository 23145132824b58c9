import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { readRegistration } from "../../src/cli/registration-file.js";
import { createTestHomeserver, type TestHomeserver } from "../homeserver/index.js";
import { runCli } from "../helpers/cli.js";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function getReady(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/ready", timeout: 10_000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("start-up checks against the homeserver", function () {
  this.timeout(120_000);
  let cwd: string;
  let hs: TestHomeserver | undefined;
  let hsPort: number;

  beforeEach(async function () {
    cwd = await mkdtemp(path.join(tmpdir(), "mwi-hscheck-"));
    hsPort = await freePort();
    const init = await runCli(
      [
        "init",
        "-d",
        "data",
        "--homeserver-url",
        `http://127.0.0.1:${hsPort}`,
        "--domain",
        "hs.test",
      ],
      { cwd },
    );
    assert.equal(init.code, 0, init.stderr);
  });
  afterEach(async function () {
    await hs?.stop();
    hs = undefined;
    await rm(cwd, { recursive: true, force: true });
  });

  async function startHomeserver(withRegistration: boolean): Promise<TestHomeserver> {
    const registration = await readRegistration(path.join(cwd, "data/registration.yaml"));
    hs = createTestHomeserver({
      serverName: "hs.test",
      port: hsPort,
      appservices: withRegistration ? [registration] : [],
    });
    await hs.start();
    return hs;
  }

  it("a homeserver that rejects the as_token stops the bridge with one line naming the registration file", async function () {
    await startHomeserver(false);
    const result = await runCli(["-c", "data/config.yaml", "-p", String(await freePort())], {
      cwd,
    });
    assert.equal(result.code, 1, result.stderr);
    const errors = result.stderr.split("\n").filter((line) => line.startsWith("error:"));
    assert.equal(errors.length, 1, result.stderr);
    assert.match(
      errors[0] ?? "",
      /rejects the appservice token .*give data\/registration\.yaml to the homeserver/,
    );
  });

  it("while the homeserver is unreachable the bridge keeps trying, /ready is 503 naming it, and it becomes ready once the homeserver answers", async function () {
    const server = await startHomeserver(true);
    const endOutage = server.outage({ unreachable: true });
    const port = await freePort();
    const seen: { whileDown?: { status: number; body: string }; afterwards?: number } = {};
    const result = await runCli(["-c", "data/config.yaml", "-p", String(port)], {
      cwd,
      stopWhen: async (stderr) => {
        if (!stderr.includes("appservice listener ready")) return false;
        if (seen.whileDown === undefined) {
          seen.whileDown = await getReady(port);
          endOutage();
          return false;
        }
        if (!stderr.includes("the homeserver accepts the appservice token")) return false;
        seen.afterwards = (await getReady(port)).status;
        return true;
      },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(seen.whileDown?.status, 503);
    const checks = (
      JSON.parse(seen.whileDown?.body ?? "{}") as {
        checks: { name: string; ok: boolean; detail?: string }[];
      }
    ).checks;
    const access = checks.find((check) => check.name === "homeserver-appservice");
    assert.equal(access?.ok, false);
    assert.match(access?.detail ?? "", new RegExp(`http://127\\.0\\.0\\.1:${hsPort}`));
    assert.equal(seen.afterwards, 200);
  });

  it("a registration written for another domain stops the start and says how to write a matching one", async function () {
    const configFile = path.join(cwd, "data/config.yaml");
    const text = await readFile(configFile, "utf8");
    await writeFile(configFile, text.replace('domain: "hs.test"', 'domain: "other.test"'));
    const result = await runCli(["-c", "data/config.yaml", "-p", String(await freePort())], {
      cwd,
    });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^error: data\/registration\.yaml does not match data\/config\.yaml; write a new one with `matrix-whatsapp-interop -r -c data\/config\.yaml -f data\/registration\.yaml --force`/m,
    );
    assert.match(result.stderr, /namespaces\.users: .*homeserver\.domain is other\.test/);
  });
});
