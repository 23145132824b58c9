import type { Knex } from "knex";
import type { Tx } from "../../db/sql.js";

/**
 * `inbox`: the stanza-ids delivered to the bridge (§15.5), for de-duplication of redeliveries,
 * whether each was acked, and, while it waits for the hand-over to the core, its pending event
 * (§15.5; `inbound_pending` until migration 0021 folded it in, so that the record and the pending
 * event are one statement of the decrypt transaction, issue #15). A row is pending while
 * `pending_since` is set: `local_jid`, `event_enc` (sealed by the caller, it may hold decrypted
 * content) and `receipt` are set with it and cleared with it. Entries of no delivery (identity
 * changes, `local:` stanza-ids) have a row too, with an empty `by_domain`. The record, the pending
 * insert and the completion are the hot path (prepared statements on a `Tx`).
 */

export interface PendingRow {
  readonly stanza_id: string;
  readonly by_domain: string;
  readonly event_enc: Buffer;
  readonly receipt: string | null;
}

export interface NewPendingRow {
  readonly stanzaId: string;
  readonly by: string;
  /** The local user's bare JID, or "" for an event of no local user. */
  readonly localJid: string;
  readonly eventEnc: Buffer;
  /** The `<received>` to queue after the hand-over, as JSON. */
  readonly receipt: string | null;
}

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

/**
 * `recordNew` with the pending event in the same row: false (and nothing written) when the
 * stanza-id was recorded before, pending or not.
 */
export async function recordNewPending(tx: Tx, row: NewPendingRow, now: number): Promise<boolean> {
  const rows = await tx.all(
    "insert into inbox (stanza_id, by_domain, received_at, acked, local_jid, event_enc, receipt, pending_since) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (stanza_id) do nothing returning stanza_id",
    [row.stanzaId, row.by, now, false, row.localJid, row.eventEnc, row.receipt, now],
  );
  return rows.length > 0;
}

/**
 * Records the stanza-id (if new) with its pending event, unless it is pending already (a
 * redelivery): the `record` and pending insert of the time of two tables, in one statement.
 */
export async function insertPending(tx: Tx, row: NewPendingRow, now: number): Promise<void> {
  await tx.run(
    "insert into inbox (stanza_id, by_domain, received_at, acked, local_jid, event_enc, receipt, pending_since) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (stanza_id) do update set local_jid = excluded.local_jid, event_enc = excluded.event_enc, receipt = excluded.receipt, pending_since = excluded.pending_since where inbox.pending_since is null",
    [row.stanzaId, row.by, now, false, row.localJid, row.eventEnc, row.receipt, now],
  );
}

export async function seen(db: Knex, stanzaId: string): Promise<boolean> {
  return (await db("inbox").where({ stanza_id: stanzaId }).first()) !== undefined;
}

export async function getPending(db: Knex, stanzaId: string): Promise<PendingRow | undefined> {
  return (await db("inbox")
    .where({ stanza_id: stanzaId })
    .whereNotNull("pending_since")
    .first("stanza_id", "by_domain", "event_enc", "receipt")) as PendingRow | undefined;
}

/** How many rows await hand-over (the inbox depth metric). */
export async function countPending(db: Knex): Promise<number> {
  const row = (await db("inbox").whereNotNull("pending_since").count({ n: "*" }).first()) as
    { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

/** Every pending row, oldest first (the replay after a restart). */
export async function allPending(db: Knex): Promise<PendingRow[]> {
  return (await db("inbox")
    .whereNotNull("pending_since")
    .orderBy("pending_since")
    .select("stanza_id", "by_domain", "event_enc", "receipt")) as PendingRow[];
}

/**
 * The hand-over's end: the row stays as the stanza-id's de-dup record. False when it was not
 * pending (handed over before).
 */
export async function completePending(tx: Tx, stanzaId: string): Promise<boolean> {
  return (
    (await tx.run(
      "update inbox set local_jid = null, event_enc = null, receipt = null, pending_since = null where stanza_id = ? and pending_since is not null",
      [stanzaId],
    )) > 0
  );
}

/**
 * The hand-over's end of an entry no gatekeeper delivered: nothing redelivers its stanza-id and
 * nothing acks it (so the retention purge would keep it forever), the row goes. False when there
 * is no such row (handed over before, or a delivery's stanza-id).
 */
export async function removePending(tx: Tx, stanzaId: string): Promise<boolean> {
  return (
    (await tx.run(
      "delete from inbox where stanza_id = ? and by_domain = '' and pending_since is not null",
      [stanzaId],
    )) > 0
  );
}

export async function markAcked(db: Knex, stanzaIds: readonly string[]): Promise<void> {
  await db("inbox")
    .whereIn("stanza_id", [...stanzaIds])
    .update({ acked: true });
}

/**
 * Acked stanza-ids received before `cutoff` (`queue-retention-seconds`). Never a pending row: an
 * event the core deferred (a held message request) is acked and waits, maybe past the retention.
 */
export async function deleteAckedBefore(db: Knex, cutoff: number): Promise<void> {
  await db("inbox")
    .where({ acked: true })
    .where("received_at", "<", cutoff)
    .whereNull("pending_since")
    .delete();
}
