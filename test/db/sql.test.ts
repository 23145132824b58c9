import assert from "node:assert/strict";
import { SqlRunner, runnerStats } from "../../src/db/sql.js";
import { createTestDatabase, describeOnBackends, type TestDatabase } from "../helpers/db.js";

describeOnBackends("hot-path transactions on the pooled connection", (get) => {
  const count = async () => {
    const rows = (await get().db.knex("sql_probe").count({ n: "*" })) as { n: number | string }[];
    return Number(rows[0]?.n ?? 0);
  };

  before(async function () {
    await get().db.knex.schema.createTable("sql_probe", (t) => {
      t.increments("id").primary();
      t.string("name", 64).notNullable().unique();
      t.binary("body");
      t.boolean("flag").notNullable();
    });
  });
  beforeEach(async function () {
    await get().db.knex("sql_probe").delete();
  });

  it("commits prepared statements and builder queries of one transaction together", async function () {
    const sql = SqlRunner.of(get().db.knex);
    const body = Buffer.from([0, 1, 2, 255]);
    const id = await sql.transaction(async (tx) => {
      const [row] = await tx.all<{ id: number | string }>(
        "insert into sql_probe (name, body, flag) values (?, ?, ?) returning id",
        ["prepared", body, true],
      );
      await tx("sql_probe").insert({ name: "builder", body: null, flag: false });
      return Number(row?.id);
    });
    const rows = (await get().db.knex("sql_probe").orderBy("id")) as {
      id: number;
      name: string;
      body: Buffer | null;
      flag: boolean | number;
    }[];
    assert.deepEqual(
      rows.map((r) => [r.name, r.body === null ? null : Buffer.from(r.body), Boolean(r.flag)]),
      [
        ["prepared", body, true],
        ["builder", null, false],
      ],
    );
    assert.equal(rows[0]?.id, id);
  });

  it("rolls back everything, prepared and builder, when the transaction throws", async function () {
    const sql = SqlRunner.of(get().db.knex);
    await assert.rejects(
      sql.transaction(async (tx) => {
        await tx.run("insert into sql_probe (name, flag) values (?, ?)", ["a", true]);
        await tx("sql_probe").insert({ name: "b", flag: true });
        throw new Error("caller failed after its writes");
      }),
      /caller failed after its writes/,
    );
    assert.equal(await count(), 0);
    // The connection went back to the pool usable, outside any transaction.
    await get().db.knex("sql_probe").insert({ name: "after", flag: false });
    assert.equal(await count(), 1);
  });

  it("names the statement in a failing statement's error and keeps the driver's code", async function () {
    const sql = SqlRunner.of(get().db.knex);
    await sql.connection((tx) =>
      tx.run("insert into sql_probe (name, flag) values (?, ?)", ["x", true]),
    );
    const err = await sql
      .transaction((tx) => tx.run("insert into sql_probe (name, flag) values (?, ?)", ["x", true]))
      .then(
        () => assert.fail("a duplicate name must fail"),
        (e: unknown) => e as Error & { code?: unknown },
      );
    assert.match(err.message, /insert into sql_probe/);
    assert.ok(err.code !== undefined, "the driver's error code is kept");
    assert.equal(await count(), 1);
  });

  it("reuses a prepared statement with new values and reports changed rows", async function () {
    const sql = SqlRunner.of(get().db.knex);
    const changed = await sql.connection(async (tx) => {
      for (const name of ["p", "q", "r"]) {
        await tx.run("insert into sql_probe (name, flag) values (?, ?)", [name, false]);
      }
      return tx.run("update sql_probe set flag = ? where name <> ?", [true, "q"]);
    });
    assert.equal(changed, 2);
    const flagged = await sql.connection((tx) =>
      tx.all<{ name: string }>("select name from sql_probe where flag = ? order by name", [true]),
    );
    assert.deepEqual(
      flagged.map((r) => r.name),
      ["p", "r"],
    );
  });
  it("commits transactions queued in the same turn together, each caller after the commit", async function () {
    const sql = SqlRunner.of(get().db.knex);
    const groupsBefore = runnerStats.groups;
    const insert = (name: string) =>
      sql.transaction((tx) =>
        tx.run("insert into sql_probe (name, flag) values (?, ?)", [name, true]),
      );
    const seen: number[] = [];
    await Promise.all(
      ["g1", "g2", "g3", "g4"].map((name) =>
        insert(name).then(async () => {
          // Resumed after COMMIT: another query (outside the group) sees every row of the group.
          seen.push(await count());
        }),
      ),
    );
    assert.equal(runnerStats.groups - groupsBefore, 1, "one commit for the four transactions");
    assert.deepEqual(seen, [4, 4, 4, 4]);
  });

  it("rolls back only the failing transaction of a group; the others commit", async function () {
    const sql = SqlRunner.of(get().db.knex);
    const groupsBefore = runnerStats.groups;
    const results = await Promise.allSettled([
      sql.transaction((tx) =>
        tx.run("insert into sql_probe (name, flag) values (?, ?)", ["ok1", true]),
      ),
      sql.transaction(async (tx) => {
        await tx.run("insert into sql_probe (name, flag) values (?, ?)", ["undone", true]);
        // The same name again: a constraint error after a write of its own.
        await tx.run("insert into sql_probe (name, flag) values (?, ?)", ["undone", true]);
      }),
      sql.connection((tx) =>
        tx.run("insert into sql_probe (name, flag) values (?, ?)", ["ok2", true]),
      ),
    ]);
    // The group is rolled back with the failing one; the other two commit in the next.
    assert.equal(runnerStats.groups - groupsBefore, 2);
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "rejected", "fulfilled"],
    );
    const names = (await get().db.knex("sql_probe").orderBy("name").select("name")) as {
      name: string;
    }[];
    assert.deepEqual(
      names.map((r) => r.name),
      ["ok1", "ok2"],
    );
  });
});

describe("knex on SQLite through the per-connection statement cache", function () {
  let test: TestDatabase;
  before(async function () {
    test = await createTestDatabase("sqlite", { migrate: false });
    await test.db.knex.schema.createTable("cache_probe", (t) => {
      t.increments("id").primary();
      t.string("name", 64).notNullable().unique();
    });
  });
  after(async function () {
    await test.dispose();
  });

  it("keeps insert ids and changed-row counts across reuses of one statement", async function () {
    const knex = test.db.knex;
    const ids: number[] = [];
    for (const name of ["a", "b", "c"]) {
      const [id] = (await knex("cache_probe").insert({ name })) as number[];
      ids.push(Number(id));
    }
    assert.deepEqual(ids, [1, 2, 3]);
    assert.equal(
      await knex("cache_probe")
        .where("id", ">", 1)
        .update({ name: knex.raw("name || 'x'") }),
      2,
    );
    assert.equal(await knex("cache_probe").where("id", ">", 1).delete(), 2);
  });

  it("rejects a statement that cannot be prepared, and the next query still works", async function () {
    const knex = test.db.knex;
    await assert.rejects(knex.raw("select * from no_such_table"), /no such table/);
    await assert.rejects(knex("cache_probe").insert({ name: "a" }), /UNIQUE/);
    assert.equal((await knex("cache_probe").select("name")).length, 1);
  });
});
