import type { Knex } from "knex";
import type { QueryTarget, Tx } from "../../db/sql.js";
import type { BareJid } from "../../util/ids.js";

/**
 * `interop_groups`: each local user's groups (§17.1, §17.2): version, participants (JSON) and
 * whether the local sender key must rotate (§17.5), with a counter bumped at every such request
 * (a send clears the flag only if the counter is unchanged). The rules (which version wins, when
 * rotation is due) are provider/groups.ts's; this module only reads and writes rows.
 */

const TABLE = "interop_groups";

interface GroupRow {
  readonly version: number;
  /** JSON: `[{ jid, role }]`. */
  readonly participants: string;
  readonly rotatePending: boolean;
  readonly rotation: number;
}

type Raw = {
  version: number;
  participants: string;
  rotate_pending: boolean | number;
  rotation: number | string;
};

const fromRaw = (row: Raw): GroupRow => ({
  version: Number(row.version),
  participants: row.participants,
  rotatePending: row.rotate_pending === true || row.rotate_pending === 1,
  rotation: Number(row.rotation),
});

/** Outside a transaction. */
export async function get(
  db: QueryTarget,
  local: BareJid,
  group: string,
): Promise<GroupRow | undefined> {
  const row = (await db(TABLE).where({ local_jid: local, group_jid: group }).first()) as
    Raw | undefined;
  return row === undefined ? undefined : fromRaw(row);
}

/** Inside a transaction (the shared knex would wait for it). */
export async function getInTx(
  tx: Tx,
  local: BareJid,
  group: string,
): Promise<GroupRow | undefined> {
  const [row] = await tx.all<Raw>(
    "select version, participants, rotate_pending, rotation from interop_groups where local_jid = ? and group_jid = ?",
    [local, group],
  );
  return row === undefined ? undefined : fromRaw(row);
}

/** Version and participants only (what a save compares). */
export async function versionAndParticipants(
  tx: Tx,
  local: BareJid,
  group: string,
): Promise<{ version: number; participants: string } | undefined> {
  const [row] = await tx.all<{ version: number; participants: string }>(
    "select version, participants from interop_groups where local_jid = ? and group_jid = ?",
    [local, group],
  );
  return row;
}

/** A group new here; rotation pending (a key kept from an earlier membership may be stale). */
export async function insertNew(
  tx: Tx,
  local: BareJid,
  group: string,
  version: number,
  participants: string,
  now: number,
): Promise<void> {
  await tx.run(
    "insert into interop_groups (local_jid, group_jid, version, participants, rotate_pending, updated_at) values (?, ?, ?, ?, ?, ?) on conflict (local_jid, group_jid) do nothing",
    [local, group, version, participants, true, now],
  );
}

/** A newer version; with `rotate`, rotation is asked for too (a participant went). */
export async function update(
  tx: Tx,
  local: BareJid,
  group: string,
  version: number,
  participants: string,
  rotate: boolean,
  now: number,
): Promise<void> {
  await tx.run(
    rotate
      ? "update interop_groups set version = ?, participants = ?, rotate_pending = ?, rotation = rotation + 1, updated_at = ? where local_jid = ? and group_jid = ?"
      : "update interop_groups set version = ?, participants = ?, updated_at = ? where local_jid = ? and group_jid = ?",
    rotate
      ? [version, participants, true, now, local, group]
      : [version, participants, now, local, group],
  );
}

export async function remove(tx: Tx, local: BareJid, group: string): Promise<void> {
  await tx.run("delete from interop_groups where local_jid = ? and group_jid = ?", [local, group]);
}

/** Every group of the local user with its participants JSON. */
export async function participantsOf(
  db: QueryTarget,
  local: BareJid,
): Promise<{ group: string; participants: string }[]> {
  const rows = (await db(TABLE)
    .select("group_jid", "participants")
    .where({ local_jid: local })) as { group_jid: string; participants: string }[];
  return rows.map((r) => ({ group: r.group_jid, participants: r.participants }));
}

/**
 * Every local user's groups whose participants JSON may name `member` (a substring match on the
 * JSON, which the caller confirms by parsing): rare, for a device list learnt outside the
 * member's notice to the local user.
 */
export async function withParticipant(
  db: QueryTarget,
  member: string,
): Promise<{ local: string; group: string; participants: string }[]> {
  // `!` escapes, not a backslash: `'\'` is an unterminated literal on a PostgreSQL with
  // standard_conforming_strings off, and `!` needs no quoting in SQL text or JSON.
  const quoted = JSON.stringify(member).replace(/[!%_]/g, (c) => `!${c}`);
  const rows = (await db(TABLE)
    .select("local_jid", "group_jid", "participants")
    .whereRaw("participants like ? escape '!'", [`%${quoted}%`])) as {
    local_jid: string;
    group_jid: string;
    participants: string;
  }[];
  return rows.map((r) => ({
    local: r.local_jid,
    group: r.group_jid,
    participants: r.participants,
  }));
}

/** Asks for rotation in these groups (one statement; `knex` for the `rotation + 1`). */
export async function requestRotation(
  knex: Knex,
  local: BareJid,
  groups: readonly string[],
  now: number,
): Promise<void> {
  await knex(TABLE)
    .where({ local_jid: local })
    .whereIn("group_jid", [...groups])
    .update({
      rotate_pending: true,
      rotation: knex.raw("rotation + 1"),
      updated_at: now,
    });
}

/** Rotation done, unless it was asked for again (`rotation` moved on) since the send read it. */
export async function clearRotation(
  tx: Tx,
  local: BareJid,
  group: string,
  rotation: number,
): Promise<void> {
  await tx.run(
    "update interop_groups set rotate_pending = ? where local_jid = ? and group_jid = ? and rotation = ?",
    [false, local, group, rotation],
  );
}
