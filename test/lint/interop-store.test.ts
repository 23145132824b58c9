import assert from "node:assert/strict";
import path from "node:path";
import { ESLint } from "eslint";

/**
 * The lint rule of eslint.config.js that keeps the interop connector's statements in
 * src/interop/store/ (one module per table, issue #16): each case lints a small module as if it
 * were a file of src/ and checks whether the project's own configuration refuses it.
 */
const root = path.resolve(import.meta.dirname, "../..");
const eslint = new ESLint({ cwd: root, overrideConfigFile: path.join(root, "eslint.config.js") });

async function storeErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  assert.ok(result !== undefined);
  return result.messages
    .filter((m) => m.ruleId === "no-restricted-syntax" && /src\/interop\/store\//.test(m.message))
    .map((m) => m.message);
}

/** Statements as the interop files ran them before the store modules (taken from that code). */
const rawForms: [string, string][] = [
  [
    "a builder on a transaction",
    `export async function f(trx: import("knex").Knex.Transaction): Promise<void> {
  await trx("signal_retry_requests").where({ owner_id: 1 }).update({ count: 2 });
}\n`,
  ],
  [
    "a builder on the shared knex of a context",
    `export async function f(ctx: { knex: import("knex").Knex }): Promise<unknown> {
  return ctx.knex("signal_local_identities").where({ jid: "a@b" }).first();
}\n`,
  ],
  [
    "a builder on a class's knex",
    `export class A {
  constructor(private readonly knex: import("knex").Knex) {}
  async f(): Promise<void> {
    await this.knex("provider_devices").where({ jid: "a@b" }).delete();
  }
}\n`,
  ],
  [
    "a prepared statement on a Tx",
    `import type { Tx } from "../../db/sql.js";
export async function f(tx: Tx): Promise<void> {
  await tx.run("delete from interop_groups where local_jid = ? and group_jid = ?", ["a", "b"]);
}\n`,
  ],
  [
    "knex.raw",
    `export class A {
  constructor(private readonly knex: import("knex").Knex) {}
  f(): unknown {
    return { rotation: this.knex.raw("rotation + 1") };
  }
}\n`,
  ],
  [
    "SQL text handed to a helper",
    `export const SQL = "select version, participants from interop_groups where local_jid = ?";\n`,
  ],
];

describe("interop tables only in src/interop/store/ (lint rule)", function () {
  this.timeout(30_000);

  for (const file of [
    "src/interop/crypto/retry.ts",
    "src/interop/provider/groups.ts",
    "src/interop/connector/connector.ts",
    // Exceptions until the inbound tables and the outbox had their store modules (#16).
    "src/interop/provider/inbox.ts",
    "src/interop/provider/engine.ts",
    "src/interop/media/receive.ts",
  ]) {
    for (const [what, code] of rawForms) {
      it(`refuses ${what} in ${file}`, async function () {
        const errors = await storeErrors(file, code);
        assert.ok(errors.length > 0, `${what} should be refused in ${file}`);
      });
    }
  }

  for (const [what, code] of rawForms) {
    it(`allows ${what} in a store module`, async function () {
      assert.deepEqual(await storeErrors("src/interop/store/retry-requests.ts", code), []);
    });
  }

  it("allows callers to open transactions and call the store modules", async function () {
    const code = `import type { Knex } from "knex";
import { SqlRunner } from "../../db/sql.js";
import * as tables from "../store/index.js";
export async function f(knex: Knex): Promise<void> {
  await knex.transaction(async (trx) => {
    await tables.retryRequests.setCount(trx, { ownerId: 1, senderJid: "a", senderDevice: 1, originId: "o" }, 2);
  });
  await SqlRunner.of(knex).transaction((tx) => tables.groups.remove(tx, "a@b" as never, "g"));
  await Promise.all([1].map((n) => n));
}
export const text = "Update the app to keep messaging";\n`;
    assert.deepEqual(await storeErrors("src/interop/crypto/retry.ts", code), []);
  });

  const importing = (specifier: string) => `import { x } from "${specifier}";\nexport { x };\n`;
  const importErrors = async (specifier: string): Promise<string[]> => {
    const [result] = await eslint.lintText(importing(specifier), {
      filePath: path.join(root, "src/interop/store/sessions.ts"),
    });
    return (result?.messages ?? [])
      .filter((m) => m.ruleId === "no-restricted-imports")
      .map((m) => m.message);
  };

  for (const specifier of [
    "../crypto/device-state.js",
    "../provider/groups.js",
    "../connector/connector.js",
    "../../core/bridge-core.js",
    "../../matrix/appservice.js",
  ]) {
    it(`refuses ${specifier} in a store module`, async function () {
      assert.ok((await importErrors(specifier)).length > 0);
    });
  }

  for (const specifier of [
    "../codec/jid.js",
    "../../db/sql.js",
    "../../util/ids.js",
    "./owned.js",
  ]) {
    it(`allows ${specifier} in a store module`, async function () {
      assert.deepEqual(await importErrors(specifier), []);
    });
  }

  it("still refuses a dynamic import of the simulator in src/interop/", async function () {
    const code = `export const load = () => import("../../../simulator/main.js");\n`;
    const [result] = await eslint.lintText(code, {
      filePath: path.join(root, "src/interop/crypto/retry.ts"),
    });
    assert.ok(result?.messages.some((m) => /simulator/.test(m.message)));
  });

  it("passes the interop files as they are", async function () {
    const results = await eslint.lintFiles(["src/interop/**/*.ts"]);
    const refused = results.flatMap((r) =>
      r.messages
        .filter((m) => /src\/interop\/store\//.test(m.message))
        .map((m) => `${path.relative(root, r.filePath)}:${m.line} ${m.message}`),
    );
    assert.deepEqual(refused, []);
  });
});
