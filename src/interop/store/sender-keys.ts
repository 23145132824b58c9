import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned } from "./owned.js";

/**
 * `signal_sender_keys`: the sender keys a local device holds (its own and other members'), each
 * bound to the group it was distributed for once known (§13.3, §17.4), sealed with the row
 * reference `["signal_sender_keys", ownerId, senderJid, senderDevice, distributionId]` by the
 * caller.
 */

const TABLE = "signal_sender_keys";

export interface SenderKeyId {
  readonly ownerId: number;
  readonly senderJid: string;
  readonly senderDevice: number;
  readonly distributionId: string;
}

const where = (id: SenderKeyId) => ({
  owner_id: id.ownerId,
  sender_jid: id.senderJid,
  sender_device: id.senderDevice,
  distribution_id: id.distributionId,
});

export async function upsert(
  db: QueryTarget,
  id: SenderKeyId,
  recordEnc: Buffer,
  updatedAt: number,
): Promise<void> {
  await db(TABLE)
    .insert({ ...where(id), record_enc: recordEnc, updated_at: updatedAt })
    .onConflict(["owner_id", "sender_jid", "sender_device", "distribution_id"])
    .merge(["record_enc", "updated_at"]);
}

export async function record(db: QueryTarget, id: SenderKeyId): Promise<Buffer | undefined> {
  const row = (await db(TABLE).select("record_enc").where(where(id)).first()) as
    { record_enc: Buffer } | undefined;
  return row?.record_enc;
}

/** The group the key is bound to: null while unbound, undefined when the key is unknown. */
export async function groupOf(
  db: QueryTarget,
  id: SenderKeyId,
): Promise<string | null | undefined> {
  const row = (await db(TABLE).select("group_jid").where(where(id)).first()) as
    { group_jid: string | null } | undefined;
  return row === undefined ? undefined : row.group_jid;
}

/** Another group than `groupJid` that a key of `distributionId` is bound to, if any. */
export async function boundElsewhere(
  db: QueryTarget,
  ownerId: number,
  distributionId: string,
  groupJid: string,
): Promise<string | undefined> {
  const other = (await db(TABLE)
    .select("group_jid")
    .where({ owner_id: ownerId, distribution_id: distributionId })
    .whereNot({ group_jid: groupJid })
    .whereNotNull("group_jid")
    .first()) as { group_jid: string } | undefined;
  return other?.group_jid;
}

/** Binds the still unbound keys of `distributionId` to the group (a received SKDM). */
export async function bindUnbound(
  db: QueryTarget,
  ownerId: number,
  distributionId: string,
  groupJid: string,
): Promise<void> {
  await db(TABLE)
    .where({ owner_id: ownerId, distribution_id: distributionId })
    .whereNull("group_jid")
    .update({ group_jid: groupJid });
}

/** Binds every key of `distributionId` to the group (the device's own new key). */
export async function bind(
  db: QueryTarget,
  ownerId: number,
  distributionId: string,
  groupJid: string,
): Promise<void> {
  await db(TABLE)
    .where({ owner_id: ownerId, distribution_id: distributionId })
    .update({ group_jid: groupJid });
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
