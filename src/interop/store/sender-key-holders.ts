import type { QueryTarget, Tx } from "../../db/sql.js";
import type { BareJid } from "../../util/ids.js";

/**
 * `interop_sender_key_holders`: the member devices that received a local user's sender key of a
 * group (§17.4), so that a send distributes it only to those that lack it.
 */

const TABLE = "interop_sender_key_holders";

/** Holders as `jid/device`. */
export async function holders(
  db: QueryTarget,
  local: BareJid,
  group: string,
  distributionId: string,
): Promise<Set<string>> {
  const rows = (await db(TABLE)
    .select("member_jid", "device")
    .where({ local_jid: local, group_jid: group, distribution_id: distributionId })) as {
    member_jid: string;
    device: number;
  }[];
  return new Set(rows.map((r) => `${r.member_jid}/${r.device}`));
}

/** In the send's transaction (hot path: prepared statements). */
export async function add(
  tx: Tx,
  local: BareJid,
  group: string,
  distributionId: string,
  member: string,
  device: number,
): Promise<void> {
  await tx.run(
    "insert into interop_sender_key_holders (local_jid, group_jid, distribution_id, member_jid, device) values (?, ?, ?, ?, ?) on conflict do nothing",
    [local, group, distributionId, member, device],
  );
}

/** After a rotation: the holders of earlier keys of the group. */
export async function removeOtherKeys(
  tx: Tx,
  local: BareJid,
  group: string,
  distributionId: string,
): Promise<void> {
  await tx.run(
    "delete from interop_sender_key_holders where local_jid = ? and group_jid = ? and distribution_id <> ?",
    [local, group, distributionId],
  );
}

export async function removeGroup(tx: Tx, local: BareJid, group: string): Promise<void> {
  await tx.run("delete from interop_sender_key_holders where local_jid = ? and group_jid = ?", [
    local,
    group,
  ]);
}

/** These devices of `member` must get the current key again (replaced, §17.5). */
export async function removeDevices(
  db: QueryTarget,
  local: BareJid,
  member: string,
  devices: readonly number[],
): Promise<void> {
  await db(TABLE)
    .where({ local_jid: local, member_jid: member })
    .whereIn("device", [...devices])
    .delete();
}
