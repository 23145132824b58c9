import type { QueryTarget } from "../../db/sql.js";
import type { BareJid } from "../../util/ids.js";

/**
 * `signal_identities`: the identity key each local user recorded for each contact (§12.4), the
 * previous key after a change, whether sending is confirmed (`hold` mode) and the verified mark.
 * Public keys: not sealed.
 */

const TABLE = "signal_identities";

export interface IdentityRecord {
  readonly key: Buffer;
  readonly previousKey: Buffer | null;
  readonly firstSeenAt: number;
  readonly changedAt: number | null;
  readonly verifiedAt: number | null;
  readonly confirmed: boolean;
}

interface IdentityRow {
  identity_key: Buffer;
  previous_key: Buffer | null;
  first_seen_at: number;
  changed_at: number | null;
  verified_at: number | null;
  confirmed: boolean | number;
}

export async function get(
  db: QueryTarget,
  localJid: BareJid,
  remoteJid: string,
): Promise<IdentityRecord | undefined> {
  const row = (await db(TABLE).where({ local_jid: localJid, remote_jid: remoteJid }).first()) as
    IdentityRow | undefined;
  return row === undefined ? undefined : fromRow(row);
}

export async function upsert(
  db: QueryTarget,
  localJid: BareJid,
  remoteJid: string,
  record: IdentityRecord,
): Promise<void> {
  await db(TABLE)
    .insert({
      local_jid: localJid,
      remote_jid: remoteJid,
      identity_key: record.key,
      previous_key: record.previousKey,
      first_seen_at: record.firstSeenAt,
      changed_at: record.changedAt,
      verified_at: record.verifiedAt,
      confirmed: record.confirmed,
    })
    .onConflict(["local_jid", "remote_jid"])
    .merge([
      "identity_key",
      "previous_key",
      "first_seen_at",
      "changed_at",
      "verified_at",
      "confirmed",
    ]);
}

/** The contacts the local user marked verified (their identity unchanged since). */
export async function verifiedOf(db: QueryTarget, localJid: BareJid): Promise<BareJid[]> {
  const rows = (await db(TABLE)
    .where({ local_jid: localJid })
    .whereNotNull("verified_at")
    .select("remote_jid")) as { remote_jid: string }[];
  return rows.map((row) => row.remote_jid as BareJid);
}

export async function deleteOfLocal(db: QueryTarget, localJid: BareJid): Promise<void> {
  await db(TABLE).where({ local_jid: localJid }).delete();
}

function fromRow(row: IdentityRow): IdentityRecord {
  return {
    key: Buffer.from(row.identity_key),
    previousKey: row.previous_key === null ? null : Buffer.from(row.previous_key),
    firstSeenAt: row.first_seen_at,
    changedAt: row.changed_at,
    verifiedAt: row.verified_at,
    confirmed: Boolean(row.confirmed),
  };
}
