import type { QueryTarget } from "../../db/sql.js";
import type { BareJid } from "../../util/ids.js";

/**
 * `signal_local_identities`: each local user's identity key pair, sealed (the vault's row
 * reference is `["signal_local_identities", jid]`; the caller seals and opens).
 */

/** The sealed key pair of `jid`, or undefined when the user has no identity yet. */
export async function keyPairOf(db: QueryTarget, jid: BareJid): Promise<Buffer | undefined> {
  const row = (await db("signal_local_identities").where({ jid }).first()) as
    { key_pair_enc: Buffer } | undefined;
  return row?.key_pair_enc;
}

export async function insert(
  db: QueryTarget,
  row: { jid: BareJid; keyPairEnc: Buffer; publicKey: Buffer; createdAt: number },
): Promise<void> {
  await db("signal_local_identities").insert({
    jid: row.jid,
    key_pair_enc: row.keyPairEnc,
    public_key: row.publicKey,
    created_at: row.createdAt,
  });
}

export async function deleteOf(db: QueryTarget, jid: BareJid): Promise<void> {
  await db("signal_local_identities").where({ jid }).delete();
}
