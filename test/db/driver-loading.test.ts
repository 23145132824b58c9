import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { TEST_POSTGRES_URI } from "../helpers/db.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

/**
 * The npm packages a fresh process has loaded after opening, querying and closing a database of
 * `type` through src/db/database.ts (a separate process: this one has loaded everything already),
 * and the JS type of the int8 value it read.
 */
async function openInFreshProcess(
  type: "sqlite" | "postgres",
  uri: string,
): Promise<{ packages: string[]; int8Type: string }> {
  const database = pathToFileURL(path.join(ROOT, "src/db/database.ts")).href;
  const script = `
    import { createRequire } from "node:module";
    const { openDatabase } = await import(${JSON.stringify(database)});
    const db = await openDatabase({ type: ${JSON.stringify(type)}, uri: ${JSON.stringify(uri)} });
    const row = await db.knex.first(db.knex.raw("cast(4000000000 as bigint) as n"));
    await db.close();
    const names = new Set();
    for (const file of Object.keys(createRequire(import.meta.url).cache)) {
      const match = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(file);
      if (match) names.add(match[1]);
    }
    process.stdout.write(JSON.stringify({ packages: [...names], int8Type: typeof row.n }));
  `;
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", script],
    { cwd: ROOT, timeout: 60_000 },
  );
  return JSON.parse(stdout) as { packages: string[]; int8Type: string };
}

describe("database drivers", function () {
  this.timeout(90_000);
  let dir: string;
  beforeEach(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "mwi-drivers-"));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it("a bridge on SQLite does not load the PostgreSQL driver", async function () {
    const { packages: loaded } = await openInFreshProcess("sqlite", path.join(dir, "bridge.db"));
    // The check sees packages at all: knex is what opened the database.
    assert.ok(loaded.includes("knex"), `knex not among ${loaded.join(", ")}`);
    assert.ok(!loaded.includes("pg"), "pg was loaded on SQLite");
    assert.ok(!loaded.includes("pg-pool"), "pg-pool was loaded on SQLite");
  });

  it("a bridge on PostgreSQL loads its driver and reads int8 columns as numbers", async function () {
    const { packages, int8Type } = await openInFreshProcess("postgres", TEST_POSTGRES_URI);
    assert.ok(packages.includes("pg"), `pg not among ${packages.join(", ")}`);
    assert.equal(int8Type, "number");
  });
});
