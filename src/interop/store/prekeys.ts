import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import { deleteOfOwners as deleteOwned, insertChunked } from "./owned.js";

/**
 * `signal_prekeys`: a local device's one-time EC prekeys (§11.1), sealed with the row reference
 * `["signal_prekeys", ownerId, prekeyId]` by the caller. A consumed key keeps its row without the
 * record for 90 days, so that its id is not reused while a late message may name it.
 */

const TABLE = "signal_prekeys";

interface PreKeyRow {
  readonly prekeyId: number;
  readonly recordEnc: Buffer;
}

export async function insertMany(
  db: QueryTarget,
  ownerId: number,
  createdAt: number,
  rows: readonly PreKeyRow[],
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

/** One key, written by libsignal through the batch (a single-row insert, consumed_at null). */
export async function insert(
  db: QueryTarget,
  ownerId: number,
  row: PreKeyRow & { createdAt: number },
): Promise<void> {
  await db(TABLE).insert({
    owner_id: ownerId,
    prekey_id: row.prekeyId,
    record_enc: row.recordEnc,
    created_at: row.createdAt,
    consumed_at: null,
  });
}

/** Every id with a row (live or consumed): ids not to hand out again. */
export async function ids(db: QueryTarget, ownerId: number): Promise<number[]> {
  const rows = (await db(TABLE).select("prekey_id").where({ owner_id: ownerId })) as {
    prekey_id: number;
  }[];
  return rows.map((row) => row.prekey_id);
}

/** The sealed record; null when consumed, undefined when there is no such id. */
export async function record(
  db: QueryTarget,
  ownerId: number,
  prekeyId: number,
): Promise<Buffer | null | undefined> {
  const row = (await db(TABLE)
    .select("record_enc")
    .where({ owner_id: ownerId, prekey_id: prekeyId })
    .first()) as { record_enc: Buffer | null } | undefined;
  return row === undefined ? undefined : row.record_enc;
}

/** The unconsumed keys, by id. */
export async function unconsumed(db: QueryTarget, ownerId: number): Promise<PreKeyRow[]> {
  const rows = (await db(TABLE)
    .where({ owner_id: ownerId })
    .whereNotNull("record_enc")
    .orderBy("prekey_id")) as { prekey_id: number; record_enc: Buffer }[];
  return rows.map((row) => ({ prekeyId: row.prekey_id, recordEnc: row.record_enc }));
}

export async function countUnconsumed(db: QueryTarget, ownerId: number): Promise<number> {
  const rows = await db(TABLE)
    .where({ owner_id: ownerId })
    .whereNotNull("record_enc")
    .count("* as n");
  return Number((rows[0] as { n?: unknown } | undefined)?.n ?? 0);
}

/** Drops the record and keeps the row, so that the id is not reused for 90 days (§11.1). */
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

export async function deleteConsumedBefore(
  db: QueryTarget,
  ownerId: number,
  cutoff: number,
): Promise<void> {
  await db(TABLE).where({ owner_id: ownerId }).where("consumed_at", "<", cutoff).delete();
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
