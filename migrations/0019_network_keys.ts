import type { Knex } from "knex";

/**
 * The network is part of every key that holds a remote id or an address (issue #16). 0015 gave
 * the core tables a `network` column, but their keys stayed those of the one-network schema: a
 * second network's contact with the same remote id as a first network's could not have a ghost,
 * contact or portal of its own (the insert hit the other network's row, and a lookup returned
 * it). Keys before and after:
 *
 * | table           | before                      | after                                |
 * | --------------- | --------------------------- | ------------------------------------ |
 * | `ghosts`        | primary (remote_id)         | primary (network, remote_id)         |
 * | `contacts`      | primary (user_mxid, remote_id) | primary (user_mxid, network, remote_id) |
 * | `portals`       | unique (user_mxid, remote_id)  | unique (user_mxid, network, remote_id)  |
 * | `users`         | unique (address)            | unique (network, address)            |
 * | `group_portals` | unique (remote_id)          | unique (network, remote_id), + `network` |
 *
 * `group_portals` gets its `network` column here (0015 left the group tables out), with the same
 * default: every group before is the interop connector's. The address columns grow from 16
 * characters (an E.164 number, what 0001 stored) to 255: another network's addresses are longer
 * (loopback's `name@loop`), and PostgreSQL refused them.
 *
 * On SQLite a primary key or a column type changes only by rebuilding the table, which knex does
 * for `ghosts` and `contacts`: no other table refers to them, so the rebuild's DROP cascades to
 * nothing (unlike `users` and `portals`, whose keys are unique indexes, changed in place). SQLite
 * does not enforce a varchar's length, so `users.address` keeps its declared type there.
 */
const NETWORK_BEFORE_0015 = "whatsapp";

function isPostgres(knex: Knex): boolean {
  const client = (knex.client as { config?: { client?: unknown } }).config?.client;
  return client === "pg" || client === "postgres" || client === "postgresql";
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("ghosts", (t) => {
    t.dropPrimary("ghosts_pkey");
    t.primary(["network", "remote_id"], { constraintName: "ghosts_pkey" });
    t.string("address", 255).nullable().alter();
  });
  await knex.schema.alterTable("contacts", (t) => {
    t.dropPrimary("contacts_pkey");
    t.primary(["user_mxid", "network", "remote_id"], { constraintName: "contacts_pkey" });
  });
  await knex.schema.alterTable("portals", (t) => {
    // Named by 0001's column, which 0015 renamed without renaming its index.
    t.dropUnique(["user_mxid", "remote_id"], "portals_user_mxid_contact_jid_unique");
    t.unique(["user_mxid", "network", "remote_id"], {
      indexName: "portals_user_mxid_network_remote_id_unique",
    });
  });
  await knex.schema.alterTable("users", (t) => {
    t.dropUnique(["address"], "users_phone_unique");
    t.unique(["network", "address"], { indexName: "users_network_address_unique" });
  });
  if (isPostgres(knex)) {
    await knex.raw("alter table ?? alter column ?? type varchar(255)", ["users", "address"]);
  }
  await knex.schema.alterTable("group_portals", (t) => {
    t.string("network", 64).notNullable().defaultTo(NETWORK_BEFORE_0015);
  });
  await knex.schema.alterTable("group_portals", (t) => {
    t.dropUnique(["remote_id"], "group_portals_remote_id_unique");
    t.unique(["network", "remote_id"], { indexName: "group_portals_network_remote_id_unique" });
  });
}

/**
 * Where the old keys would be broken, one row per old key stays: the interop network's, else the
 * network first in name order. Addresses longer than the old 16 characters are cleared (both
 * columns are nullable), so the old type holds them.
 */
export async function down(knex: Knex): Promise<void> {
  await dropDuplicates(knex, "ghosts", ["remote_id"]);
  await dropDuplicates(knex, "contacts", ["user_mxid", "remote_id"]);
  await dropDuplicates(knex, "portals", ["user_mxid", "remote_id"]);
  await dropDuplicates(knex, "group_portals", ["remote_id"]);
  // Addresses: the user keeps the login, the duplicate loses the address (as releaseAddress does).
  await knex.raw(
    `update users set address = null where address is not null and exists (
       select 1 from users o where o.address = users.address and ${preferred("o", "users")})`,
  );
  for (const table of ["users", "ghosts"]) {
    await knex(table).whereRaw("length(address) > 16").update({ address: null });
  }
  await knex.schema.alterTable("group_portals", (t) => {
    t.dropUnique(["network", "remote_id"], "group_portals_network_remote_id_unique");
  });
  await knex.raw("alter table ?? drop column ??", ["group_portals", "network"]);
  await knex.schema.alterTable("group_portals", (t) => {
    t.unique(["remote_id"], { indexName: "group_portals_remote_id_unique" });
  });
  if (isPostgres(knex)) {
    await knex.raw("alter table ?? alter column ?? type varchar(16)", ["users", "address"]);
  }
  await knex.schema.alterTable("users", (t) => {
    t.dropUnique(["network", "address"], "users_network_address_unique");
    t.unique(["address"], { indexName: "users_phone_unique" });
  });
  await knex.schema.alterTable("portals", (t) => {
    t.dropUnique(
      ["user_mxid", "network", "remote_id"],
      "portals_user_mxid_network_remote_id_unique",
    );
    t.unique(["user_mxid", "remote_id"], { indexName: "portals_user_mxid_contact_jid_unique" });
  });
  await knex.schema.alterTable("contacts", (t) => {
    t.dropPrimary("contacts_pkey");
    t.primary(["user_mxid", "remote_id"], { constraintName: "contacts_pkey" });
  });
  await knex.schema.alterTable("ghosts", (t) => {
    t.dropPrimary("ghosts_pkey");
    t.primary(["remote_id"], { constraintName: "ghosts_pkey" });
    t.string("address", 16).nullable().alter();
  });
}

/** SQL: row `o` is kept rather than row `r` of the same old key. */
function preferred(o: string, r: string): string {
  return (
    `((${o}.network = '${NETWORK_BEFORE_0015}' and ${r}.network <> '${NETWORK_BEFORE_0015}') or ` +
    `(${o}.network <> '${NETWORK_BEFORE_0015}' and ${r}.network <> '${NETWORK_BEFORE_0015}' and ` +
    `${o}.network < ${r}.network))`
  );
}

async function dropDuplicates(knex: Knex, table: string, key: readonly string[]): Promise<void> {
  const same = key.map((c) => `o.${c} = ${table}.${c}`).join(" and ");
  await knex.raw(
    `delete from ${table} where exists (
       select 1 from ${table} o where ${same} and ${preferred("o", table)})`,
  );
}
