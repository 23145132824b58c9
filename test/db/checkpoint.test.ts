import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { startCheckpointer } from "../../src/db/checkpointer.js";
import { SqlRunner } from "../../src/db/sql.js";
import { createTestDatabase, type TestDatabase } from "../helpers/db.js";

describe("SQLite checkpoints off the message path", function () {
  this.timeout(20_000);
  let test: TestDatabase;
  before(async function () {
    test = await createTestDatabase("sqlite", { migrate: false });
    await test.db.knex.schema.createTable("wal_probe", (t) => {
      t.increments("id").primary();
      t.binary("body");
    });
  });
  after(async function () {
    await test.dispose();
  });

  const walFrames = async (): Promise<number> => {
    const [row] = await SqlRunner.of(test.db.knex).connection((tx) =>
      tx.all<{ log: number }>("PRAGMA wal_checkpoint(PASSIVE)"),
    );
    return Number(row?.log);
  };

  it("no commit checkpoints on the bridge's connection; a worker keeps the WAL short", async function () {
    const sql = SqlRunner.of(test.db.knex);
    const [setting] = await sql.connection((tx) =>
      tx.all<{ wal_autocheckpoint: number }>("PRAGMA wal_autocheckpoint"),
    );
    assert.equal(setting?.wal_autocheckpoint, 0, "a COMMIT never runs a checkpoint itself");
    const body = Buffer.alloc(3000, 1);
    for (let i = 0; i < 40; i++) {
      await sql.transaction(async (tx) => {
        for (let j = 0; j < 50; j++)
          await tx.run("insert into wal_probe (body) values (?)", [body]);
      });
    }
    // Far more than SQLite's 1,000-page automatic threshold went into the WAL; the worker copies
    // it into the database within about a second, and the next write starts the WAL over.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await sql.transaction((tx) => tx.run("insert into wal_probe (body) values (?)", [body]));
    const frames = await walFrames();
    assert.ok(frames < 50, `WAL restarted after the worker's checkpoint (${frames} frames)`);
  });

  it("the checkpoint worker starts only once the WAL grew: an idle database has none", async function () {
    const dir = mkdtempSync(path.join(tmpdir(), "mwi-checkpoint-"));
    const file = path.join(dir, "idle.db");
    const db = new DatabaseSync(file);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;");
    db.exec("create table t (body blob)");
    const checkpointer = startCheckpointer(file, 100, 64 * 1024);
    try {
      const insert = db.prepare("insert into t (body) values (?)");
      insert.run(Buffer.alloc(100, 1));
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(checkpointer.started, false, "a few bytes of WAL start no worker");
      db.exec("begin");
      for (let i = 0; i < 100; i++) insert.run(Buffer.alloc(3000, 1));
      db.exec("commit");
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(checkpointer.started, true, "a long WAL starts it");
      insert.run(Buffer.alloc(100, 1));
      const [row] = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").all() as { log: number }[];
      assert.ok(Number(row?.log) < 10, `the worker copied the WAL (${row?.log} frames left)`);
    } finally {
      await checkpointer.stop();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
