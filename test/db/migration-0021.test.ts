import assert from "node:assert/strict";
import type { Knex } from "knex";
import { InboxStore } from "../../src/interop/provider/inbox.js";
import type { StoredEvent } from "../../src/interop/provider/types.js";
import { KeyVault } from "../../src/vault/key-vault.js";
import { describeOnBackends } from "../helpers/db.js";
import { MigrationsUpTo } from "../helpers/migrations.js";

const T = 1_700_000_000_000;
const DONE = "stanza-handed-over";
const PENDING = "stanza-pending";
const LOCAL = "local:identity:0b7e2c1a-4f5d-4e6b-9a8c-1d2e3f4a5b6c";
const vault = KeyVault.fromKey(KeyVault.generateKey());

const message = {
  kind: "message",
  local: "alice@wa.example",
  from: "bob@wa.example",
  device: 1,
  originId: "o1",
  stanzaId: PENDING,
  stamp: "2026-01-02T03:04:05.000Z",
  envelopeXml: "<envelope/>",
};
const identity = {
  kind: "identity-changed",
  local: "alice@wa.example",
  contact: "bob@wa.example",
  wasVerified: false,
  changeId: "0b7e2c1a-4f5d-4e6b-9a8c-1d2e3f4a5b6c",
};
const receipt = { from: "alice@wa.example/1", to: "bob@wa.example", id: "o1" };

/** Sealed as the bridge sealed pending events before 0021 (InboxStore's binding). */
const sealed = (stanzaId: string, event: object): Buffer =>
  vault.seal(new Uint8Array(Buffer.from(JSON.stringify(event), "utf8")), [
    "inbound_pending",
    stanzaId,
  ]);

/**
 * What 0020's schema held: a message handed over (its inbox row only), one committed and not
 * handed over (inbox and inbound_pending rows), an identity change not handed over (a pending
 * row of no delivery, no inbox row).
 */
async function populate(knex: Knex): Promise<void> {
  await knex("inbox").insert({
    stanza_id: DONE,
    by_domain: "wa.example",
    received_at: T,
    acked: true,
  });
  await knex("inbox").insert({
    stanza_id: PENDING,
    by_domain: "wa.example",
    received_at: T + 2,
    acked: false,
  });
  await knex("inbound_pending").insert({
    stanza_id: PENDING,
    by_domain: "wa.example",
    local_jid: "alice@wa.example",
    event_enc: sealed(PENDING, message),
    receipt: JSON.stringify(receipt),
    created_at: T + 2,
  });
  await knex("inbound_pending").insert({
    stanza_id: LOCAL,
    by_domain: "",
    local_jid: "alice@wa.example",
    event_enc: sealed(LOCAL, identity),
    receipt: null,
    created_at: T + 1,
  });
}

const inboxIds = async (knex: Knex): Promise<string[]> =>
  ((await knex("inbox").orderBy("stanza_id").select("stanza_id")) as { stanza_id: string }[]).map(
    (r) => r.stanza_id,
  );

/** The pending entries as the bridge reads them after 0021: both open, the older first. */
async function assertMovedIn(knex: Knex): Promise<void> {
  assert.equal(await knex.schema.hasTable("inbound_pending"), false);
  assert.deepEqual(await inboxIds(knex), [LOCAL, DONE, PENDING].sort());
  const store = new InboxStore(knex, vault);
  const pending = await store.allPending();
  assert.deepEqual(
    pending.map((e) => [e.stanzaId, e.by, e.event.kind]),
    [
      [LOCAL, "", "identity-changed"],
      [PENDING, "wa.example", "message"],
    ],
  );
  assert.deepEqual(pending[1]?.receipt, receipt);
  const event = pending[1]?.event as StoredEvent & { stamp?: Date };
  assert.deepEqual(event.stamp, new Date(message.stamp));
  assert.equal(await store.pending(DONE), undefined, "the handed-over one is not pending");
  assert.equal(await store.depth(), 2);
}

describeOnBackends(
  "migration 0021: the events pending hand-over live in their inbox row",
  (get) => {
    const knex = (): Knex => get().db.knex;
    const options = { tableName: "schema_migrations" };

    // One database for the suite: the tests run in order, up, down, up again.
    before(async function () {
      await knex().migrate.latest({ ...options, migrationSource: new MigrationsUpTo("0020") });
      await populate(knex());
    });

    it("moves every pending event into the inbox, a local entry's with an inbox row of its own, and they still open", async function () {
      const [, applied] = (await knex().migrate.latest({
        ...options,
        migrationSource: new MigrationsUpTo("0021"),
      })) as [number, string[]];
      assert.deepEqual(applied, ["0021_pending_in_inbox"]);
      await assertMovedIn(knex());
    });

    it("rolling 0021 back moves the pending events back to inbound_pending and drops the rows only they had made", async function () {
      const [, undone] = (await knex().migrate.down({
        ...options,
        migrationSource: new MigrationsUpTo("0021"),
      })) as [number, string[]];
      assert.deepEqual(undone, ["0021_pending_in_inbox"]);
      assert.deepEqual(await inboxIds(knex()), [DONE, PENDING]);
      assert.equal(await knex().schema.hasColumn("inbox", "event_enc"), false);
      const rows = (await knex()("inbound_pending").orderBy("created_at")) as {
        stanza_id: string;
        by_domain: string;
        event_enc: Buffer;
        receipt: string | null;
        created_at: number | string;
      }[];
      assert.deepEqual(
        rows.map((r) => [r.stanza_id, r.by_domain, Number(r.created_at), r.receipt]),
        [
          [LOCAL, "", T + 1, null],
          [PENDING, "wa.example", T + 2, JSON.stringify(receipt)],
        ],
      );
      const opened = vault.open(rows[1]!.event_enc, ["inbound_pending", PENDING]);
      assert.deepEqual(JSON.parse(Buffer.from(opened).toString("utf8")), message);
    });

    it("and forward again", async function () {
      await knex().migrate.latest({ ...options, migrationSource: new MigrationsUpTo("0021") });
      await assertMovedIn(knex());
    });

    it("the retention purge forgets acked stanza-ids, never one still pending", async function () {
      const store = new InboxStore(knex(), vault);
      // A pending event may be acked (the core deferred it: a held message request).
      await store.markAcked([PENDING]);
      await store.purge(T + 1_000_000, 0);
      assert.deepEqual(await inboxIds(knex()), [LOCAL, PENDING].sort());
      assert.equal((await store.pending(PENDING))?.event.kind, "message");
    });
  },
  { migrate: false },
);
