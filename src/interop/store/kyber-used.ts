import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned } from "./owned.js";

/**
 * `signal_kyber_used`: the uses of last-resort Kyber prekeys (§11.6): a repeated (key, signed
 * prekey, base key) is a replay.
 */

const TABLE = "signal_kyber_used";

export interface KyberUse {
  readonly ownerId: number;
  readonly kyberPreKeyId: number;
  readonly signedPreKeyId: number;
  /** The sender's base key, base64. */
  readonly baseKey: string;
}

const where = (use: KyberUse) => ({
  owner_id: use.ownerId,
  kyber_prekey_id: use.kyberPreKeyId,
  signed_prekey_id: use.signedPreKeyId,
  base_key: use.baseKey,
});

export async function has(db: QueryTarget, use: KyberUse): Promise<boolean> {
  return (await db(TABLE).where(where(use)).first()) !== undefined;
}

export async function insert(db: QueryTarget, use: KyberUse, usedAt: number): Promise<void> {
  await db(TABLE).insert({ ...where(use), used_at: usedAt });
}

/** Deletes the uses of the keys `expiredKeys` selects (kyber-prekeys.ts `expiredIds`). */
export async function deleteOfKeys(
  db: QueryTarget,
  ownerId: number,
  expiredKeys: Knex.QueryBuilder,
): Promise<void> {
  await db(TABLE).where({ owner_id: ownerId }).whereIn("kyber_prekey_id", expiredKeys).delete();
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
