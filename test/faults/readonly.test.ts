import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import { runCli } from "../helpers/cli.js";
import { TEST_POSTGRES_URI } from "../helpers/db.js";
import { assertExactlyOnce, Burst } from "./counting.js";
import { FaultWorld, freePort, openConversation, sleep, waitFor } from "./world.js";

/** A fresh PostgreSQL database (not a schema: read-only is a database setting), dropped after. */
async function freshDatabase(admin: Knex): Promise<{ name: string; uri: string }> {
  const name = `faults_ro_${randomBytes(5).toString("hex")}`;
  await admin.raw(`create database "${name}"`);
  const uri = new URL(TEST_POSTGRES_URI);
  uri.pathname = `/${name}`;
  return { name, uri: uri.toString() };
}

async function dropDatabase(admin: Knex, name: string): Promise<void> {
  await admin.raw(
    "select pg_terminate_backend(pid) from pg_stat_activity where datname = ? and pid <> pg_backend_pid()",
    [name],
  );
  await admin.raw(`drop database if exists "${name}"`);
}

async function setReadOnly(admin: Knex, name: string, readOnly: boolean): Promise<void> {
  await admin.raw(
    `alter database "${name}" set default_transaction_read_only = ${readOnly ? "on" : "off"}`,
  );
  // The setting applies to new sessions: end the bridge's, so that its pool reconnects.
  await admin.raw(
    "select pg_terminate_backend(pid) from pg_stat_activity where datname = ? and pid <> pg_backend_pid()",
    [name],
  );
}

describe("fault: a read-only database", function () {
  this.timeout(300_000);
  let admin: Knex;
  const databases: string[] = [];

  before(function () {
    admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI, pool: { min: 0, max: 2 } });
  });

  after(async function () {
    for (const name of databases) await dropDatabase(admin, name).catch(() => undefined);
    await admin.destroy();
  });

  it("refuses to start with one clear error line and leaves the database untouched", async function () {
    const db = await freshDatabase(admin);
    databases.push(db.name);
    await setReadOnly(admin, db.name, true);
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-ro-"));
    try {
      await writeFile(
        path.join(dir, "config.yaml"),
        "homeserver:\n  url: http://127.0.0.1:1\n  domain: example.org\n" +
          `database:\n  type: postgres\n  uri: "${db.uri}"\n`,
      );
      assert.equal((await runCli(["-r"], { cwd: dir })).code, 0);
      const key = await runCli(["generate-key", "-f", "data/encryption.key"], { cwd: dir });
      assert.equal(key.code, 0, key.stderr);
      const result = await runCli(["-p", String(await freePort())], { cwd: dir });
      process.stdout.write(`      ${result.stderr.trim().split("\n").at(-1) ?? ""}\n`);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^error: .*read-only/m);
      const probe = knexFactory({ client: "pg", connection: db.uri });
      try {
        const { rows } = (await probe.raw(
          "select count(*)::int as n from information_schema.tables where table_schema = 'public'",
        )) as { rows: { n: number }[] };
        assert.equal(rows[0]?.n, 0, "no table was created: no partial migration");
      } finally {
        await probe.destroy();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("while running: work waits with a clear error, and nothing is lost once it is writable again", async function () {
    const db = await freshDatabase(admin);
    databases.push(db.name);
    const world = await FaultWorld.start({ postgresUri: db.uri });
    try {
      await world.startBridge();
      const conversation = await openConversation(world, "alice", "+491700000001", "+491701111111");
      const burst = new Burst(conversation, 100);
      let logBefore = 0;
      let readOnlyPhase: Promise<void> = Promise.resolve();
      await burst.send(0, 100, async (n) => {
        if (n !== 30) return;
        logBefore = world.bridgeLog.length;
        await setReadOnly(admin, db.name, true);
        readOnlyPhase = (async () => {
          await waitFor("the bridge to report the read-only database", () =>
            /read-only transaction/.test(world.bridgeLog.slice(logBefore)),
          );
          await sleep(3000);
          await setReadOnly(admin, db.name, false);
        })();
      });
      await readOnlyPhase;
      const tally = await burst.settle(world);
      const line = world.bridgeLog
        .slice(logBefore)
        .split("\n")
        .find((l) => /read-only transaction/.test(l));
      process.stdout.write(`      ${line?.slice(0, 200) ?? ""}\n`);
      assert.ok(world.bridgeRunning, "the bridge kept running");
      assertExactlyOnce(tally, { world });
    } finally {
      await world.stop();
    }
  });
});
