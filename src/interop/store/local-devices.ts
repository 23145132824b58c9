import type { Knex } from "knex";
import type { QueryTarget } from "../../db/sql.js";
import type { BareJid, DeviceId } from "../../util/ids.js";

/**
 * `signal_local_devices`: the bridge's own Signal devices (one row per local user and device id),
 * with each prekey id space's next id (§11.1).
 */

/** The prekey id spaces (§11.1): one-time EC, signed, Kyber. */
export type IdSpace = "prekey" | "signed" | "kyber";

/** The column holding each space's next id. */
const COUNTERS = {
  prekey: "next_prekey_id",
  signed: "next_signed_prekey_id",
  kyber: "next_kyber_prekey_id",
} as const satisfies Record<IdSpace, string>;

interface LocalDeviceRow {
  /** The row id: the `owner_id` of every per-device table. */
  readonly ownerId: number;
  readonly registrationId: number;
}

export async function get(
  db: QueryTarget,
  jid: BareJid,
  deviceId: DeviceId,
): Promise<LocalDeviceRow | undefined> {
  const row = (await db("signal_local_devices").where({ jid, device_id: deviceId }).first()) as
    { id: number; registration_id: number } | undefined;
  return row === undefined ? undefined : { ownerId: row.id, registrationId: row.registration_id };
}

/** The user's device ids, in no particular order (device creation picks a free one). */
export async function deviceIdsOf(db: QueryTarget, jid: BareJid): Promise<number[]> {
  const rows = (await db("signal_local_devices").select("device_id").where({ jid })) as {
    device_id: number;
  }[];
  return rows.map((row) => row.device_id);
}

/** The user's device ids, ascending. */
export async function sortedDeviceIdsOf(db: QueryTarget, jid: BareJid): Promise<DeviceId[]> {
  const rows = (await db("signal_local_devices")
    .select("device_id")
    .where({ jid })
    .orderBy("device_id")) as { device_id: number }[];
  return rows.map((row) => row.device_id as DeviceId);
}

/** The users that hold at least one device, in one query. */
export async function jids(db: QueryTarget): Promise<BareJid[]> {
  const rows = (await db("signal_local_devices").distinct("jid")) as { jid: BareJid }[];
  return rows.map((row) => row.jid);
}

/** Inserts a device and returns its row id (the owner id of its keys). */
export async function insert(
  db: QueryTarget,
  row: {
    jid: BareJid;
    deviceId: DeviceId;
    registrationId: number;
    /** Each space's first id. */
    nextIds: Record<IdSpace, number>;
    createdAt: number;
  },
): Promise<number> {
  const inserted = (await db("signal_local_devices")
    .insert({
      jid: row.jid,
      device_id: row.deviceId,
      registration_id: row.registrationId,
      [COUNTERS.prekey]: row.nextIds.prekey,
      [COUNTERS.signed]: row.nextIds.signed,
      [COUNTERS.kyber]: row.nextIds.kyber,
      created_at: row.createdAt,
    })
    .returning("id")) as ({ id: number } | number)[];
  const first = inserted[0];
  if (first === undefined) throw new Error("device row insert returned no id");
  return typeof first === "number" ? first : first.id;
}

/** The next id of one id space; undefined when the device does not exist. */
export async function nextId(
  db: QueryTarget,
  ownerId: number,
  space: IdSpace,
): Promise<number | undefined> {
  const column = COUNTERS[space];
  const device = (await db("signal_local_devices")
    .select(column)
    .where({ id: ownerId })
    .first()) as Record<string, number> | undefined;
  return device?.[column];
}

export async function setNextId(
  db: QueryTarget,
  ownerId: number,
  space: IdSpace,
  next: number,
): Promise<void> {
  await db("signal_local_devices")
    .where({ id: ownerId })
    .update({ [COUNTERS[space]]: next });
}

/**
 * The row ids of the user's devices, as a subquery for the deletes of their rows elsewhere
 * (`deleteOfOwners` of the per-device tables): it is run by each of them, not read here.
 */
export function ownerIdsOf(db: QueryTarget, jid: BareJid): Knex.QueryBuilder {
  return db("signal_local_devices").select("id").where({ jid });
}

export async function deleteOf(db: QueryTarget, jid: BareJid): Promise<void> {
  await db("signal_local_devices").where({ jid }).delete();
}
