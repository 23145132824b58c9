import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { TEST_POSTGRES_URI } from "../helpers/db.js";

/** A fresh PostgreSQL database (not a schema: read-only is a database setting), dropped after. */
export async function freshDatabase(admin: Knex): Promise<{ name: string; uri: string }> {
  const name = `faults_ro_${randomBytes(5).toString("hex")}`;
  await admin.raw(`create database "${name}"`);
  const uri = new URL(TEST_POSTGRES_URI);
  uri.pathname = `/${name}`;
  return { name, uri: uri.toString() };
}

export async function dropDatabase(admin: Knex, name: string): Promise<void> {
  await admin.raw(
    "select pg_terminate_backend(pid) from pg_stat_activity where datname = ? and pid <> pg_backend_pid()",
    [name],
  );
  await admin.raw(`drop database if exists "${name}"`);
}

export async function setReadOnly(admin: Knex, name: string, readOnly: boolean): Promise<void> {
  await admin.raw(
    `alter database "${name}" set default_transaction_read_only = ${readOnly ? "on" : "off"}`,
  );
  // The setting applies to new sessions: end the bridge's, so that its pool reconnects.
  await admin.raw(
    "select pg_terminate_backend(pid) from pg_stat_activity where datname = ? and pid <> pg_backend_pid()",
    [name],
  );
}
