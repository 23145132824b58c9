import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned } from "./owned.js";

/** `signal_retry_answers`: the retry requests a local device answered, per count (§12.5). */

const TABLE = "signal_retry_answers";

interface RetryAnswerId {
  readonly ownerId: number;
  readonly originId: string;
  readonly requesterJid: string;
  readonly requesterDevice: number;
  readonly count: number;
}

const columns = (id: RetryAnswerId) => ({
  owner_id: id.ownerId,
  origin_id: id.originId,
  requester_jid: id.requesterJid,
  requester_device: id.requesterDevice,
  count: id.count,
});

export async function has(db: QueryTarget, id: RetryAnswerId): Promise<boolean> {
  return (await db(TABLE).where(columns(id)).first()) !== undefined;
}

export async function insert(
  db: QueryTarget,
  id: RetryAnswerId,
  answeredAt: number,
): Promise<void> {
  await db(TABLE).insert({ ...columns(id), answered_at: answeredAt });
}

/** Deletes the answers to the messages `origins` selects (sent-envelopes.ts `originsSentBefore`). */
export async function deleteOfOrigins(
  db: QueryTarget,
  ownerId: number,
  origins: Knex.QueryBuilder,
): Promise<void> {
  await db(TABLE).where({ owner_id: ownerId }).whereIn("origin_id", origins).delete();
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
