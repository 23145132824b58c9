import type { Knex } from "knex";
import type { RemoteUserId } from "../util/ids.js";
import type { ContactAddress, MatrixUserId } from "../util/ids.js";
import { readStringOrNull } from "./values.js";

/**
 * A ghost as stored. `address` is null for a member of a group at another provider, who has no
 * address on this network (migration 0014); every 1:1 contact has one (GhostRow).
 */
export interface GhostRecord {
  contact: RemoteUserId;
  /** The contact's address (interop: the phone number); null for a group member without one (another provider's user). */
  address: ContactAddress | null;
  mxid: MatrixUserId;
  /** The display name last set on the homeserver; null until it was set once. */
  displayName: string | null;
  createdAt: number;
}

/** The ghost of a contact with an address: every 1:1 contact. */
export type GhostRow = GhostRecord & { address: ContactAddress };

/** Ghosts kept in memory per database (most recently used). */
// Measured: 5,000 raised the idle RSS with 10,000 users by ~70 MB (bench memory run, SQLite),
// 1,000 by nothing visible; an active set is far smaller than that.
const CACHE_SIZE = 1000;

/**
 * Rows read through any GhostsTable of one knex, by contact, with the Matrix id and address keys
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
    if (row.address !== null) this.keys.set(`address\n${row.address}`, row.contact);
    if (this.rows.size > CACHE_SIZE) this.drop(this.rows.keys().next().value as string);
  }

  drop(contact: string): void {
    const row = this.rows.get(contact);
    if (row === undefined) return;
    this.rows.delete(contact);
    this.keys.delete(`mxid\n${row.mxid}`);
    this.keys.delete(`address\n${row.address}`);
  }
}

/** One cache per database and network: a network's table never reads another's rows. */
const caches = new WeakMap<Knex, Map<string, GhostCache>>();

/**
 * The `ghosts` table: the Matrix puppet of each contact the bridge has seen, per network (two
 * networks may use the same remote id for different people).
 */
export class GhostsTable {
  private readonly cache: GhostCache;

  constructor(
    private readonly knex: Knex,
    /** The network whose rows these are (its description's id): written on insert, and every lookup by a remote id or address reads only its rows (migration 0019). */
    private readonly network: string,
  ) {
    let byNetwork = caches.get(knex);
    if (byNetwork === undefined) {
      byNetwork = new Map();
      caches.set(knex, byNetwork);
    }
    let cache = byNetwork.get(network);
    if (cache === undefined) {
      cache = new GhostCache();
      byNetwork.set(network, cache);
    }
    this.cache = cache;
  }

  async get(contact: RemoteUserId): Promise<GhostRecord | undefined> {
    return this.cache.get(contact) ?? this.first({ remote_id: contact });
  }

  async byMxid(mxid: MatrixUserId): Promise<GhostRecord | undefined> {
    return this.cache.get(this.cache.contactOf(`mxid\n${mxid}`)) ?? this.first({ mxid });
  }

  async byAddress(address: ContactAddress): Promise<GhostRecord | undefined> {
    return this.cache.get(this.cache.contactOf(`address\n${address}`)) ?? this.first({ address });
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
        remote_id: ghost.contact,
        address: ghost.address,
        network: this.network,
        mxid: ghost.mxid,
        display_name: ghost.displayName,
        created_at: now,
      })
      .onConflict(["network", "remote_id"])
      .merge(["display_name"]);
  }

  private async first(where: Record<string, unknown>): Promise<GhostRecord | undefined> {
    const row = (await this.knex("ghosts")
      .where({ ...where, network: this.network })
      .first()) as Record<string, unknown> | undefined;
    if (row === undefined) return undefined;
    // Frozen: the cached object is shared by every reader.
    const ghost: GhostRecord = Object.freeze({
      contact: String(row["remote_id"]) as RemoteUserId,
      address: readStringOrNull(row["address"]) as ContactAddress | null,
      mxid: String(row["mxid"]) as MatrixUserId,
      displayName: readStringOrNull(row["display_name"]),
      createdAt: Number(row["created_at"]),
    });
    this.cache.put(ghost);
    return ghost;
  }
}
