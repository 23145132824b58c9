import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import { runCli } from "../helpers/cli.js";
import { TEST_POSTGRES_URI } from "../helpers/db.js";
import { dropDatabase, freshDatabase, setReadOnly } from "./pg.js";
import { freePort } from "./world.js";

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
});
