import type { QueryTarget } from "../../db/sql.js";
import type { BareJid } from "../../util/ids.js";

/**
 * `signal_device_lists`: the version of each remote user's cached device list (§11.3, §11.7);
 * the devices are in `signal_remote_devices` (remote-devices.ts).
 */

const TABLE = "signal_device_lists";

/** The cached list's version (the whole row is read: the list's first read of a user). */
export async function get(db: QueryTarget, jid: BareJid): Promise<number | undefined> {
  const row = (await db(TABLE).where({ jid }).first()) as { version: number } | undefined;
  return row?.version;
}

/** The cached list's version, in a write's transaction. */
export async function version(db: QueryTarget, jid: BareJid): Promise<number | undefined> {
  const row = (await db(TABLE).select("version").where({ jid }).first()) as
    { version: number } | undefined;
  return row?.version;
}

export async function set(
  db: QueryTarget,
  jid: BareJid,
  listVersion: number,
  updatedAt: number,
): Promise<void> {
  await db(TABLE)
    .insert({ jid, version: listVersion, updated_at: updatedAt })
    .onConflict("jid")
    .merge(["version", "updated_at"]);
}
