import type { Knex } from "knex";
import type { Tx } from "../../db/sql.js";

/**
 * `inbox`: the stanza-ids delivered to the bridge (§15.5), for de-duplication of redeliveries,
 * and whether each was acked. The record is the hot path (a prepared statement on a `Tx`).
 */

export async function record(tx: Tx, stanzaId: string, by: string, now: number): Promise<void> {
  await tx.run(
    "insert into inbox (stanza_id, by_domain, received_at, acked) values (?, ?, ?, ?) on conflict (stanza_id) do nothing",
    [stanzaId, by, now, false],
  );
}

/** `record` that tells whether the stanza-id is new: false when it was recorded before. */
export async function recordNew(
  tx: Tx,
  stanzaId: string,
  by: string,
  now: number,
): Promise<boolean> {
  const rows = await tx.all(
    "insert into inbox (stanza_id, by_domain, received_at, acked) values (?, ?, ?, ?) on conflict (stanza_id) do nothing returning stanza_id",
    [stanzaId, by, now, false],
  );
  return rows.length > 0;
}

export async function seen(db: Knex, stanzaId: string): Promise<boolean> {
  return (await db("inbox").where({ stanza_id: stanzaId }).first()) !== undefined;
}

export async function markAcked(db: Knex, stanzaIds: readonly string[]): Promise<void> {
  await db("inbox")
    .whereIn("stanza_id", [...stanzaIds])
    .update({ acked: true });
}

/** Acked stanza-ids received before `cutoff` (`queue-retention-seconds`). */
export async function deleteAckedBefore(db: Knex, cutoff: number): Promise<void> {
  await db("inbox").where({ acked: true }).where("received_at", "<", cutoff).delete();
}
