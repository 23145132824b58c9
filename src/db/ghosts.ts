import type { Knex } from "knex";
import type { RemoteUserId } from "../core/network.js";
import type { MatrixUserId, PhoneNumber } from "../util/ids.js";
import { readStringOrNull } from "./values.js";

export interface GhostRow {
  contact: RemoteUserId;
  phone: PhoneNumber;
  mxid: MatrixUserId;
  /** The display name last set on the homeserver; null until it was set once. */
  displayName: string | null;
  createdAt: number;
}

/** The `ghosts` table: the Matrix puppet of each WhatsApp user the bridge has seen. */
export class GhostsTable {
  constructor(private readonly knex: Knex) {}

  async get(contact: RemoteUserId): Promise<GhostRow | undefined> {
    return this.first({ jid: contact });
  }

  async byMxid(mxid: MatrixUserId): Promise<GhostRow | undefined> {
    return this.first({ mxid });
  }

  async byPhone(phone: PhoneNumber): Promise<GhostRow | undefined> {
    return this.first({ phone });
  }

  /** Inserts the ghost, or updates its display name when it exists. */
  async upsert(
    ghost: Omit<GhostRow, "createdAt" | "displayName"> & { displayName: string | null },
    now = Date.now(),
  ): Promise<void> {
    await this.knex("ghosts")
      .insert({
        jid: ghost.contact,
        phone: ghost.phone,
        mxid: ghost.mxid,
        display_name: ghost.displayName,
        created_at: now,
      })
      .onConflict("jid")
      .merge(["display_name"]);
  }

  private async first(where: Record<string, unknown>): Promise<GhostRow | undefined> {
    const row = (await this.knex("ghosts").where(where).first()) as
      Record<string, unknown> | undefined;
    if (row === undefined) return undefined;
    return {
      contact: String(row["jid"]) as RemoteUserId,
      phone: String(row["phone"]) as PhoneNumber,
      mxid: String(row["mxid"]) as MatrixUserId,
      displayName: readStringOrNull(row["display_name"]),
      createdAt: Number(row["created_at"]),
    };
  }
}
