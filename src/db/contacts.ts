import type { Knex } from "knex";
import type { RemoteUserId } from "../util/ids.js";
import type { MatrixUserId } from "../util/ids.js";
import { readBool, readStringOrNull } from "./values.js";

interface ContactRow {
  userMxid: MatrixUserId;
  contact: RemoteUserId;
  /** A name the user gave the contact; shown only in that user's portal. */
  localName: string | null;
  blocked: boolean;
  createdAt: number;
}

/**
 * The `contacts` table: what one user knows about one contact (local name, block), per network. Whether the
 * user verified the contact is the network's (core/network.ts SafetyNumberCapable, migration 0017).
 */
export class ContactsTable {
  constructor(
    private readonly knex: Knex,
    /** The network whose rows these are (its description's id): written on insert, and every lookup by a remote id or address reads only its rows (migration 0019). */
    private readonly network: string,
  ) {}

  async get(user: MatrixUserId, contact: RemoteUserId): Promise<ContactRow | undefined> {
    const row = (await this.knex("contacts")
      .where({ user_mxid: user, network: this.network, remote_id: contact })
      .first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : toContact(row);
  }

  async listByUser(user: MatrixUserId): Promise<ContactRow[]> {
    const rows = (await this.knex("contacts")
      .where({ user_mxid: user, network: this.network })
      .orderBy("remote_id")) as Record<string, unknown>[];
    return rows.map(toContact);
  }

  async update(
    user: MatrixUserId,
    contact: RemoteUserId,
    patch: Partial<Pick<ContactRow, "localName" | "blocked">>,
    now = Date.now(),
  ): Promise<void> {
    const values: Record<string, unknown> = {};
    if (patch.localName !== undefined) values["local_name"] = patch.localName;
    if (patch.blocked !== undefined) values["blocked"] = patch.blocked;
    // One statement: the row is created with the patch, or the patch is applied to it.
    const insert = this.knex("contacts")
      .insert({
        user_mxid: user,
        remote_id: contact,
        network: this.network,
        created_at: now,
        ...values,
      })
      .onConflict(["user_mxid", "network", "remote_id"]);
    const columns = Object.keys(values);
    await (columns.length === 0 ? insert.ignore() : insert.merge(columns));
  }
}

function toContact(row: Record<string, unknown>): ContactRow {
  return {
    userMxid: String(row["user_mxid"]) as MatrixUserId,
    contact: String(row["remote_id"]) as RemoteUserId,
    localName: readStringOrNull(row["local_name"]),
    blocked: readBool(row["blocked"]),
    createdAt: Number(row["created_at"]),
  };
}
