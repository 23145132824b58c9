import type { Knex } from "knex";
import type { MatrixUserId, RemoteGroupId, RemoteUserId, RoomId } from "../util/ids.js";
import { readBool, readStringOrNull } from "./values.js";

export interface GroupPortalRow {
  id: number;
  remoteId: RemoteGroupId;
  roomId: RoomId | null;
  subject: string;
  /** The network's version of the group that the room reflects (0 before the first info). */
  version: number;
}

export interface GroupMemberRow {
  remoteId: RemoteUserId;
  admin: boolean;
  displayName: string;
}

/** none: an ordinary member; incoming-pending: added by someone else and not yet joined. */
type GroupRequestState = "none" | "incoming-pending" | "accepted" | "declined";
type GroupUserMembership = "invite" | "join" | "leave";

interface GroupUserRow {
  portalId: number;
  user: MatrixUserId;
  membership: GroupUserMembership;
  requestState: GroupRequestState;
}

/**
 * The group portal tables of migration 0014: `group_portals` (one room per group per bridge),
 * `group_members` (the members at the network as last applied) and `group_users` (the Matrix users
 * of this bridge in the group). Not cached: group events are far fewer than messages, and a
 * message's portal is read once per report.
 */
export class GroupPortalsTable {
  constructor(
    private readonly knex: Knex,
    /** The network whose groups these are (its description's id): written on insert, and every lookup reads only its rows (migration 0019). */
    private readonly network: string,
  ) {}

  async byRemote(remoteId: RemoteGroupId): Promise<GroupPortalRow | undefined> {
    return this.first({ remote_id: remoteId });
  }

  async byRoom(room: RoomId): Promise<GroupPortalRow | undefined> {
    return this.first({ room_id: room });
  }

  async byId(id: number): Promise<GroupPortalRow | undefined> {
    return this.first({ id });
  }

  /** The row of a group (without a room yet), created if missing. */
  async ensure(remoteId: RemoteGroupId, now = Date.now()): Promise<GroupPortalRow> {
    await this.knex("group_portals")
      .insert({ remote_id: remoteId, network: this.network, created_at: now, updated_at: now })
      .onConflict(["network", "remote_id"])
      .ignore();
    const row = await this.byRemote(remoteId);
    if (row === undefined) throw new Error(`group portal ${remoteId} vanished after its insert`);
    return row;
  }

  async update(
    id: number,
    patch: Partial<Pick<GroupPortalRow, "roomId" | "subject" | "version">>,
    now = Date.now(),
  ): Promise<void> {
    const values: Record<string, unknown> = { updated_at: now };
    if (patch.roomId !== undefined) values["room_id"] = patch.roomId;
    if (patch.subject !== undefined) values["subject"] = patch.subject;
    if (patch.version !== undefined) values["version"] = patch.version;
    await this.knex("group_portals").where({ id }).update(values);
  }

  /**
   * Moves the portal to `version` if it is newer than the stored one, atomically: true when this
   * call advanced it (the change is to be applied), false for a stale or repeated change.
   */
  async advanceVersion(id: number, version: number, now = Date.now()): Promise<boolean> {
    const changed = await this.knex("group_portals")
      .where({ id })
      .andWhere("version", "<", version)
      .update({ version, updated_at: now });
    return Number(changed) > 0;
  }

  async members(portalId: number): Promise<GroupMemberRow[]> {
    const rows = (await this.knex("group_members")
      .where({ portal_id: portalId })
      .orderBy("remote_id")) as Record<string, unknown>[];
    return rows.map((r) => ({
      remoteId: String(r["remote_id"]) as RemoteUserId,
      admin: readBool(r["admin"]),
      displayName: String(r["display_name"]),
    }));
  }

  /** One member, read by its key: per message, where reading every member grew with the group. */
  async member(portalId: number, remoteId: RemoteUserId): Promise<GroupMemberRow | undefined> {
    const r = (await this.knex("group_members")
      .where({ portal_id: portalId, remote_id: remoteId })
      .first()) as Record<string, unknown> | undefined;
    if (r === undefined) return undefined;
    return {
      remoteId: String(r["remote_id"]) as RemoteUserId,
      admin: readBool(r["admin"]),
      displayName: String(r["display_name"]),
    };
  }

  async putMembers(portalId: number, members: readonly GroupMemberRow[]): Promise<void> {
    for (const m of members) {
      await this.knex("group_members")
        .insert({
          portal_id: portalId,
          remote_id: m.remoteId,
          admin: m.admin,
          display_name: m.displayName,
        })
        .onConflict(["portal_id", "remote_id"])
        .merge(["admin", "display_name"]);
    }
  }

  async removeMembers(portalId: number, ids: readonly RemoteUserId[]): Promise<void> {
    if (ids.length === 0) return;
    await this.knex("group_members").where({ portal_id: portalId }).whereIn("remote_id", ids).del();
  }

  async users(portalId: number): Promise<GroupUserRow[]> {
    const rows = (await this.knex("group_users")
      .where({ portal_id: portalId })
      .orderBy("user_mxid")) as Record<string, unknown>[];
    return rows.map(toUser);
  }

  async user(portalId: number, user: MatrixUserId): Promise<GroupUserRow | undefined> {
    const row = (await this.knex("group_users")
      .where({ portal_id: portalId, user_mxid: user })
      .first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : toUser(row);
  }

  /** The group portals a Matrix user is in (for a send failure's lookup and logout). */
  async portalIdsOfUser(user: MatrixUserId): Promise<number[]> {
    const rows = (await this.knex("group_users")
      .where({ user_mxid: user })
      .select("portal_id")) as {
      portal_id: unknown;
    }[];
    return rows.map((r) => Number(r.portal_id));
  }

  /** Adds the user to the group's portal, or updates their row. */
  async putUser(
    portalId: number,
    user: MatrixUserId,
    patch: Partial<Pick<GroupUserRow, "membership" | "requestState">>,
  ): Promise<void> {
    const values: Record<string, unknown> = {};
    if (patch.membership !== undefined) values["membership"] = patch.membership;
    if (patch.requestState !== undefined) values["request_state"] = patch.requestState;
    const insert = this.knex("group_users").insert({
      portal_id: portalId,
      user_mxid: user,
      ...values,
    });
    await (Object.keys(values).length === 0
      ? insert.onConflict(["portal_id", "user_mxid"]).ignore()
      : insert.onConflict(["portal_id", "user_mxid"]).merge(Object.keys(values)));
  }

  async removeUser(portalId: number, user: MatrixUserId): Promise<void> {
    await this.knex("group_users").where({ portal_id: portalId, user_mxid: user }).del();
  }

  private async first(where: Record<string, unknown>): Promise<GroupPortalRow | undefined> {
    const row = (await this.knex("group_portals")
      .where({ ...where, network: this.network })
      .first()) as Record<string, unknown> | undefined;
    if (row === undefined) return undefined;
    return {
      id: Number(row["id"]),
      remoteId: String(row["remote_id"]) as RemoteGroupId,
      roomId: readStringOrNull(row["room_id"]) as RoomId | null,
      subject: String(row["subject"]),
      version: Number(row["version"]),
    };
  }
}

function toUser(row: Record<string, unknown>): GroupUserRow {
  return {
    portalId: Number(row["portal_id"]),
    user: String(row["user_mxid"]) as MatrixUserId,
    membership: String(row["membership"]) as GroupUserMembership,
    requestState: String(row["request_state"]) as GroupRequestState,
  };
}
