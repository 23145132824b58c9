import type { QueryTarget } from "../../db/sql.js";
import type { BareJid, DeviceId } from "../../util/ids.js";

/**
 * `provider_devices`: the local devices the provider engine published (§11.2), with when each was
 * published and when its signed prekeys were last rotated (§11.6).
 */

const TABLE = "provider_devices";

export async function recordPublished(
  db: QueryTarget,
  jid: BareJid,
  deviceId: DeviceId,
  now: number,
): Promise<void> {
  await db(TABLE)
    .insert({ jid, device_id: deviceId, published_at: now, rotated_at: now })
    .onConflict(["jid", "device_id"])
    .merge(["published_at"]);
}

export async function recordRotated(
  db: QueryTarget,
  jid: BareJid,
  deviceId: DeviceId,
  now: number,
): Promise<void> {
  await db(TABLE).where({ jid, device_id: deviceId }).update({ rotated_at: now });
}

/** Devices last rotated before `cutoff`. */
export async function rotatedBefore(
  db: QueryTarget,
  cutoff: number,
): Promise<{ jid: BareJid; device: DeviceId }[]> {
  const rows = (await db(TABLE).select("jid", "device_id").where("rotated_at", "<", cutoff)) as {
    jid: string;
    device_id: number;
  }[];
  return rows.map((r) => ({ jid: r.jid as BareJid, device: r.device_id as DeviceId }));
}

export async function deleteOf(db: QueryTarget, jid: BareJid): Promise<void> {
  await db(TABLE).where({ jid }).delete();
}
