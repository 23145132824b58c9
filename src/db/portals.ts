import type { Knex } from "knex";
import type { RemoteUserId } from "../util/ids.js";
import type { MatrixUserId, RoomId } from "../util/ids.js";
import { readStringOrNull } from "./values.js";

/**
 * none: an ordinary conversation; incoming-pending: a message request the user has not answered;
 * outgoing-pending: the user wrote first and the contact has not replied; accepted: a request was
 * answered; declined: the user rejected an incoming request.
 */
type RequestState = "none" | "incoming-pending" | "outgoing-pending" | "accepted" | "declined";
type UserMembership = "invite" | "join" | "leave";

export interface PortalRow {
  id: number;
  userMxid: MatrixUserId;
  contact: RemoteUserId;
  roomId: RoomId | null;
  requestState: RequestState;
  userMembership: UserMembership;
  createdAt: number;
  updatedAt: number;
}

/** Portals kept in memory per database (most recently used); more than a busy bridge's active set. */
// Measured: 5,000 raised the idle RSS with 10,000 users by ~70 MB (bench memory run, SQLite),
// 1,000 by nothing visible; an active set is far smaller than that.
const CACHE_SIZE = 1000;

/**
 * Rows read through any PortalsTable of one knex, by id, with the (user, contact) and room keys
 * pointing at the id. Write-through: every write of this module updates or drops the entry, and
 * nothing else in the bridge writes the table (issue #15: the same portal was read two or three
 * times per message).
 */
class PortalCache {
  private readonly rows = new Map<number, PortalRow>();
  private readonly byPair = new Map<string, number>();
  private readonly byRoomId = new Map<string, number>();

  get(id: number | undefined): PortalRow | undefined {
    if (id === undefined) return undefined;
    const row = this.rows.get(id);
    if (row !== undefined) {
      this.rows.delete(id);
      this.rows.set(id, row);
    }
    return row;
  }

  idOfPair(user: MatrixUserId, contact: RemoteUserId): number | undefined {
    return this.byPair.get(pairKey(user, contact));
  }

  idOfRoom(room: RoomId): number | undefined {
    return this.byRoomId.get(room);
  }

  put(row: PortalRow): void {
    this.drop(row.id);
    this.rows.set(row.id, row);
    this.byPair.set(pairKey(row.userMxid, row.contact), row.id);
    if (row.roomId !== null) this.byRoomId.set(row.roomId, row.id);
    if (this.rows.size > CACHE_SIZE) this.drop(this.rows.keys().next().value as number);
  }

  drop(id: number): void {
    const row = this.rows.get(id);
    if (row === undefined) return;
    this.rows.delete(id);
    this.byPair.delete(pairKey(row.userMxid, row.contact));
    if (row.roomId !== null && this.byRoomId.get(row.roomId) === id)
      this.byRoomId.delete(row.roomId);
  }

  dropUser(user: MatrixUserId): void {
    for (const row of [...this.rows.values()]) if (row.userMxid === user) this.drop(row.id);
  }
}

const pairKey = (user: string, contact: string) => `${user}\n${contact}`;
/** One cache per database and network: a network's table never reads another's rows. */
const caches = new WeakMap<Knex, Map<string, PortalCache>>();

function cacheOf(knex: Knex, network: string): PortalCache {
  let byNetwork = caches.get(knex);
  if (byNetwork === undefined) {
    byNetwork = new Map();
    caches.set(knex, byNetwork);
  }
  let cache = byNetwork.get(network);
  if (cache === undefined) {
    cache = new PortalCache();
    byNetwork.set(network, cache);
  }
  return cache;
}

/**
 * The `portals` table: one direct room per (Matrix user, network, contact). Every read is of the
 * network's own portals: two networks may use the same remote id for different people.
 */
export class PortalsTable {
  private readonly cache: PortalCache;

  constructor(
    private readonly knex: Knex,
    /** The network whose rows these are (its description's id): written on insert, and every lookup by a remote id or address reads only its rows (migration 0019). */
    private readonly network: string,
  ) {
    this.cache = cacheOf(knex, network);
  }

  async get(user: MatrixUserId, contact: RemoteUserId): Promise<PortalRow | undefined> {
    return (
      this.cache.get(this.cache.idOfPair(user, contact)) ??
      this.first({ user_mxid: user, remote_id: contact })
    );
  }

  async byId(id: number): Promise<PortalRow | undefined> {
    return this.cache.get(id) ?? this.first({ id });
  }

  async byRoom(room: RoomId): Promise<PortalRow | undefined> {
    return this.cache.get(this.cache.idOfRoom(room)) ?? this.first({ room_id: room });
  }

  async listByUser(user: MatrixUserId): Promise<PortalRow[]> {
    const rows = (await this.knex("portals")
      .where({ user_mxid: user, network: this.network })
      .orderBy("id")) as Record<string, unknown>[];
    return rows.map(toPortal);
  }

  /** Forgets the cached copy of a portal (for a caller that changed it outside this module). */
  forget(id: number): void {
    this.cache.drop(id);
  }

  /** Creates the portal row (without a room yet); returns the existing one if it exists. */
  async ensure(
    user: MatrixUserId,
    contact: RemoteUserId,
    requestState: RequestState,
    now = Date.now(),
  ): Promise<PortalRow> {
    // An existing portal is read (from the cache, mostly); a new one is inserted and returned by
    // the insert itself. Only a concurrent creation (the insert found the row) reads again.
    const known = await this.get(user, contact);
    if (known !== undefined) return known;
    const [inserted] = (await this.knex("portals")
      .insert({
        user_mxid: user,
        remote_id: contact,
        network: this.network,
        request_state: requestState,
        created_at: now,
        updated_at: now,
      })
      .onConflict(["user_mxid", "network", "remote_id"])
      .ignore()
      .returning("*")) as Record<string, unknown>[];
    if (inserted !== undefined) {
      const portal = Object.freeze(toPortal(inserted));
      this.cache.put(portal);
      return portal;
    }
    const row = await this.get(user, contact);
    if (row === undefined) throw new Error(`portal ${user} / ${contact} vanished after its insert`);
    return row;
  }

  async update(
    id: number,
    patch: Partial<Pick<PortalRow, "roomId" | "requestState" | "userMembership">>,
    now = Date.now(),
  ): Promise<void> {
    const values: Record<string, unknown> = { updated_at: now };
    if (patch.roomId !== undefined) values["room_id"] = patch.roomId;
    if (patch.requestState !== undefined) values["request_state"] = patch.requestState;
    if (patch.userMembership !== undefined) values["user_membership"] = patch.userMembership;
    // Dropped before and after: a read racing the write cannot leave the old row cached.
    this.cache.drop(id);
    try {
      await this.knex("portals").where({ id }).update(values);
    } finally {
      this.cache.drop(id);
    }
  }

  async deleteByUser(user: MatrixUserId): Promise<void> {
    this.cache.dropUser(user);
    try {
      await this.knex("portals").where({ user_mxid: user, network: this.network }).del();
    } finally {
      this.cache.dropUser(user);
    }
  }

  async count(): Promise<number> {
    const row = (await this.knex("portals")
      .where({ network: this.network })
      .count({ n: "*" })
      .first()) as { n: number | string };
    return Number(row.n);
  }

  /** How many of the network's portals have a room (the metrics' portals). */
  async countWithRoom(): Promise<number> {
    const row = (await this.knex("portals")
      .where({ network: this.network })
      .whereNotNull("room_id")
      .count({ n: "*" })
      .first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  }

  private async first(where: Record<string, unknown>): Promise<PortalRow | undefined> {
    const row = (await this.knex("portals")
      .where({ ...where, network: this.network })
      .first()) as Record<string, unknown> | undefined;
    if (row === undefined) return undefined;
    // Frozen: the cached object is shared by every reader.
    const portal = Object.freeze(toPortal(row));
    this.cache.put(portal);
    return portal;
  }
}

function toPortal(row: Record<string, unknown>): PortalRow {
  return {
    id: Number(row["id"]),
    userMxid: String(row["user_mxid"]) as MatrixUserId,
    contact: String(row["remote_id"]) as RemoteUserId,
    roomId: readStringOrNull(row["room_id"]) as RoomId | null,
    requestState: String(row["request_state"]) as RequestState,
    userMembership: String(row["user_membership"]) as UserMembership,
    createdAt: Number(row["created_at"]),
    updatedAt: Number(row["updated_at"]),
  };
}
