import type { Knex } from "knex";
import type { RemoteUserId } from "../core/network.js";
import type { MatrixUserId, RoomId } from "../util/ids.js";
import { readStringOrNull } from "./values.js";

/**
 * none: an ordinary conversation; incoming-pending: a message request the user has not answered;
 * outgoing-pending: the user wrote first and the contact has not replied; accepted: a request was
 * answered; declined: the user rejected an incoming request.
 */
export type RequestState =
  "none" | "incoming-pending" | "outgoing-pending" | "accepted" | "declined";
export type UserMembership = "invite" | "join" | "leave";

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

/** The `portals` table: one direct room per (Matrix user, contact). */
export class PortalsTable {
  constructor(private readonly knex: Knex) {}

  async get(user: MatrixUserId, contact: RemoteUserId): Promise<PortalRow | undefined> {
    return this.first({ user_mxid: user, contact_jid: contact });
  }

  async byId(id: number): Promise<PortalRow | undefined> {
    return this.first({ id });
  }

  async byRoom(room: RoomId): Promise<PortalRow | undefined> {
    return this.first({ room_id: room });
  }

  async listByUser(user: MatrixUserId): Promise<PortalRow[]> {
    const rows = (await this.knex("portals").where({ user_mxid: user }).orderBy("id")) as Record<
      string,
      unknown
    >[];
    return rows.map(toPortal);
  }

  /** Creates the portal row (without a room yet); returns the existing one if it exists. */
  async ensure(
    user: MatrixUserId,
    contact: RemoteUserId,
    requestState: RequestState,
    now = Date.now(),
  ): Promise<PortalRow> {
    await this.knex("portals")
      .insert({
        user_mxid: user,
        contact_jid: contact,
        request_state: requestState,
        created_at: now,
        updated_at: now,
      })
      .onConflict(["user_mxid", "contact_jid"])
      .ignore();
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
    await this.knex("portals").where({ id }).update(values);
  }

  async deleteByUser(user: MatrixUserId): Promise<void> {
    await this.knex("portals").where({ user_mxid: user }).del();
  }

  async count(): Promise<number> {
    const row = (await this.knex("portals").count({ n: "*" }).first()) as { n: number | string };
    return Number(row.n);
  }

  private async first(where: Record<string, unknown>): Promise<PortalRow | undefined> {
    const row = (await this.knex("portals").where(where).first()) as
      Record<string, unknown> | undefined;
    return row === undefined ? undefined : toPortal(row);
  }
}

function toPortal(row: Record<string, unknown>): PortalRow {
  return {
    id: Number(row["id"]),
    userMxid: String(row["user_mxid"]) as MatrixUserId,
    contact: String(row["contact_jid"]) as RemoteUserId,
    roomId: readStringOrNull(row["room_id"]) as RoomId | null,
    requestState: String(row["request_state"]) as RequestState,
    userMembership: String(row["user_membership"]) as UserMembership,
    createdAt: Number(row["created_at"]),
    updatedAt: Number(row["updated_at"]),
  };
}
