import assert from "node:assert/strict";
import type { Knex } from "knex";
import { ContactsTable } from "../../src/db/contacts.js";
import { migrateToLatest } from "../../src/db/migrate.js";
import type { MatrixUserId, RemoteUserId } from "../../src/util/ids.js";
import { describeOnBackends } from "../helpers/db.js";
import { MigrationsUpTo } from "../helpers/migrations.js";

/** The interop connector's network id: the one rows of the earlier schemas name. */
const NETWORK = "whatsapp";

const T = 1_700_000_000_000;
const alice = "@alice:example.org" as MatrixUserId;
const aliceJid = "alice=3aexample.org@bridge.example";
const mum = "+491701234567@wa.example" as RemoteUserId;
const other = "+491705550000@wa.example" as RemoteUserId;

async function populate(knex: Knex): Promise<void> {
  await knex("users").insert({
    mxid: alice,
    address: "+491709876543",
    created_at: T,
    updated_at: T,
  });
  await knex("interop_users").insert({
    mxid: alice,
    localpart: "alice=3aexample.org",
    device_id: 1,
  });
  // One row at a time, each with its own columns (as the bridge wrote them).
  await knex("contacts").insert({
    user_mxid: alice,
    remote_id: mum,
    local_name: "Mum",
    // The core's copy says verified; the network's mark was cleared by a key change since.
    verified_at: T + 5,
    created_at: T,
  });
  await knex("contacts").insert({
    user_mxid: alice,
    remote_id: other,
    blocked: true,
    created_at: T,
  });
  await knex("signal_local_identities").insert({
    jid: aliceJid,
    key_pair_enc: Buffer.from([1]),
    public_key: Buffer.from([2]),
    created_at: T,
  });
  const identity = (remote: string, verifiedAt: number | null) => ({
    local_jid: aliceJid,
    remote_jid: remote,
    identity_key: Buffer.from([3]),
    previous_key: null,
    first_seen_at: T,
    changed_at: null,
    verified_at: verifiedAt,
    confirmed: true,
  });
  await knex("signal_identities").insert(identity(mum, null));
  await knex("signal_identities").insert(identity(other, T + 9));
}

describeOnBackends(
  "migration 0017: the network owns the verified mark",
  (get) => {
    const knex = (): Knex => get().db.knex;
    const options = { tableName: "schema_migrations" };

    // One database for the suite: the tests run in order, up then down (as migration-0015's).
    before(async function () {
      await knex().migrate.latest({ ...options, migrationSource: new MigrationsUpTo("0016") });
      await populate(knex());
    });

    it("drops contacts.verified_at and keeps every contact with its name and block", async function () {
      // Up to 0017 only: the rollback below must undo 0017, not a later migration.
      const [, applied] = (await knex().migrate.latest({
        ...options,
        migrationSource: new MigrationsUpTo("0017"),
      })) as [number, string[]];
      assert.ok(
        applied.some((name) => name.startsWith("0017_")),
        applied.join(","),
      );
      assert.equal(await knex().schema.hasColumn("contacts", "verified_at"), false);
      const contacts = new ContactsTable(knex(), NETWORK);
      assert.equal((await contacts.get(alice, mum))?.localName, "Mum");
      assert.equal((await contacts.get(alice, other))?.blocked, true);
      assert.equal((await contacts.listByUser(alice)).length, 2);
      // The network's marks are untouched: they are the one copy now.
      const marks = await knex()("signal_identities").whereNotNull("verified_at");
      assert.deepEqual(
        marks.map((m: { remote_jid: string }) => m.remote_jid),
        [other],
      );
    });

    it("rolling 0017 back restores the column from the network's marks", async function () {
      const [, undone] = (await knex().migrate.down({
        ...options,
        migrationSource: new MigrationsUpTo("0017"),
      })) as [number, string[]];
      assert.deepEqual(
        undone.map((n) => n.slice(0, 4)),
        ["0017"],
      );
      const rows = (await knex()("contacts").orderBy("remote_id")) as {
        remote_id: string;
        verified_at: number | string | null;
        local_name: string | null;
      }[];
      assert.deepEqual(
        rows.map((r) => [r.remote_id, r.verified_at === null ? null : Number(r.verified_at)]),
        [
          [mum, null],
          [other, T + 9],
        ],
      );
      assert.equal(rows[0]?.local_name, "Mum");
      // And forward again.
      await migrateToLatest(knex());
      assert.equal(await knex().schema.hasColumn("contacts", "verified_at"), false);
    });
  },
  { migrate: false },
);
