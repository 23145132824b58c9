import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { load as loadYaml } from "js-yaml";
import knexFactory from "knex";
import { runCli } from "../helpers/cli.js";
import { TEST_POSTGRES_URI } from "../helpers/db.js";

const MINIMAL = "homeserver:\n  url: http://127.0.0.1:1\n  domain: example.org\n";

describe("command line", function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "mwi-cli-"));
    await writeFile(path.join(dir, "config.yaml"), MINIMAL);
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it("--version prints the package version", async function () {
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8"));
    const result = await runCli(["--version"], { cwd: dir });
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), pkg.version);
  });

  it("--help lists the commands and options", async function () {
    const result = await runCli(["--help"], { cwd: dir });
    assert.equal(result.code, 0);
    for (const word of ["-c, --config", "-r, --generate-registration", "-p, --port", "migrate"]) {
      assert.ok(result.stdout.includes(word), `help mentions ${word}`);
    }
  });

  it("an unknown option fails with one line and exit code 1", async function () {
    const result = await runCli(["--frobnicate"], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*frobnicate.*\n$/);
  });

  it("-r writes a registration with fresh tokens that the bridge can read, and never overwrites silently", async function () {
    const first = await runCli(["-r", "-u", "http://bridge:29330", "-f", "reg.yaml"], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    const reg = loadYaml(await readFile(path.join(dir, "reg.yaml"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(reg.url, "http://bridge:29330");
    assert.equal(reg.sender_localpart, "whatsappbot");
    assert.equal(reg.rate_limited, false);
    assert.equal(reg.receive_ephemeral, true);
    assert.notEqual(reg.as_token, reg.hs_token);
    const mode = (await stat(path.join(dir, "reg.yaml"))).mode & 0o777;
    assert.equal(mode, 0o600, "registration holds secrets: owner-only");

    const again = await runCli(["-r", "-f", "reg.yaml"], { cwd: dir });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists already/);
    const unchanged = loadYaml(await readFile(path.join(dir, "reg.yaml"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(unchanged.as_token, reg.as_token);

    const forced = await runCli(["-r", "-f", "reg.yaml", "--force"], { cwd: dir });
    assert.equal(forced.code, 0);
    const replaced = loadYaml(await readFile(path.join(dir, "reg.yaml"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.notEqual(replaced.as_token, reg.as_token);
  });

  it("a config with errors names each key and exits 1 without a stack trace", async function () {
    await writeFile(
      path.join(dir, "bad.yaml"),
      "homeserver:\n  url: 5\n  domain: example.org\ndatabase:\n  type: mysql\nloggin: {}\n",
    );
    const result = await runCli(["-c", "bad.yaml", "validate-config"], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /homeserver\.url: expected a string \(got number 5\)/);
    assert.match(result.stderr, /database\.type: .*sqlite.*postgres/);
    assert.match(result.stderr, /loggin: unknown key/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  });

  it("a missing config file is one clear line", async function () {
    const result = await runCli(["-c", "nope.yaml", "migrate"], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot read the config file nope\.yaml/);
  });

  it("migrate creates the SQLite database and is safe to run twice", async function () {
    const first = await runCli(["migrate"], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied \d+ migration\(s\): 0001_initial/);
    await stat(path.join(dir, "data", "bridge.db"));
    const second = await runCli(["migrate"], { cwd: dir });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /database schema is current/);
  });

  it("migrate on PostgreSQL migrates an empty database", async function () {
    const schema = `cli_${Date.now().toString(36)}`;
    const admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
    await admin.raw(`create schema "${schema}"`);
    try {
      const uri = `${TEST_POSTGRES_URI}?options=-csearch_path%3D${schema}`;
      await writeFile(
        path.join(dir, "pg.yaml"),
        `${MINIMAL}database:\n  type: postgres\n  uri: "${uri}"\n`,
      );
      const result = await runCli(["-c", "pg.yaml", "migrate"], { cwd: dir });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /applied \d+ migration/);
      const tables = await admin.raw(
        "select table_name from information_schema.tables where table_schema = ?",
        [schema],
      );
      const names = (tables.rows as { table_name: string }[]).map((r) => r.table_name);
      assert.ok(names.includes("portals") && names.includes("outbox"), names.join(","));
    } finally {
      await admin.raw(`drop schema "${schema}" cascade`);
      await admin.destroy();
    }
  });

  it("an unreachable database stops the start with a clear line and a non-zero exit", async function () {
    await writeFile(
      path.join(dir, "down.yaml"),
      `${MINIMAL}database:\n  type: postgres\n  uri: "postgresql://postgres@127.0.0.1:1/test"\n`,
    );
    const result = await runCli(["-c", "down.yaml", "migrate"], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: cannot open the postgres database/m);
  });

  it("generate-key writes an owner-only 32-byte key and refuses to replace it", async function () {
    const result = await runCli(["generate-key", "-f", "keys/k"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const key = Buffer.from((await readFile(path.join(dir, "keys/k"), "utf8")).trim(), "base64");
    assert.equal(key.length, 32);
    assert.equal((await stat(path.join(dir, "keys/k"))).mode & 0o777, 0o600);
    const again = await runCli(["generate-key", "-f", "keys/k"], { cwd: dir });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists already/);
  });
});
