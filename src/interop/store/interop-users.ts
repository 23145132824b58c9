import type { Knex } from "knex";
import type { MatrixUserId } from "../../util/ids.js";
import { localpartFromMatrixUserId } from "../codec/jid.js";

/** A Matrix user as a provider user (PROTOCOL.md §5.1): `<localpart>@<component domain>`. */
interface InteropUserRow {
  mxid: MatrixUserId;
  localpart: string;
  deviceId: number;
}

/**
 * The `interop_users` table (migration 0015): the provider localpart and device of each Matrix
 * user who completed a login at the gatekeeper. The localpart is derived from the Matrix id, so the
 * row is the record that it was handed out; it is never deleted, so a localpart is never reused.
 * Only src/interop reads and writes it: the core's `users` table knows nothing of the gatekeeper.
 */
export class InteropUsersTable {
  constructor(private readonly knex: Knex) {}

  /** Records the user (once; a later login keeps the first row). */
  async record(user: MatrixUserId, deviceId: number): Promise<void> {
    await this.knex("interop_users")
      .insert({ mxid: user, localpart: localpartFromMatrixUserId(user), device_id: deviceId })
      .onConflict("mxid")
      .ignore();
  }

  async get(user: MatrixUserId): Promise<InteropUserRow | undefined> {
    const row = (await this.knex("interop_users").where({ mxid: user }).first()) as
      { mxid: string; localpart: string; device_id: number | string } | undefined;
    return row === undefined
      ? undefined
      : {
          mxid: row.mxid as MatrixUserId,
          localpart: row.localpart,
          deviceId: Number(row.device_id),
        };
  }
}
