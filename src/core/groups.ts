import type { GhostRecord } from "../db/ghosts.js";
import type { GroupMemberRow, GroupPortalRow, GroupPortalsTable } from "../db/groups.js";
import type { UsersTable } from "../db/users.js";
import { BridgeError, describeError, isTransientError } from "../util/errors.js";
import type { EventId, MatrixUserId, RemoteGroupId, RoomId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type { GhostManager } from "./ghosts.js";
import { KeyedLock } from "./keyed-lock.js";
import type { LoginManager } from "./logins.js";
import { MatrixRefusedError, type MatrixApi } from "./matrix-api.js";
import {
  isGroupCapable,
  type GroupCapable,
  type GroupInfo,
  type GroupMember,
  type GroupRejection,
  type NetworkLogin,
  type RemoteUserId,
} from "./network.js";
import {
  groupChangeRefused,
  groupMembersRejected,
  groupNotMember,
  groupOutsiderNotice,
  groupOutsiderReason,
  groupRequestNotice,
  notLoggedIn,
} from "./texts.js";

/** A group admin's power level in the portal (docs/groups.md, decision 7). */
const ADMIN_LEVEL = 50;

export type OpenGroupPortal = GroupPortalRow & { roomId: RoomId };
type GroupLogin = NetworkLogin & GroupCapable;

/**
 * Group portals: one room per group per bridge, shared by the bridge's users who are members
 * (docs/groups.md). Members at the network are ghosts; members who are Matrix users of this
 * bridge (a login's `selfId()`) are themselves, invited by the bot. The room follows the network:
 * `group-info` reconciles it, `group-change`/`group-subject` apply in version order (a change not
 * newer than the portal's version is ignored). What a user changes in the room goes through their
 * own login; what the network refuses is undone in the room with a notice.
 */
export class GroupManager {
  /** Serialises changes to one group's room (network events and Matrix-side changes). */
  private readonly lock = new KeyedLock();

  readonly table: GroupPortalsTable;
  private readonly users: UsersTable;
  private readonly ghosts: GhostManager;
  private readonly logins: Pick<LoginManager, "get" | "userOfSelfId">;
  private readonly matrix: MatrixApi;
  private readonly log: Logger;

  constructor(options: {
    table: GroupPortalsTable;
    users: UsersTable;
    ghosts: GhostManager;
    logins: Pick<LoginManager, "get" | "userOfSelfId">;
    matrix: MatrixApi;
    log: Logger;
  }) {
    this.table = options.table;
    this.users = options.users;
    this.ghosts = options.ghosts;
    this.logins = options.logins;
    this.matrix = options.matrix;
    this.log = options.log;
  }

  /** The group login of a user, or undefined (no login, or a network without groups). */
  groupLogin(user: MatrixUserId): GroupLogin | undefined {
    const login = this.logins.get(user);
    return login !== undefined && isGroupCapable(login) ? login : undefined;
  }

  /** The portal of a group, created from the network's info through `user`'s login if missing. */
  async portalFor(user: MatrixUserId, group: RemoteGroupId): Promise<OpenGroupPortal | undefined> {
    const row = await this.table.byRemote(group);
    const open = opened(row);
    if (open !== undefined) return open;
    const login = this.groupLogin(user);
    if (login === undefined) return undefined;
    await this.applyInfo(user, await login.groupInfo(group));
    const created = await this.table.byRemote(group);
    return opened(created);
  }

  /**
   * The group as the network has it now: creates the room on first sight, otherwise reconciles
   * members, admins and the subject with it (an info older than the room's version changes
   * nothing but still brings the reporting user in). `addedBy` makes it a request for `user`.
   */
  async applyInfo(user: MatrixUserId, info: GroupInfo, addedBy?: RemoteUserId): Promise<void> {
    await this.lock.run(info.id, () => this.applyInfoNow(user, info, addedBy));
  }

  private async applyInfoNow(
    user: MatrixUserId,
    info: GroupInfo,
    addedBy?: RemoteUserId,
  ): Promise<void> {
    const row = await this.table.ensure(info.id);
    const isRequest = addedBy !== undefined && this.logins.userOfSelfId(addedBy) === undefined;
    if (row.roomId === null) {
      await this.createRoom(row, info, user, isRequest ? addedBy : undefined);
    } else if (info.version >= row.version) {
      const portal = { ...row, roomId: row.roomId };
      const stored = await this.table.members(row.id);
      const now = new Map(info.members.map((m) => [m.id, m]));
      const gone = stored.filter((m) => !now.has(m.remoteId)).map((m) => m.remoteId);
      await this.removeMembers(portal, gone);
      const known = new Map(stored.map((m) => [m.remoteId, m]));
      await this.addMembers(
        portal,
        info.members.filter((m) => !known.has(m.id)),
      );
      const changedRole = info.members.filter((m) => {
        const before = known.get(m.id);
        return before !== undefined && before.admin !== m.admin;
      });
      await this.setRoles(portal, changedRole);
      await this.table.putMembers(row.id, info.members.map(memberRow));
      if (info.subject !== row.subject) {
        await this.bestEffort("name", portal.roomId, () =>
          this.matrix.setRoomName(this.matrix.botUserId, portal.roomId, info.subject),
        );
      }
      await this.table.update(row.id, { subject: info.subject, version: info.version });
    }
    const portal = opened(await this.table.byId(row.id));
    if (portal === undefined) return;
    // The reporting user may be new to the room (a second login's info, or an add by someone).
    const self = this.groupLogin(user)?.selfId();
    if (self !== undefined && info.members.some((m) => m.id === self)) {
      await this.bringUser(portal, user, isRequest ? addedBy : undefined);
    }
  }

  /** One membership or role change, in version order; stale and repeated changes are ignored. */
  async applyChange(
    user: MatrixUserId,
    group: RemoteGroupId,
    version: number,
    change: "added" | "removed" | "left" | "promoted" | "demoted",
    members: readonly GroupMember[],
    by: RemoteUserId | null = null,
  ): Promise<void> {
    const portal = opened(await this.table.byRemote(group));
    if (portal === undefined) {
      // Not yet seen: the whole group is fetched, which includes this change.
      await this.portalFor(user, group);
      return;
    }
    await this.lock.run(group, async () => {
      // The version advances only after the room operations (idempotent) succeeded: a change
      // that failed halfway (homeserver error, crash) is applied again when redelivered.
      const current = opened(await this.table.byRemote(group));
      if (current === undefined || version <= current.version) {
        this.log.debug({ group, version }, "stale group change ignored");
        return;
      }
      await this.applyChangeNow(current, change, members, by);
      await this.table.advanceVersion(portal.id, version);
    });
  }

  private async applyChangeNow(
    open: OpenGroupPortal,
    change: "added" | "removed" | "left" | "promoted" | "demoted",
    members: readonly GroupMember[],
    by: RemoteUserId | null,
  ): Promise<void> {
    const portal = open;
    switch (change) {
      case "added":
        // Added by someone who is not a user of this bridge: a request for local users added.
        await this.addMembers(
          open,
          members,
          by !== null && this.logins.userOfSelfId(by) === undefined ? by : undefined,
        );
        await this.table.putMembers(portal.id, members.map(memberRow));
        return;
      case "removed":
      case "left":
        await this.removeMembers(
          open,
          members.map((m) => m.id),
        );
        return;
      case "promoted":
      case "demoted": {
        const changed = members.map((m) => ({ ...m, admin: change === "promoted" }));
        await this.setRoles(open, changed);
        await this.table.putMembers(portal.id, changed.map(memberRow));
      }
    }
  }

  async applySubject(
    user: MatrixUserId,
    group: RemoteGroupId,
    version: number,
    subject: string,
  ): Promise<void> {
    const portal = opened(await this.table.byRemote(group));
    if (portal === undefined) {
      await this.portalFor(user, group);
      return;
    }
    await this.lock.run(group, async () => {
      const current = opened(await this.table.byRemote(group));
      if (current === undefined || version <= current.version) return;
      // Renamed first, the version last: a failed rename is retried when redelivered.
      await this.bestEffort("name", portal.roomId, () =>
        this.matrix.setRoomName(this.matrix.botUserId, portal.roomId, subject),
      );
      await this.table.update(portal.id, { subject });
      await this.table.advanceVersion(portal.id, version);
    });
  }

  /** The ghost of a member, named by the connector's label when they have no address. */
  async ghostOf(portalId: number, id: RemoteUserId): Promise<GhostRecord> {
    const member = await this.table.member(portalId, id);
    return this.ghosts.ensureMember({ id, displayName: member?.displayName ?? id });
  }

  // Matrix → network: what a user changes in the room, through their own login.

  /**
   * The login a user acts through in a group portal, or undefined after a notice saying why
   * (no login; not a member of the group at the network).
   */
  async actingLogin(
    user: MatrixUserId,
    portal: OpenGroupPortal,
    replyTo?: EventId,
  ): Promise<GroupLogin | undefined> {
    const login = this.groupLogin(user);
    if (login === undefined) {
      await this.matrix.sendNotice(portal.roomId, `Not sent. ${notLoggedIn}`, replyTo);
      return undefined;
    }
    const member = await this.table.member(portal.id, login.selfId());
    if (member === undefined || (await this.table.user(portal.id, user)) === undefined) {
      await this.matrix.sendNotice(portal.roomId, groupNotMember, replyTo);
      return undefined;
    }
    return login;
  }

  /** The user invited a ghost into the group portal: the member is added at the network. */
  async onGhostInvited(user: MatrixUserId, portal: OpenGroupPortal, ghost: MatrixUserId) {
    await this.change(
      user,
      portal,
      "adding a member",
      async (login) => {
        const contact = await this.contactOfGhost(login, ghost);
        const { info, rejected } = await login.addGroupMembers(portal.remoteId, [contact]);
        await this.reportRejected(portal, rejected);
        return info;
      },
      async () => {
        await this.matrix.kick(this.matrix.botUserId, portal.roomId, ghost).catch(this.ignore);
      },
    );
  }

  /**
   * A Matrix user who is not a ghost was invited into the group portal, or joined it, by someone
   * other than the bot. Only the group's members may read the room (docs/groups.md, "Who is in a
   * group's room"): ghosts, and users of this bridge whose own login is a member (the bridge
   * invites those itself, with a row here). Anyone else is kicked by the bot with a notice; a
   * user of this bridge joins by being added at the network (by a member, or by themselves).
   */
  async onOutsider(portal: OpenGroupPortal, target: MatrixUserId): Promise<void> {
    if (target === this.matrix.botUserId) return;
    if ((await this.table.user(portal.id, target)) !== undefined) return;
    this.log.info({ group: portal.remoteId, target }, "a non-member in the group portal removed");
    await this.bestEffort("kick a non-member", portal.roomId, () =>
      this.matrix.kick(this.matrix.botUserId, portal.roomId, target, groupOutsiderReason),
    );
    await this.matrix.sendNotice(portal.roomId, groupOutsiderNotice(target));
  }

  /** The user kicked a ghost from the group portal: the member is removed at the network. */
  async onGhostKicked(user: MatrixUserId, portal: OpenGroupPortal, ghost: MatrixUserId) {
    await this.change(
      user,
      portal,
      "removing a member",
      async (login) => {
        const contact = await this.contactOfGhost(login, ghost);
        return login.removeGroupMembers(portal.remoteId, [contact]);
      },
      async () => {
        await this.matrix.invite(this.matrix.botUserId, portal.roomId, ghost).catch(this.ignore);
        await this.matrix.join(ghost, portal.roomId).catch(this.ignore);
      },
    );
  }

  /** The user renamed the group portal: the subject changes at the network. */
  async onRenamed(user: MatrixUserId, portal: OpenGroupPortal, name: string) {
    await this.change(
      user,
      portal,
      "renaming the group",
      (login) => login.setGroupSubject(portal.remoteId, name),
      async () => {
        await this.matrix.setRoomName(this.matrix.botUserId, portal.roomId, portal.subject);
      },
    );
  }

  /**
   * The user changed power levels: a ghost the change raised to 50 or more becomes an admin, one
   * it lowered below 50 stops being one. Only levels this event changed count (`before` is the
   * previous event's): a room whose levels never matched the group (a room made a group by
   * `create-group`, where the bot may lack the power) must not demote admins on any unrelated
   * change. Other changes are the room's own business.
   */
  async onPowerLevels(
    user: MatrixUserId,
    portal: OpenGroupPortal,
    levels: UserLevels,
    before: UserLevels,
  ): Promise<void> {
    const members = await this.table.members(portal.id);
    for (const member of members) {
      if (this.logins.userOfSelfId(member.remoteId) !== undefined) continue;
      const ghost = await this.ghostOf(portal.id, member.remoteId);
      const was = levelOf(before, ghost.mxid) >= ADMIN_LEVEL;
      const admin = levelOf(levels, ghost.mxid) >= ADMIN_LEVEL;
      if (admin === was || admin === member.admin) continue;
      await this.change(
        user,
        portal,
        admin ? "making an admin" : "removing an admin",
        (login) => login.setGroupAdmins(portal.remoteId, [member.remoteId], admin),
        async () => {
          await this.matrix.setUserPowerLevels(portal.roomId, {
            [ghost.mxid]: member.admin ? ADMIN_LEVEL : 0,
          });
        },
      );
    }
  }

  /**
   * The user's own membership: joining accepts a request; leaving (or rejecting the invite)
   * leaves the group at the network.
   */
  async onUserMembership(
    user: MatrixUserId,
    portal: OpenGroupPortal,
    membership: "join" | "leave",
  ): Promise<void> {
    const row = await this.table.user(portal.id, user);
    if (row === undefined) return;
    if (membership === "join") {
      await this.table.putUser(portal.id, user, {
        membership: "join",
        ...(row.requestState === "incoming-pending" ? { requestState: "accepted" as const } : {}),
      });
      return;
    }
    await this.table.removeUser(portal.id, user);
    const login = this.groupLogin(user);
    if (login === undefined) return;
    try {
      await login.leaveGroup(portal.remoteId);
    } catch (err) {
      if (isTransientError(err)) throw err;
      this.log.warn({ user, group: portal.remoteId, err: describeError(err) }, "leave refused");
    }
  }

  /**
   * Whether an event by `by` in a group makes a new message request for `user`: an add (or a
   * message) by someone who is not a local user, in a group whose room the user is not in yet (a
   * redelivered or later event of a group they are in, or were brought into, is not a new
   * request). Counted by the caller against the same hourly limit as 1:1 requests.
   */
  async isNewRequest(
    user: MatrixUserId,
    group: RemoteGroupId,
    addedBy: RemoteUserId | undefined,
  ): Promise<boolean> {
    if (addedBy === undefined || this.logins.userOfSelfId(addedBy) !== undefined) return false;
    const row = await this.table.byRemote(group);
    if (row === undefined) return true;
    const known = await this.table.user(row.id, user);
    return known === undefined || known.membership === "leave";
  }

  /** How many group portals the user is in (what a logout keeps). */
  async portalCountOf(user: MatrixUserId): Promise<number> {
    return (await this.table.portalIdsOfUser(user)).length;
  }

  /**
   * Clean-up after a logout (`clean-up`, or logout leaving the portals): the user is taken out of
   * every group portal (kicked by the bot; the room stays the other members'), and their rows go,
   * so that a later login, perhaps with another address, starts from the groups it is in. The row
   * goes first: the kick's leave event then finds none and is not taken for a leave at the network.
   */
  async removeUserFromAll(user: MatrixUserId): Promise<number> {
    let removed = 0;
    for (const id of await this.table.portalIdsOfUser(user)) {
      const portal = await this.table.byId(id);
      if (portal === undefined) continue;
      await this.lock.run(portal.remoteId, async () => {
        await this.table.removeUser(portal.id, user);
        if (portal.roomId === null) return;
        await this.matrix
          .kick(this.matrix.botUserId, portal.roomId, user, "logged out of the bridge")
          .catch((err: unknown) => {
            this.log.warn({ err, room: portal.roomId }, "user could not be taken out of a group");
          });
      });
      removed += 1;
    }
    return removed;
  }

  /** Makes a group at the network from Matrix and its portal; the user is invited to it. */
  async create(
    user: MatrixUserId,
    subject: string,
    members: readonly RemoteUserId[],
  ): Promise<{ room: RoomId; group: RemoteGroupId; rejected: readonly GroupRejection[] }> {
    const login = this.groupLogin(user);
    if (login === undefined) {
      throw new BridgeError("groups-unsupported", "Your login cannot create groups.");
    }
    if (members.length + 1 > login.maxGroupSize()) {
      throw new BridgeError(
        "group-full",
        `A group can have at most ${login.maxGroupSize()} members, you included.`,
      );
    }
    const { info, rejected } = await login.createGroup(subject, members);
    await this.applyInfo(user, info);
    const portal = opened(await this.table.byRemote(info.id));
    if (portal === undefined) throw new Error(`group ${info.id} has no room after its creation`);
    if (rejected.length > 0) await this.reportRejected(portal, rejected);
    return { room: portal.roomId, group: info.id, rejected };
  }

  /**
   * bridgev2's `create-group` in a room of the user's: the group is made with the members whose
   * ghosts are in the room, and the room becomes its portal. The room stays the user's: where
   * the bridge lacks the power to rename it or set power levels, that is skipped.
   */
  async createInRoom(
    user: MatrixUserId,
    room: RoomId,
    subject: string,
    members: readonly RemoteUserId[],
  ): Promise<{ group: RemoteGroupId; rejected: readonly GroupRejection[] }> {
    const login = this.groupLogin(user);
    if (login === undefined) {
      throw new BridgeError("groups-unsupported", "Your login cannot create groups.");
    }
    if ((await this.table.byRoom(room)) !== undefined) {
      throw new BridgeError("room-in-use", "This room is a group's room already.");
    }
    if (members.length + 1 > login.maxGroupSize()) {
      throw new BridgeError(
        "group-full",
        `A group can have at most ${login.maxGroupSize()} members, you included.`,
      );
    }
    const { info, rejected } = await login.createGroup(subject, members);
    await this.lock.run(info.id, async () => {
      const row = await this.table.ensure(info.id);
      await this.table.update(row.id, {
        roomId: room,
        subject: info.subject,
        version: info.version,
      });
      await this.table.putMembers(row.id, info.members.map(memberRow));
      await this.table.putUser(row.id, user, { membership: "join", requestState: "none" });
      const portal = { ...row, roomId: room, subject: info.subject, version: info.version };
      const others = info.members.filter((m) => this.logins.userOfSelfId(m.id) !== user);
      await this.addMembers(portal, others);
      const self = info.members.find((m) => this.logins.userOfSelfId(m.id) === user);
      if (self?.admin === true) await this.setRoles(portal, [self]);
    });
    const portal = opened(await this.table.byRemote(info.id));
    if (portal !== undefined) {
      for (const r of rejected) {
        const ghost = await this.ghosts.ensureMember({ id: r.id, displayName: r.id });
        await this.matrix.leave(ghost.mxid, room).catch(this.ignore);
      }
      await this.reportRejected(portal, rejected);
    }
    this.log.info({ group: info.id, room }, "a room of the user became a group portal");
    return { group: info.id, rejected };
  }

  // Internals.

  /**
   * A change of the room's state that a room of the user's may not allow the bot (a room made a
   * group by `create-group`): refused by the homeserver, it is skipped, not retried forever.
   */
  private async bestEffort(what: string, room: RoomId, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      if (!(err instanceof MatrixRefusedError) || err.errcode !== "M_FORBIDDEN") throw err;
      this.log.info({ room, what }, "no power for this in the room; skipped");
    }
  }

  /** The room of a group seen for the first time; `requestBy` makes it a request for `user`. */
  private async createRoom(
    row: GroupPortalRow,
    info: GroupInfo,
    user: MatrixUserId,
    requestBy: RemoteUserId | undefined,
  ): Promise<void> {
    const levels: Record<string, number> = {};
    const ghosts: GhostRecord[] = [];
    for (const m of info.members) {
      const local = this.logins.userOfSelfId(m.id);
      const mxid = local ?? (await this.ghosts.ensureMember(m)).mxid;
      if (local === undefined) ghosts.push(await this.ghosts.ensureMember(m));
      if (m.admin) levels[mxid] = ADMIN_LEVEL;
    }
    const room = await this.matrix.createGroupRoom({ name: info.subject, powerLevels: levels });
    await this.table.update(row.id, { roomId: room, subject: info.subject, version: info.version });
    for (const ghost of ghosts) {
      await this.matrix.invite(this.matrix.botUserId, room, ghost.mxid);
      await this.matrix.join(ghost.mxid, room);
    }
    for (const m of info.members) {
      const local = this.logins.userOfSelfId(m.id);
      if (local !== undefined) {
        await this.bringUser(
          { ...row, roomId: room },
          local,
          local === user ? requestBy : undefined,
        );
      }
    }
    // The member rows last: a redelivered info after a failed invite or join still finds the
    // members missing and brings them in (the room exists, so it is reconciled, not created).
    await this.table.putMembers(row.id, info.members.map(memberRow));
    this.log.info({ portal: row.id, room }, "group portal created");
  }

  /** Invites a Matrix user of the bridge who is a member (once); `requestBy` makes it a request. */
  private async bringUser(
    portal: OpenGroupPortal,
    user: MatrixUserId,
    requestBy?: RemoteUserId,
  ): Promise<void> {
    const existing = await this.table.user(portal.id, user);
    if (existing !== undefined && existing.membership !== "leave") {
      // Another login may have reported the add first (no `by` known then): the user's own
      // report that it is a request still makes it one while they have not joined.
      if (
        requestBy !== undefined &&
        existing.membership === "invite" &&
        existing.requestState === "none"
      ) {
        await this.table.putUser(portal.id, user, { requestState: "incoming-pending" });
        const by = this.ghosts.label(await this.ghostOf(portal.id, requestBy));
        await this.matrix.sendNotice(portal.roomId, groupRequestNotice(by));
      }
      return;
    }
    await this.users.ensure(user);
    await this.table.putUser(portal.id, user, {
      membership: "invite",
      requestState: requestBy === undefined ? "none" : "incoming-pending",
    });
    await this.matrix.invite(this.matrix.botUserId, portal.roomId, user);
    if (requestBy !== undefined) {
      const by = this.ghosts.label(await this.ghostOf(portal.id, requestBy));
      await this.matrix.sendNotice(portal.roomId, groupRequestNotice(by));
    }
  }

  /** `requestBy`: who added them, when that is a request for the local users among them. */
  private async addMembers(
    portal: OpenGroupPortal,
    members: readonly GroupMember[],
    requestBy?: RemoteUserId,
  ) {
    for (const m of members) {
      const local = this.logins.userOfSelfId(m.id);
      if (local !== undefined) {
        await this.bringUser(portal, local, requestBy);
        if (m.admin) await this.setRoles(portal, [m]);
        continue;
      }
      const ghost = await this.ghosts.ensureMember(m);
      // A ghost the user invited from Matrix is invited already: the bot's invite then fails.
      await this.matrix.invite(this.matrix.botUserId, portal.roomId, ghost.mxid).catch(this.ignore);
      await this.matrix.join(ghost.mxid, portal.roomId);
      if (m.admin) await this.setRoles(portal, [m]);
    }
  }

  private async removeMembers(portal: OpenGroupPortal, ids: readonly RemoteUserId[]) {
    for (const id of ids) {
      const local = this.logins.userOfSelfId(id);
      if (local !== undefined) {
        await this.table.removeUser(portal.id, local);
        // Gone already when the user left from Matrix; kicked when removed at the network.
        await this.matrix
          .kick(this.matrix.botUserId, portal.roomId, local, "removed from the group")
          .catch(this.ignore);
        continue;
      }
      const ghost = await this.ghostOf(portal.id, id);
      // A ghost the user kicked from Matrix has left already.
      await this.matrix.leave(ghost.mxid, portal.roomId).catch(this.ignore);
    }
    await this.table.removeMembers(portal.id, ids);
  }

  private async setRoles(portal: OpenGroupPortal, members: readonly GroupMember[]) {
    const levels: Record<string, number> = {};
    for (const m of members) {
      const mxid = this.logins.userOfSelfId(m.id) ?? (await this.ghosts.ensureMember(m)).mxid;
      levels[mxid] = m.admin ? ADMIN_LEVEL : 0;
    }
    if (Object.keys(levels).length > 0) {
      await this.bestEffort("power levels", portal.roomId, () =>
        this.matrix.setUserPowerLevels(portal.roomId, levels),
      );
    }
  }

  /**
   * Runs a Matrix-side change through the user's login; the group as it is afterwards is applied
   * to the room (the network's own report of the change is then stale). A refusal is undone with
   * `revert` and explained in the room.
   */
  private async change(
    user: MatrixUserId,
    portal: OpenGroupPortal,
    what: string,
    run: (login: GroupLogin) => Promise<GroupInfo>,
    revert: () => Promise<void>,
  ): Promise<void> {
    const login = this.groupLogin(user);
    let why: string;
    if (login === undefined) {
      why = notLoggedIn;
    } else {
      try {
        const info = await run(login);
        await this.applyInfo(user, info);
        return;
      } catch (err) {
        if (isTransientError(err)) throw err;
        if (!(err instanceof BridgeError)) {
          this.log.error(
            { group: portal.remoteId, err: describeError(err) },
            "group change failed",
          );
        }
        why = err instanceof BridgeError ? err.message : "an internal error.";
      }
    }
    this.log.info({ group: portal.remoteId, what }, "group change refused; undone in the room");
    await revert();
    await this.matrix.sendNotice(portal.roomId, groupChangeRefused(what, why));
  }

  private async contactOfGhost(login: GroupLogin, ghost: MatrixUserId): Promise<RemoteUserId> {
    const known = await this.ghosts.contactOfGhost(ghost);
    if (known !== undefined) return known;
    const address = this.ghosts.addressOfGhost(ghost);
    if (address === undefined) throw new BridgeError("unknown-ghost", "I do not know this person.");
    const resolution = await login.resolveAddress(address);
    if (!resolution.reachable) {
      const shown = this.ghosts.format(address);
      throw new BridgeError("not-reachable", `${shown} cannot be reached through the bridge.`);
    }
    return resolution.contact;
  }

  private async reportRejected(
    portal: OpenGroupPortal,
    rejected: readonly GroupRejection[],
  ): Promise<void> {
    if (rejected.length === 0) return;
    const names = [];
    for (const r of rejected) {
      const ghost = await this.ghosts
        .ensureMember({ id: r.id, displayName: r.id })
        .catch(() => null);
      names.push(ghost === null ? r.id : this.ghosts.label(ghost));
    }
    await this.matrix.sendNotice(portal.roomId, groupMembersRejected(names));
  }

  private readonly ignore = (err: unknown): void => {
    this.log.debug({ err: describeError(err) }, "room already as wanted");
  };
}

/** The users part of a room's power levels. */
export interface UserLevels {
  readonly users: Readonly<Record<string, number>>;
  readonly usersDefault: number;
}

function levelOf(levels: UserLevels, user: MatrixUserId): number {
  return levels.users[user] ?? levels.usersDefault;
}

/** The row of a group portal that has its room, or undefined. */
function opened(row: GroupPortalRow | undefined): OpenGroupPortal | undefined {
  return row === undefined || row.roomId === null ? undefined : { ...row, roomId: row.roomId };
}

function memberRow(m: GroupMember): GroupMemberRow {
  return { remoteId: m.id, admin: m.admin, displayName: m.displayName };
}
