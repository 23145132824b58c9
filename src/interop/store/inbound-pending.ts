import type { Knex } from "knex";
import type { Tx } from "../../db/sql.js";

/**
 * `inbound_pending`: events committed and not yet handed over to the core (§15.5). The event is
 * sealed by the caller with the row reference `["inbound_pending", stanzaId]` (it may hold
 * decrypted content). The insert and the delete are the hot path (prepared statements on a `Tx`).
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

/** Writes the row unless its stanza-id is pending already (a redelivery). */
export async function insert(tx: Tx, row: NewPendingRow, now: number): Promise<void> {
  await tx.run(
    "insert into inbound_pending (stanza_id, by_domain, local_jid, event_enc, receipt, created_at) values (?, ?, ?, ?, ?, ?) on conflict (stanza_id) do nothing",
    [row.stanzaId, row.by, row.localJid, row.eventEnc, row.receipt, now],
  );
}

export async function get(db: Knex, stanzaId: string): Promise<PendingRow | undefined> {
  return (await db("inbound_pending").where({ stanza_id: stanzaId }).first()) as
    PendingRow | undefined;
}

/** How many rows await hand-over (the inbox depth metric). */
export async function count(db: Knex): Promise<number> {
  const row = (await db("inbound_pending").count({ n: "*" }).first()) as
    { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

/** Every pending row, oldest first (the replay after a restart). */
export async function all(db: Knex): Promise<PendingRow[]> {
  return (await db("inbound_pending").orderBy("created_at")) as PendingRow[];
}

/** The hand-over's end: false when the row was gone (handed over before). */
export async function remove(tx: Tx, stanzaId: string): Promise<boolean> {
  return (await tx.run("delete from inbound_pending where stanza_id = ?", [stanzaId])) > 0;
}
