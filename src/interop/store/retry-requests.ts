import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned } from "./owned.js";

/** `signal_retry_requests`: the retry requests a local device sent, counted per message (§12.5). */

const TABLE = "signal_retry_requests";

export interface RetryRequestId {
  readonly ownerId: number;
  readonly senderJid: string;
  readonly senderDevice: number;
  readonly originId: string;
}

const where = (id: RetryRequestId) => ({
  owner_id: id.ownerId,
  sender_jid: id.senderJid,
  sender_device: id.senderDevice,
  origin_id: id.originId,
});

/** Requests sent so far for the message; undefined when none (or purged). */
export async function count(db: QueryTarget, id: RetryRequestId): Promise<number | undefined> {
  const row = (await db(TABLE).select("count").where(where(id)).first()) as
    { count: number } | undefined;
  return row?.count;
}

export async function insertFirst(
  db: QueryTarget,
  id: RetryRequestId,
  firstRequestedAt: number,
): Promise<void> {
  await db(TABLE).insert({ ...where(id), count: 1, first_requested_at: firstRequestedAt });
}

export async function setCount(db: QueryTarget, id: RetryRequestId, value: number): Promise<void> {
  await db(TABLE).where(where(id)).update({ count: value });
}

export async function deleteRequestedBefore(
  db: QueryTarget,
  ownerId: number,
  cutoff: number,
): Promise<void> {
  await db(TABLE).where({ owner_id: ownerId }).where("first_requested_at", "<", cutoff).delete();
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
