import type { Knex } from "knex";

/**
 * Network-neutral core tables (issue #16). The core knows a contact only as the network's opaque
 * id and its address (core/network.ts), so its columns say so, and each row names its network:
 *
 * | before                 | after                                       |
 * | ---------------------- | ------------------------------------------- |
 * | `users.phone`          | `users.address` (+ `users.network`)         |
 * | `users.localpart`      | `interop_users.localpart` (interop-owned)   |
 * | `users.device_id`      | `interop_users.device_id` (interop-owned)   |
 * | `ghosts.jid`           | `ghosts.remote_id` (+ `ghosts.network`)     |
 * | `ghosts.phone`         | `ghosts.address`                            |
 * | `contacts.contact_jid` | `contacts.remote_id` (+ `contacts.network`) |
 * | `portals.contact_jid`  | `portals.remote_id` (+ `portals.network`)   |
 *
 * `network` is the network's id (core/network.ts `NetworkDescription.id`, which the db modules
 * write on insert); it defaults to `whatsapp`, the interop connector's id: every row written
 * before this migration came from it, the only network the bridge had. The provider localpart and
 * device of a Matrix user (PROTOCOL.md §5.1) are the gatekeeper's business: they move to
 * `interop_users`, which only src/interop reads and writes (src/interop/connector/interop-users.ts
 * records a user there when a login completes). Constraints and indexes follow the renamed columns
 * unchanged (SQLite and PostgreSQL both carry them over on a rename), so the statements on the
 * message path keep their plans.
 */
export const NETWORK_BEFORE_0015 = "whatsapp";

const RENAMES: readonly (readonly [table: string, from: string, to: string])[] = [
  ["users", "phone", "address"],
  ["ghosts", "jid", "remote_id"],
  ["ghosts", "phone", "address"],
  ["contacts", "contact_jid", "remote_id"],
  ["portals", "contact_jid", "remote_id"],
];

const WITH_NETWORK = ["users", "ghosts", "contacts", "portals"] as const;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("interop_users", (t) => {
    // No foreign key to `users`: the row outlives the user's, so a localpart is never reused.
    t.string("mxid", 255).primary();
    // The provider JID localpart derived reversibly from the Matrix id (§5.1).
    t.string("localpart", 1023).notNullable().unique();
    t.integer("device_id").notNullable().defaultTo(1);
  });
  await knex("interop_users").insert(knex("users").select("mxid", "localpart", "device_id"));
  await knex.schema.alterTable("users", (t) => {
    t.dropUnique(["localpart"]);
  });
  // Native DROP COLUMN on both backends. knex's SQLite dropColumn copies the table into a new one
  // and drops the old: inside the migration's transaction foreign keys stay on, so dropping
  // `users` would cascade and delete every contact, portal and group membership.
  await knex.raw("alter table ?? drop column ??", ["users", "localpart"]);
  await knex.raw("alter table ?? drop column ??", ["users", "device_id"]);
  for (const [table, from, to] of RENAMES) {
    await knex.schema.alterTable(table, (t) => {
      t.renameColumn(from, to);
    });
  }
  for (const table of WITH_NETWORK) {
    await knex.schema.alterTable(table, (t) => {
      t.string("network", 64).notNullable().defaultTo(NETWORK_BEFORE_0015);
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  // Rows of another network have no place in the interop-only schema before 0015.
  for (const table of ["contacts", "portals", "ghosts", "users"] as const) {
    await knex(table).whereNot({ network: NETWORK_BEFORE_0015 }).del();
  }
  for (const table of WITH_NETWORK) {
    await knex.raw("alter table ?? drop column ??", [table, "network"]);
  }
  for (const [table, from, to] of [...RENAMES].reverse()) {
    await knex.schema.alterTable(table, (t) => {
      t.renameColumn(to, from);
    });
  }
  // ADD COLUMN, not an ALTER that rebuilds the table (see up): NOT NULL needs a default there.
  await knex.schema.alterTable("users", (t) => {
    t.string("localpart", 1023).notNullable().defaultTo("");
    t.integer("device_id").notNullable().defaultTo(1);
  });
  const stored = (await knex("interop_users").select("mxid", "localpart", "device_id")) as {
    mxid: string;
    localpart: string;
    device_id: number;
  }[];
  for (const row of stored) {
    await knex("users")
      .where({ mxid: row.mxid })
      .update({ localpart: row.localpart, device_id: row.device_id });
  }
  // A user who never logged in to the interop network has no stored localpart: derive it (§5.1).
  const missing = (await knex("users").where({ localpart: "" }).select("mxid")) as {
    mxid: string;
  }[];
  for (const { mxid } of missing) {
    await knex("users")
      .where({ mxid })
      .update({ localpart: providerLocalpart(mxid) });
  }
  await knex.schema.alterTable("users", (t) => {
    t.unique(["localpart"]);
  });
  await knex.schema.dropTableIfExists("interop_users");
}

/** §5.1's escaping, frozen here as the pre-0015 schema knew it (a migration must not change). */
function providerLocalpart(mxid: string): string {
  let out = "";
  for (const byte of Buffer.from(mxid.slice(1), "utf8")) {
    const ch = String.fromCharCode(byte);
    out += /^[a-z0-9._-]$/.test(ch) ? ch : `=${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}
