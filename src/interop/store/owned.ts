import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";

/**
 * What the per-device tables (keyed by `owner_id`, the local device's row id) share: inserting
 * rows in chunks and deleting the rows of a set of devices. Each table's module names its table.
 */

/** Rows per insert: small chunks stay below SQLite's bound-parameter limit. */
const CHUNK = 50;

export async function insertChunked(
  db: QueryTarget,
  table: string,
  rows: readonly Record<string, unknown>[],
): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) await db(table).insert(rows.slice(i, i + CHUNK));
}

/** Deletes the rows of the devices `owners` selects (local-devices.ts `ownerIdsOf`). */
export async function deleteOfOwners(
  db: QueryTarget,
  table: string,
  owners: Knex.QueryBuilder,
): Promise<void> {
  await db(table).whereIn("owner_id", owners.clone()).delete();
}
