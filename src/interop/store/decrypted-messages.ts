import type { Knex } from "knex";
import type { Tx } from "../../db/sql.js";
import type { BareJid, DeviceId } from "../../util/ids.js";

/**
 * `decrypted_messages`: the messages each local device decrypted (§15.4), so that a copy or a
 * retry re-send of one is not handed over twice. The record is the hot path (a prepared
 * statement on a `Tx`, in the transaction that commits the advanced session).
 */

interface DecryptedKey {
  readonly local: BareJid;
  readonly device: DeviceId;
  readonly sender: BareJid;
  readonly originId: string;
}

/** False when the message was recorded before: the de-dup check and the record in one statement. */
export async function recordNew(tx: Tx, key: DecryptedKey, now: number): Promise<boolean> {
  const rows = await tx.all(
    "insert into decrypted_messages (receiver_jid, receiver_device, sender_jid, origin_id, decrypted_at) values (?, ?, ?, ?, ?) on conflict (receiver_jid, receiver_device, sender_jid, origin_id) do nothing returning origin_id",
    [key.local, key.device, key.sender, key.originId, now],
  );
  return rows.length > 0;
}

export async function exists(db: Knex, key: DecryptedKey): Promise<boolean> {
  const row = await db("decrypted_messages")
    .where({
      receiver_jid: key.local,
      receiver_device: key.device,
      sender_jid: key.sender,
      origin_id: key.originId,
    })
    .first();
  return row !== undefined;
}

/** De-dup records past the window (`dedup-window-seconds`). */
export async function deleteBefore(db: Knex, cutoff: number): Promise<void> {
  await db("decrypted_messages").where("decrypted_at", "<", cutoff).delete();
}
