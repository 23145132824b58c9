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

  /** Points the registration at the port the bridge will listen on (`-p`), as a deployment does. */
  async function registerAt(port: number): Promise<void> {
    const file = path.join(cwd, "data/registration.yaml");
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace(/^url: .*$/m, `url: http://127.0.0.1:${port}`));
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
    const port = await freePort();
    await registerAt(port);
    const server = await startHomeserver(true);
    const endOutage = server.outage({ unreachable: true });
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

  it("a homeserver that cannot reach the bridge's url: one error line with the fix, and /ready names it", async function () {
    // The first-run trap: the registration says localhost:29330 (init's default), the bridge
    // listens elsewhere; the bridge reaches the homeserver, so nothing else would tell.
    await startHomeserver(true);
    const port = await freePort();
    let answer: { status: number; body: string } | undefined;
    const result = await runCli(["-c", "data/config.yaml", "-p", String(port)], {
      cwd,
      stopWhen: async (stderr) => {
        if (!stderr.includes("the homeserver cannot reach the bridge")) return false;
        if (!stderr.includes("appservice listener ready")) return false;
        answer = await getReady(port);
        return true;
      },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `the homeserver cannot reach the bridge at http://localhost:29330: .*the bridge listens on 127\\.0\\.0\\.1:${port}.*regenerate the registration with -r`,
      ),
    );
    assert.equal(answer?.status, 503, answer?.body);
    const checks = (
      JSON.parse(answer?.body ?? "{}") as {
        checks: { name: string; ok: boolean; detail?: string }[];
      }
    ).checks;
    const reach = checks.find((check) => check.name === "homeserver-reaches-bridge");
    assert.equal(reach?.ok, false);
    assert.match(reach?.detail ?? "", /M_CONNECTION_FAILED/);
  });

  it("the homeserver's ping reaches the bridge, which says so; unknown paths answer JSON M_UNRECOGNIZED", async function () {
    const port = await freePort();
    await registerAt(port);
    await startHomeserver(true);
    const registration = await readRegistration(path.join(cwd, "data/registration.yaml"));
    const seen: { ready?: number; unknown?: Response; unknownBody?: unknown; ping?: number } = {};
    const result = await runCli(["-c", "data/config.yaml", "-p", String(port)], {
      cwd,
      stopWhen: async (stderr) => {
        if (!stderr.includes("the homeserver reaches the bridge")) return false;
        if (!stderr.includes("appservice listener ready")) return false;
        seen.ready = (await getReady(port)).status;
        const base = `http://127.0.0.1:${port}`;
        const auth = { authorization: `Bearer ${registration.hs_token}` };
        seen.unknown = await fetch(`${base}/_matrix/app/v1/nothing-here`, { headers: auth });
        seen.unknownBody = await seen.unknown.json().catch(() => undefined);
        seen.ping = (
          await fetch(`${base}/_matrix/app/v1/ping`, {
            method: "POST",
            headers: { ...auth, "content-type": "application/json" },
            body: JSON.stringify({ transaction_id: "t1" }),
          })
        ).status;
        return true;
      },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(seen.ready, 200);
    assert.equal(seen.ping, 200);
    assert.equal(seen.unknown?.status, 404);
    assert.deepEqual(seen.unknownBody, {
      errcode: "M_UNRECOGNIZED",
      error: "Unrecognized request",
    });
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
