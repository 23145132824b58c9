import assert from "node:assert/strict";
import type { Knex } from "knex";
import { MessagesTable } from "../../src/db/messages.js";
import { ReactionsTable } from "../../src/db/reactions.js";
import type { EventId, MatrixUserId, RemoteMessageId, RemoteUserId } from "../../src/util/ids.js";
import { describeOnBackends } from "../helpers/db.js";
import { MigrationsUpTo } from "../helpers/migrations.js";

const T = 1_700_000_000_000;
const alice = "@alice:example.org" as MatrixUserId;
const mum = "491701234567@wa.example" as RemoteUserId;
const aliceJid = "alice=3aexample.org@bridge.example" as RemoteUserId;

/** Rows as the bridge wrote them through the columns of 0001-0017. */
async function populate(knex: Knex): Promise<number> {
  await knex("users").insert({ mxid: alice, created_at: T, updated_at: T });
  await knex("portals").insert({
    user_mxid: alice,
    remote_id: mum,
    room_id: "!dm:example.org",
    created_at: T,
    updated_at: T,
  });
  const [{ id: portalId }] = (await knex("portals").select("id")) as [{ id: number }];
  // One row at a time: a multi-row insert writes NULL, not the default, for a missing column.
  await knex("messages").insert({
    portal_id: portalId,
    event_id: "$in",
    origin_id: "o-in",
    author_jid: mum,
    seq: 7,
    sent_at: T,
    direction: "in",
  });
  await knex("messages").insert({
    portal_id: portalId,
    event_id: "$out",
    origin_id: "o-out",
    author_jid: aliceJid,
    sent_at: T + 1,
    direction: "out",
    retracted: true,
  });
  await knex("reactions").insert({
    portal_id: portalId,
    event_id: "$r1",
    target_origin_id: "o-in",
    target_author_jid: mum,
    sender: alice,
    emoji: "👍",
    created_at: T,
  });
  return portalId;
}

const COLUMNS_0001 = {
  messages: ["origin_id", "author_jid", "stanza_id"],
  reactions: ["target_origin_id", "target_author_jid"],
} as const;

describeOnBackends(
  "migration 0018: neutral column names for the message and reaction mappings",
  (get) => {
    const knex = (): Knex => get().db.knex;
    const options = { tableName: "schema_migrations" };
    let portalId = 0;

    // One database for the suite: the tests run in order, up then down (as migration-0017's).
    before(async function () {
      await knex().migrate.latest({ ...options, migrationSource: new MigrationsUpTo("0017") });
      portalId = await populate(knex());
    });

    it("renames the columns and keeps every mapping, read back through the table modules", async function () {
      const [, applied] = (await knex().migrate.latest({
        ...options,
        migrationSource: new MigrationsUpTo("0018"),
      })) as [number, string[]];
      assert.deepEqual(applied, ["0018_neutral_message_columns"]);
      for (const [table, columns] of Object.entries(COLUMNS_0001)) {
        for (const column of columns) {
          assert.equal(await knex().schema.hasColumn(table, column), false, `${table}.${column}`);
        }
      }
      const messages = new MessagesTable(knex());
      const incoming = await messages.byRemote(portalId, mum, "o-in" as RemoteMessageId);
      assert.equal(incoming?.eventId, "$in");
      assert.equal(incoming?.order, 7);
      const outgoing = await messages.outgoingByRemote([portalId], "o-out" as RemoteMessageId);
      assert.equal(outgoing?.author, aliceJid);
      assert.equal(outgoing?.retracted, true);
      const reactions = await new ReactionsTable(knex()).bySender(
        portalId,
        { author: mum, id: "o-in" as RemoteMessageId },
        alice,
      );
      assert.deepEqual(
        reactions.map((r) => [r.eventId, r.emoji]),
        [["$r1", "👍"]],
      );
    });

    it("a message's (portal, author, remote id) is still unique under the new names", async function () {
      const messages = new MessagesTable(knex());
      const again = {
        portalId,
        eventId: "$in-again" as EventId,
        remoteId: "o-in" as RemoteMessageId,
        author: mum,
        order: null,
        sentAt: T + 2,
        direction: "in" as const,
      };
      assert.equal(await messages.insert(again), false, "mapped before: refused");
      assert.equal(await messages.insert({ ...again, author: aliceJid }), true, "other author");
      await knex()("messages").where({ event_id: "$in-again" }).del();
    });

    it("rolling 0018 back restores the old columns with their data", async function () {
      const [, undone] = (await knex().migrate.down({
        ...options,
        migrationSource: new MigrationsUpTo("0018"),
      })) as [number, string[]];
      assert.deepEqual(undone, ["0018_neutral_message_columns"]);
      const rows = (await knex()("messages").orderBy("event_id")) as Record<string, unknown>[];
      assert.deepEqual(
        rows.map((r) => [r["event_id"], r["origin_id"], r["author_jid"], r["stanza_id"]]),
        [
          ["$in", "o-in", mum, null],
          ["$out", "o-out", aliceJid, null],
        ],
      );
      const reaction = (await knex()("reactions").first()) as Record<string, unknown>;
      assert.equal(reaction["target_origin_id"], "o-in");
      assert.equal(reaction["target_author_jid"], mum);
      // The old unique key is back.
      await assert.rejects(
        knex()("messages").insert({
          portal_id: portalId,
          event_id: "$dup",
          origin_id: "o-in",
          author_jid: mum,
          sent_at: T,
          direction: "in",
        }),
      );
      // And forward again.
      await knex().migrate.latest({ ...options, migrationSource: new MigrationsUpTo("0018") });
      assert.equal(
        (await new MessagesTable(knex()).byEvent("$out" as EventId))?.remoteId,
        "o-out" as RemoteMessageId,
      );
    });
  },
  { migrate: false },
);
