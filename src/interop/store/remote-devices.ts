import type { QueryTarget } from "../../db/sql.js";
import type { BareJid, DeviceId } from "../../util/ids.js";

/**
 * `signal_remote_devices`: the devices of remote users' cached lists (§11.3), with the
 * registration id of the last bundle processed for each and when this bridge learnt of it.
 */

const TABLE = "signal_remote_devices";

interface RemoteDeviceRow {
  readonly id: DeviceId;
  /** From the last bundle processed for the device; null before any. */
  readonly registrationId: number | null;
  /** When this bridge learnt of the device (authorises retry requests, §12.5). */
  readonly addedAt: number;
}

/** The user's devices, by id. */
export async function ofUser(db: QueryTarget, jid: BareJid): Promise<RemoteDeviceRow[]> {
  const rows = (await db(TABLE).where({ jid }).orderBy("device_id")) as {
    device_id: number;
    registration_id: number | null;
    added_at: number;
  }[];
  return rows.map((row) => ({
    id: row.device_id as DeviceId,
    registrationId: row.registration_id,
    addedAt: row.added_at,
  }));
}

export async function idsOf(db: QueryTarget, jid: BareJid): Promise<Set<DeviceId>> {
  const rows = (await db(TABLE).select("device_id").where({ jid })) as { device_id: number }[];
  return new Set(rows.map((row) => row.device_id as DeviceId));
}

/** When the device was added to the user's list; undefined when it is not listed. */
export async function addedAt(
  db: QueryTarget,
  jid: string,
  deviceId: number,
): Promise<number | undefined> {
  const row = (await db(TABLE).select("added_at").where({ jid, device_id: deviceId }).first()) as
    { added_at: number } | undefined;
  return row?.added_at;
}

/** Adds the device (or re-adds it: added now, registration id not known yet). */
export async function add(
  db: QueryTarget,
  jid: BareJid,
  deviceId: DeviceId,
  now: number,
): Promise<void> {
  await db(TABLE)
    .insert({ jid, device_id: deviceId, registration_id: null, added_at: now })
    .onConflict(["jid", "device_id"])
    .merge(["added_at", "registration_id"]);
}

export async function remove(
  db: QueryTarget,
  jid: BareJid,
  deviceIds: readonly DeviceId[],
): Promise<void> {
  await db(TABLE)
    .where({ jid })
    .whereIn("device_id", [...deviceIds])
    .delete();
}

/** The registration id of a processed bundle, for a listed device only (no row is added). */
export async function setRegistrationId(
  db: QueryTarget,
  jid: BareJid,
  deviceId: DeviceId,
  registrationId: number,
): Promise<void> {
  await db(TABLE).where({ jid, device_id: deviceId }).update({ registration_id: registrationId });
}

/** New key material: the registration id of the old bundle no longer applies. */
export async function clearRegistrationIds(
  db: QueryTarget,
  jid: BareJid,
  deviceIds: readonly DeviceId[],
): Promise<void> {
  await db(TABLE)
    .where({ jid })
    .whereIn("device_id", [...deviceIds])
    .update({ registration_id: null });
}
