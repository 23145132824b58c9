import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned, insertChunked } from "./owned.js";

/**
 * `signal_kyber_prekeys`: a local device's Kyber prekeys (§11.1), one-time and last-resort, sealed
 * with the row reference `["signal_kyber_prekeys", ownerId, prekeyId]` by the caller. A consumed
 * one-time key keeps its row without the record (its id is not reused for 90 days); a rotated
 * last-resort key stays, superseded, for late messages.
 */

const TABLE = "signal_kyber_prekeys";

interface KyberPreKeyRow {
  readonly prekeyId: number;
  readonly recordEnc: Buffer;
  readonly lastResort: boolean;
}

export async function insertMany(
  db: QueryTarget,
  ownerId: number,
  createdAt: number,
  rows: readonly KyberPreKeyRow[],
): Promise<void> {
  await insertChunked(
    db,
    TABLE,
    rows.map((row) => ({
      owner_id: ownerId,
      created_at: createdAt,
      prekey_id: row.prekeyId,
      last_resort: row.lastResort,
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

/** One key: its sealed record (null once consumed) and whether it is a last-resort key. */
export async function get(
  db: QueryTarget,
  ownerId: number,
  prekeyId: number,
): Promise<{ recordEnc: Buffer | null; lastResort: boolean } | undefined> {
  const row = (await db(TABLE)
    .select("record_enc", "last_resort")
    .where({ owner_id: ownerId, prekey_id: prekeyId })
    .first()) as { record_enc: Buffer | null; last_resort: boolean | number } | undefined;
  return row === undefined
    ? undefined
    : { recordEnc: row.record_enc, lastResort: Boolean(row.last_resort) };
}

/** The keys not superseded and not consumed (one-time and the last-resort one), by id. */
export async function current(db: QueryTarget, ownerId: number): Promise<KyberPreKeyRow[]> {
  const rows = (await db(TABLE)
    .where({ owner_id: ownerId })
    .whereNull("superseded_at")
    .whereNotNull("record_enc")
    .orderBy("prekey_id")) as { prekey_id: number; record_enc: Buffer; last_resort: unknown }[];
  return rows.map((row) => ({
    prekeyId: row.prekey_id,
    recordEnc: row.record_enc,
    lastResort: Boolean(row.last_resort),
  }));
}

export async function countUnconsumedOneTime(db: QueryTarget, ownerId: number): Promise<number> {
  const rows = await db(TABLE)
    .where({ owner_id: ownerId, last_resort: false })
    .whereNotNull("record_enc")
    .count("* as n");
  return Number((rows[0] as { n?: unknown } | undefined)?.n ?? 0);
}

/** A one-time key was used: the record goes, the row stays (§11.1). */
export async function consume(
  db: QueryTarget,
  ownerId: number,
  prekeyId: number,
  now: number,
): Promise<void> {
  await db(TABLE)
    .where({ owner_id: ownerId, prekey_id: prekeyId })
    .update({ record_enc: null, consumed_at: now });
}

export async function supersedeLastResort(
  db: QueryTarget,
  ownerId: number,
  now: number,
): Promise<void> {
  await db(TABLE)
    .where({ owner_id: ownerId, last_resort: true })
    .whereNull("superseded_at")
    .update({ superseded_at: now });
}

/**
 * The ids of keys superseded or consumed before `cutoff`, as a subquery (kyber-used.ts deletes
 * the uses of those keys with it, in the same statement).
 */
export function expiredIds(db: QueryTarget, ownerId: number, cutoff: number): Knex.QueryBuilder {
  return db(TABLE)
    .select("prekey_id")
    .where({ owner_id: ownerId })
    .where((q) => q.where("superseded_at", "<", cutoff).orWhere("consumed_at", "<", cutoff));
}

export async function deleteExpired(
  db: QueryTarget,
  ownerId: number,
  cutoff: number,
): Promise<void> {
  await db(TABLE)
    .where({ owner_id: ownerId })
    .where((q) => q.where("superseded_at", "<", cutoff).orWhere("consumed_at", "<", cutoff))
    .delete();
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
