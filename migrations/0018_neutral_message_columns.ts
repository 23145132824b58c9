import type { Knex } from "knex";

/**
 * The last gatekeeper-named columns of the core's tables go (issue #16). The 1:1 message and
 * reaction mappings were written in 0001 in the interop protocol's words; the group ones (0014)
 * already use the network's neutral words, which these now share:
 *
 * | before                        | after                     |
 * | ----------------------------- | ------------------------- |
 * | `messages.origin_id`          | `messages.remote_id`      |
 * | `messages.author_jid`         | `messages.author`         |
 * | `messages.stanza_id`          | (dropped)                 |
 * | `reactions.target_origin_id`  | `reactions.target_remote_id` |
 * | `reactions.target_author_jid` | `reactions.target_author` |
 *
 * `messages.stanza_id` was never written by any version of the bridge (the transport's stanza id
 * is the interop outbox's), so dropping it loses nothing; down() brings it back empty.
 *
 * The index over the renamed columns is dropped and made again under a name without the old
 * words (a rename carries an index over, but keeps its name). The other core tables (`users`,
 * `ghosts`, `contacts`, `portals`: 0015; `processed_events`, `matrix_inbox`, the group tables) had
 * no such name left. Renames are native on both backends: no table is rebuilt, so no foreign key
 * cascades.
 */
const RENAMES: readonly (readonly [table: string, from: string, to: string])[] = [
  ["messages", "origin_id", "remote_id"],
  ["messages", "author_jid", "author"],
  ["reactions", "target_origin_id", "target_remote_id"],
  ["reactions", "target_author_jid", "target_author"],
];

/** The unique key of a message and the lookup index of reactions, by the names 0001 gave them. */
const OLD_MESSAGE_KEY = "messages_portal_id_author_jid_origin_id_unique";
const NEW_MESSAGE_KEY = "messages_portal_id_author_remote_id_unique";
const OLD_REACTION_INDEX = "reactions_portal_id_target_author_jid_target_origin_id_index";
const NEW_REACTION_INDEX = "reactions_portal_id_target_author_target_remote_id_index";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("messages", (t) => {
    t.dropUnique(["portal_id", "author_jid", "origin_id"], OLD_MESSAGE_KEY);
  });
  await knex.schema.alterTable("reactions", (t) => {
    t.dropIndex(["portal_id", "target_author_jid", "target_origin_id"], OLD_REACTION_INDEX);
  });
  for (const [table, from, to] of RENAMES) {
    await knex.schema.alterTable(table, (t) => {
      t.renameColumn(from, to);
    });
  }
  // Native DROP COLUMN (see 0015: knex's SQLite dropColumn would rebuild the table).
  await knex.raw("alter table ?? drop column ??", ["messages", "stanza_id"]);
  await knex.schema.alterTable("messages", (t) => {
    t.unique(["portal_id", "author", "remote_id"], { indexName: NEW_MESSAGE_KEY });
  });
  await knex.schema.alterTable("reactions", (t) => {
    t.index(["portal_id", "target_author", "target_remote_id"], NEW_REACTION_INDEX);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("messages", (t) => {
    t.dropUnique(["portal_id", "author", "remote_id"], NEW_MESSAGE_KEY);
  });
  await knex.schema.alterTable("reactions", (t) => {
    t.dropIndex(["portal_id", "target_author", "target_remote_id"], NEW_REACTION_INDEX);
  });
  for (const [table, from, to] of [...RENAMES].reverse()) {
    await knex.schema.alterTable(table, (t) => {
      t.renameColumn(to, from);
    });
  }
  await knex.schema.alterTable("messages", (t) => {
    t.string("stanza_id", 64).nullable();
  });
  await knex.schema.alterTable("messages", (t) => {
    t.unique(["portal_id", "author_jid", "origin_id"], { indexName: OLD_MESSAGE_KEY });
  });
  await knex.schema.alterTable("reactions", (t) => {
    t.index(["portal_id", "target_author_jid", "target_origin_id"], OLD_REACTION_INDEX);
  });
}
