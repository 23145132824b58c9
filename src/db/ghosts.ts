import type { Knex } from "knex";
import type { RemoteUserId } from "../util/ids.js";
import type { ContactAddress, MatrixUserId } from "../util/ids.js";
import { readStringOrNull } from "./values.js";

/**
 * A ghost as stored. `phone` is null for a member of a group at another provider, who has no
 * phone number (migration 0014); every 1:1 contact has one (GhostRow).
 */
export interface GhostRecord {
  contact: RemoteUserId;
  /** The contact's address (interop: the phone number), in the `phone` column until #16's migration; null for a group member without one (another provider's user). */
  phone: ContactAddress | null;
  mxid: MatrixUserId;
  /** The display name last set on the homeserver; null until it was set once. */
  displayName: string | null;
  createdAt: number;
}

/** The ghost of a contact with a phone number: every 1:1 contact. */
export type GhostRow = GhostRecord & { phone: ContactAddress };

/** Ghosts kept in memory per database (most recently used). */
// Measured: 5,000 raised the idle RSS with 10,000 users by ~70 MB (bench memory run, SQLite),
// 1,000 by nothing visible; an active set is far smaller than that.
const CACHE_SIZE = 1000;

/**
 * Rows read through any GhostsTable of one knex, by contact, with the Matrix id and phone keys
 * pointing at the contact. Write-through: `upsert` drops the entry; nothing else writes the table.
 */
class GhostCache {
  private readonly rows = new Map<string, GhostRecord>();
  private readonly keys = new Map<string, string>();

  get(contact: string | undefined): GhostRecord | undefined {
    if (contact === undefined) return undefined;
    const row = this.rows.get(contact);
    if (row !== undefined) {
      this.rows.delete(contact);
      this.rows.set(contact, row);
    }
    return row;
  }

  contactOf(key: string): string | undefined {
    return this.keys.get(key);
  }

  put(row: GhostRecord): void {
    this.drop(row.contact);
    this.rows.set(row.contact, row);
    this.keys.set(`mxid\n${row.mxid}`, row.contact);
    if (row.phone !== null) this.keys.set(`phone\n${row.phone}`, row.contact);
    if (this.rows.size > CACHE_SIZE) this.drop(this.rows.keys().next().value as string);
  }

  drop(contact: string): void {
    const row = this.rows.get(contact);
    if (row === undefined) return;
    this.rows.delete(contact);
    this.keys.delete(`mxid\n${row.mxid}`);
    this.keys.delete(`phone\n${row.phone}`);
  }
}

const caches = new WeakMap<Knex, GhostCache>();

/** The `ghosts` table: the Matrix puppet of each contact the bridge has seen. */
export class GhostsTable {
  private readonly cache: GhostCache;

  constructor(private readonly knex: Knex) {
    let cache = caches.get(knex);
    if (cache === undefined) {
      cache = new GhostCache();
      caches.set(knex, cache);
    }
    this.cache = cache;
  }

  async get(contact: RemoteUserId): Promise<GhostRecord | undefined> {
    return this.cache.get(contact) ?? this.first({ jid: contact });
  }

  async byMxid(mxid: MatrixUserId): Promise<GhostRecord | undefined> {
    return this.cache.get(this.cache.contactOf(`mxid\n${mxid}`)) ?? this.first({ mxid });
  }

  async byPhone(phone: ContactAddress): Promise<GhostRecord | undefined> {
    return this.cache.get(this.cache.contactOf(`phone\n${phone}`)) ?? this.first({ phone });
  }

  /** Inserts the ghost, or updates its display name when it exists. */
  async upsert(
    ghost: Omit<GhostRecord, "createdAt" | "displayName"> & { displayName: string | null },
    now = Date.now(),
  ): Promise<void> {
    this.cache.drop(ghost.contact);
    try {
      await this.upsertRow(ghost, now);
    } finally {
      this.cache.drop(ghost.contact);
    }
  }

  private async upsertRow(
    ghost: Omit<GhostRecord, "createdAt" | "displayName"> & { displayName: string | null },
    now: number,
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

  private async first(where: Record<string, unknown>): Promise<GhostRecord | undefined> {
    const row = (await this.knex("ghosts").where(where).first()) as
      Record<string, unknown> | undefined;
    if (row === undefined) return undefined;
    // Frozen: the cached object is shared by every reader.
    const ghost: GhostRecord = Object.freeze({
      contact: String(row["jid"]) as RemoteUserId,
      phone: readStringOrNull(row["phone"]) as ContactAddress | null,
      mxid: String(row["mxid"]) as MatrixUserId,
      displayName: readStringOrNull(row["display_name"]),
      createdAt: Number(row["created_at"]),
    });
    this.cache.put(ghost);
    return ghost;
  }
}
