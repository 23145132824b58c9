import type { Knex } from "knex";

/**
 * `contacts.verified_at` goes (issue #16): whether the user verified a contact has one owner, the
 * network, where the mark belongs to the identity key that was compared and is cleared by the
 * same write that records a new key (interop: `signal_identities.verified_at`). The core's copy
 * was set by `verify confirm` next to the network's and reset by the identity-changed event, which
 * a failing handler lost, so the two could disagree; the network's is the one that is right, and
 * nothing is moved. DROP COLUMN as in 0015: an ALTER that rebuilds the table is not needed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw("alter table ?? drop column ??", ["contacts", "verified_at"]);
}

/**
 * The column comes back filled from the interop network's marks, for the users whose provider
 * localpart `interop_users` records (a local JID is `<localpart>@<bridge domain>`, §5.1).
 */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("contacts", (t) => {
    t.bigInteger("verified_at").nullable();
  });
  const users = (await knex("interop_users").select("mxid", "localpart")) as {
    mxid: string;
    localpart: string;
  }[];
  const mxidOf = new Map(users.map((u) => [u.localpart, u.mxid]));
  const marks = (await knex("signal_identities")
    .whereNotNull("verified_at")
    .select("local_jid", "remote_jid", "verified_at")) as {
    local_jid: string;
    remote_jid: string;
    verified_at: number | string;
  }[];
  for (const mark of marks) {
    const mxid = mxidOf.get(mark.local_jid.slice(0, mark.local_jid.lastIndexOf("@")));
    if (mxid === undefined) continue;
    const at = Number(mark.verified_at);
    await knex("contacts")
      .insert({ user_mxid: mxid, remote_id: mark.remote_jid, created_at: at, verified_at: at })
      .onConflict(["user_mxid", "remote_id"])
      .merge(["verified_at"]);
  }
}
