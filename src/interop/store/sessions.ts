import type { Knex } from "knex";
import type { QueryTarget, Tx } from "../../db/sql.js";
import type { BareJid } from "../../util/ids.js";
import { deleteOfOwners as deleteOwned } from "./owned.js";

/**
 * `signal_sessions`: a local device's 1:1 sessions, one per remote device, sealed with the row
 * reference `["signal_sessions", ownerId, remoteJid, remoteDevice]` by the caller.
 */

const TABLE = "signal_sessions";

export interface SessionRow {
  readonly ownerId: number;
  readonly remoteJid: string;
  readonly remoteDevice: number;
  readonly recordEnc: Buffer;
  readonly updatedAt: number;
}

export async function record(
  db: QueryTarget,
  ownerId: number,
  remoteJid: string,
  remoteDevice: number,
): Promise<Buffer | undefined> {
  const row = (await db(TABLE)
    .select("record_enc")
    .where({ owner_id: ownerId, remote_jid: remoteJid, remote_device: remoteDevice })
    .first()) as { record_enc: Buffer } | undefined;
  return row?.record_enc;
}

/** Written once or twice per message (hot path): a prepared statement, not knex's builder. */
export async function upsert(tx: Tx, row: SessionRow): Promise<void> {
  await tx.run(
    "insert into signal_sessions (owner_id, remote_jid, remote_device, record_enc, updated_at) values (?, ?, ?, ?, ?) on conflict (owner_id, remote_jid, remote_device) do update set record_enc = excluded.record_enc, updated_at = excluded.updated_at",
    [row.ownerId, row.remoteJid, row.remoteDevice, row.recordEnc, row.updatedAt],
  );
}

export async function deleteOne(
  db: QueryTarget,
  ownerId: number,
  remoteJid: string,
  remoteDevice: number,
): Promise<void> {
  await db(TABLE)
    .where({ owner_id: ownerId, remote_jid: remoteJid, remote_device: remoteDevice })
    .delete();
}

/** One local device's sessions with a contact: with `devices` only those, else all. */
export async function deleteOfContact(
  db: QueryTarget,
  ownerId: number,
  remoteJid: BareJid,
  devices?: readonly number[],
): Promise<void> {
  const query = db(TABLE).where({ owner_id: ownerId, remote_jid: remoteJid });
  if (devices !== undefined) query.whereIn("remote_device", [...devices]);
  await query.delete();
}

/** Every local device's sessions with these devices of a contact (§11.7: removed or replaced). */
export async function deleteOfRemoteDevices(
  db: QueryTarget,
  remoteJid: BareJid,
  devices: readonly number[],
): Promise<void> {
  await db(TABLE)
    .where({ remote_jid: remoteJid })
    .whereIn("remote_device", [...devices])
    .delete();
}

export const deleteOfOwners = (db: QueryTarget, owners: Knex.QueryBuilder): Promise<void> =>
  deleteOwned(db, TABLE, owners);
