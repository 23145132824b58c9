import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import knexFactory from "knex";
import { runCli } from "../helpers/cli.js";
import { TEST_POSTGRES_URI } from "../helpers/db.js";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function get(port: number, pathname: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: pathname, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("running the bridge", function () {
  this.timeout(90_000);
  let dir: string;

  beforeEach(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "mwi-run-"));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeConfig(extra = ""): Promise<void> {
    await writeFile(
      path.join(dir, "config.yaml"),
      `homeserver:\n  url: http://127.0.0.1:1\n  domain: example.org\n${extra}`,
    );
    const reg = await runCli(["-r"], { cwd: dir });
    assert.equal(reg.code, 0, reg.stderr);
    const key = await runCli(["generate-key", "-f", "data/encryption.key"], { cwd: dir });
    assert.equal(key.code, 0, key.stderr);
  }

  /** Starts the bridge, checks /health and /ready once it listens, stops it with SIGTERM. */
  async function startCheckAndStop(port: number) {
    const seen: { health?: number; ready?: string } = {};
    const result = await runCli(["-p", String(port)], {
      cwd: dir,
      stopWhen: async (stderr) => {
        if (!stderr.includes("appservice listener ready")) return false;
        seen.health = (await get(port, "/health")).status;
        seen.ready = (await get(port, "/ready")).body;
        return true;
      },
    });
    return { result, seen };
  }

  it("starts on SQLite, migrates the empty database, answers /health, and stops cleanly on SIGTERM", async function () {
    await writeConfig();
    const port = await freePort();
    const { result, seen } = await startCheckAndStop(port);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(seen.health, 200);
    assert.match(seen.ready ?? "", /"name":"database","ok":true/);
    // The embedded gatekeeper is connected by then: it reports so, not "no network configured".
    assert.match(seen.ready ?? "", /"name":"gatekeeper","ok":true\}/);
    assert.doesNotMatch(seen.ready ?? "", /no network connection configured/);
    assert.match(result.stderr, /database migrated/);
    assert.match(result.stderr, /stopped/);

    const again = await startCheckAndStop(port);
    assert.equal(again.result.code, 0, again.result.stderr);
    assert.match(again.result.stderr, /database schema is current/);
  });

  it("a SIGTERM while the bridge is still starting stops it cleanly once started, exit code 0", async function () {
    await writeConfig();
    const port = await freePort();
    // The signal goes out as soon as the database is migrated, long before the listener is up.
    const result = await runCli(["-p", String(port)], {
      cwd: dir,
      stopWhen: (stderr) => stderr.includes("database migrated"),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /stopping as soon as the start-up has finished/);
    assert.match(result.stderr, /stopped/);
  });

  it("starts on PostgreSQL and migrates the empty database", async function () {
    const schema = `run_${Date.now().toString(36)}`;
    const admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
    await admin.raw(`create schema "${schema}"`);
    try {
      const uri = `${TEST_POSTGRES_URI}?options=-csearch_path%3D${schema}`;
      await writeConfig(`database:\n  type: postgres\n  uri: "${uri}"\n`);
      const { result, seen } = await startCheckAndStop(await freePort());
      assert.equal(result.code, 0, result.stderr);
      assert.equal(seen.health, 200);
      assert.match(result.stderr, /database migrated/);
      const { rows } = await admin.raw(
        "select count(*)::int as n from information_schema.tables where table_schema = ?",
        [schema],
      );
      assert.ok(rows[0].n >= 10, `tables created in ${schema}`);
    } finally {
      await admin.raw(`drop schema "${schema}" cascade`);
      await admin.destroy();
    }
  });

  it("a port in use stops the start with a clear line and exit code 1", async function () {
    await writeConfig();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const result = await runCli(["-p", String(port)], { cwd: dir });
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`error: cannot listen on 127\\.0\\.0\\.1:${port}`));
      assert.equal(
        result.stderr.match(/EADDRINUSE/g)?.length,
        1,
        `the cause once: ${result.stderr}`,
      );
    } finally {
      blocker.close();
    }
  });

  it("a missing encryption key stops the start and says how to create one", async function () {
    await writeConfig();
    await rm(path.join(dir, "data/encryption.key"));
    const result = await runCli(["-p", String(await freePort())], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: no usable encryption key in encryption\.key_file/m);
    assert.match(result.stderr, /generate-key -f/);
    assert.equal(result.stderr.match(/ENOENT/g)?.length, 1, `the cause once: ${result.stderr}`);
  });

  it("another encryption key than the database was written with stops the start", async function () {
    await writeConfig();
    const port = await freePort();
    const first = await startCheckAndStop(port);
    assert.equal(first.result.code, 0, first.result.stderr);
    const replaced = await runCli(["generate-key", "-f", "data/encryption.key", "--force"], {
      cwd: dir,
    });
    assert.equal(replaced.code, 0, replaced.stderr);
    const result = await runCli(["-p", String(port)], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^error: the encryption key in .* is not the one this database was written with/m,
    );
  });

  it("a missing registration file names the command that creates it", async function () {
    await writeFile(
      path.join(dir, "config.yaml"),
      "homeserver:\n  url: http://127.0.0.1:1\n  domain: example.org\n",
    );
    const result = await runCli([], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /registration\.yaml.*generate it with `matrix-whatsapp-interop -r/);
  });
});
