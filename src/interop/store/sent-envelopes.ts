import type { Knex } from "knex";
import type { QueryTarget, Tx } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned } from "./owned.js";

/**
 * `signal_sent_envelopes`: the envelopes a local device sent, kept for retry answers (§12.3
 * step 5, §12.5) with the devices they were encrypted for, sealed with the row reference
 * `["signal_sent_envelopes", ownerId, originId]` by the caller.
 */

const TABLE = "signal_sent_envelopes";

interface SentEnvelope {
  readonly envelopeEnc: Buffer;
  readonly conversationJid: string;
  /** JSON: `[{ jid, devices: number[] }]`. */
  readonly recipients: string;
  readonly sentAt: number;
}

/**
 * The first send of an origin id (every message, hot path): one insert, no select before it
 * (#15). Returns false when the origin id was sent before (nothing written).
 */
export async function insertIfNew(
  tx: Tx,
  ownerId: number,
  originId: string,
  envelope: SentEnvelope,
): Promise<boolean> {
  const inserted = await tx.run(
    "insert into signal_sent_envelopes (owner_id, origin_id, conversation_jid, envelope_enc, recipients, sent_at) values (?, ?, ?, ?, ?, ?) on conflict (owner_id, origin_id) do nothing",
    [
      ownerId,
      originId,
      envelope.conversationJid,
      envelope.envelopeEnc,
      envelope.recipients,
      envelope.sentAt,
    ],
  );
  return inserted > 0;
}

/** The recipients JSON of a sent envelope (a re-send's merge). */
export async function recipients(
  tx: Tx,
  ownerId: number,
  originId: string,
): Promise<string | undefined> {
  const [existing] = await tx.all<{ recipients: string }>(
    "select recipients from signal_sent_envelopes where owner_id = ? and origin_id = ?",
    [ownerId, originId],
  );
  return existing?.recipients;
}

export async function setRecipients(
  tx: Tx,
  ownerId: number,
  originId: string,
  recipientsJson: string,
): Promise<void> {
  await tx.run(
    "update signal_sent_envelopes set recipients = ? where owner_id = ? and origin_id = ?",
    [recipientsJson, ownerId, originId],
  );
}

export async function get(
  db: QueryTarget,
  ownerId: number,
  originId: string,
): Promise<SentEnvelope | undefined> {
  const row = (await db(TABLE).where({ owner_id: ownerId, origin_id: originId }).first()) as
    | { envelope_enc: Buffer; conversation_jid: string; recipients: string; sent_at: number }
    | undefined;
  return row === undefined
    ? undefined
    : {
        envelopeEnc: row.envelope_enc,
        conversationJid: row.conversation_jid,
        recipients: row.recipients,
        sentAt: row.sent_at,
      };
}

/**
 * The origin ids sent before `cutoff`, as a subquery (retry-answers.ts deletes with it), except
 * those `keep` selects.
 */
export function originsSentBefore(
  db: QueryTarget,
  ownerId: number,
  cutoff: number,
  keep?: Knex.QueryBuilder,
): Knex.QueryBuilder {
  const query = db(TABLE)
    .select("origin_id")
    .where({ owner_id: ownerId })
    .where("sent_at", "<", cutoff);
  return keep === undefined ? query : query.whereNotIn("origin_id", keep);
}

/** Deletes the envelopes sent before `cutoff`, except those whose origin id `keep` selects. */
export async function deleteSentBefore(
  db: QueryTarget,
  ownerId: number,
  cutoff: number,
  keep?: Knex.QueryBuilder,
): Promise<void> {
  const query = db(TABLE).where({ owner_id: ownerId }).where("sent_at", "<", cutoff);
  if (keep !== undefined) query.whereNotIn("origin_id", keep);
  await query.delete();
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
