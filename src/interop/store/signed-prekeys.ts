import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned, insertChunked } from "./owned.js";

/**
 * `signal_signed_prekeys`: a local device's signed prekeys (§11.1, §11.6), sealed with the row
 * reference `["signal_signed_prekeys", ownerId, prekeyId]` by the caller. A rotated key stays,
 * superseded, for late messages until it is purged.
 */

const TABLE = "signal_signed_prekeys";

interface SignedPreKeyRow {
  readonly prekeyId: number;
  readonly recordEnc: Buffer;
}

export async function insertMany(
  db: QueryTarget,
  ownerId: number,
  createdAt: number,
  rows: readonly SignedPreKeyRow[],
): Promise<void> {
  await insertChunked(
    db,
    TABLE,
    rows.map((row) => ({
      owner_id: ownerId,
      created_at: createdAt,
      prekey_id: row.prekeyId,
      record_enc: row.recordEnc,
    })),
  );
}

export async function ids(db: QueryTarget, ownerId: number): Promise<number[]> {
  const rows = (await db(TABLE).select("prekey_id").where({ owner_id: ownerId })) as {
    prekey_id: number;
  }[];
  return rows.map((row) => row.prekey_id);
}

/** The sealed record of one key (current or superseded). */
export async function record(
  db: QueryTarget,
  ownerId: number,
  prekeyId: number,
): Promise<Buffer | undefined> {
  const row = (await db(TABLE)
    .select("record_enc")
    .where({ owner_id: ownerId, prekey_id: prekeyId })
    .first()) as { record_enc: Buffer } | undefined;
  return row?.record_enc;
}

/** The newest key not superseded. */
export async function current(
  db: QueryTarget,
  ownerId: number,
): Promise<SignedPreKeyRow | undefined> {
  const row = (await db(TABLE)
    .where({ owner_id: ownerId })
    .whereNull("superseded_at")
    .orderBy("created_at", "desc")
    .first()) as { prekey_id: number; record_enc: Buffer } | undefined;
  return row === undefined ? undefined : { prekeyId: row.prekey_id, recordEnc: row.record_enc };
}

export async function supersedeCurrent(
  db: QueryTarget,
  ownerId: number,
  now: number,
): Promise<void> {
  await db(TABLE)
    .where({ owner_id: ownerId })
    .whereNull("superseded_at")
    .update({ superseded_at: now });
}

export async function deleteSupersededBefore(
  db: QueryTarget,
  ownerId: number,
  cutoff: number,
): Promise<void> {
  await db(TABLE).where({ owner_id: ownerId }).where("superseded_at", "<", cutoff).delete();
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
