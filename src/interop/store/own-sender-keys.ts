import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned } from "./owned.js";

/** `signal_own_sender_keys`: the distribution id of a local device's current key per group. */

const TABLE = "signal_own_sender_keys";

export async function current(
  db: QueryTarget,
  ownerId: number,
  groupJid: string,
): Promise<string | undefined> {
  const row = (await db(TABLE)
    .select("distribution_id")
    .where({ owner_id: ownerId, group_jid: groupJid })
    .first()) as { distribution_id: string } | undefined;
  return row?.distribution_id;
}

export async function set(
  db: QueryTarget,
  ownerId: number,
  groupJid: string,
  distributionId: string,
  createdAt: number,
): Promise<void> {
  await db(TABLE)
    .insert({
      owner_id: ownerId,
      group_jid: groupJid,
      distribution_id: distributionId,
      created_at: createdAt,
    })
    .onConflict(["owner_id", "group_jid"])
    .merge(["distribution_id", "created_at"]);
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
