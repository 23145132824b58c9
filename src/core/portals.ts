import type { ContactsTable } from "../db/contacts.js";
import type { GhostRow } from "../db/ghosts.js";
import type { PortalRow, PortalsTable } from "../db/portals.js";
import type { UsersTable } from "../db/users.js";
import type { MatrixUserId, RoomId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type { GhostManager } from "./ghosts.js";
import { KeyedLock } from "./keyed-lock.js";
import type { MatrixApi } from "./matrix-api.js";
import type { RemoteUserId } from "./network.js";
import { declinedNotice, outgoingPendingTopic, requestRoomTopic, spaceTopic } from "./texts.js";

export interface OpenPortal {
  portal: PortalRow & { roomId: RoomId };
  ghost: GhostRow;
  created: boolean;
}

/**
 * Direct rooms, one per (Matrix user, contact), created by the contact's ghost inviting the user
 * (and the bot, which posts the bridge's notices), kept in the user's space named after the network.
 *
 * Lifecycle: a user who leaves a portal keeps it; when the contact writes again, the message is
 * posted to the same room first and the user is invited back, so nothing is lost. A first
 * contact arrives as a message request (PROTOCOL.md §10.3): joining accepts, rejecting the invite
 * declines (the contact is not told) and the bot then offers block and report. A chat the user
 * starts stays "outgoing-pending" until the contact's first reply or request-accepted.
 */
export type LinkOutcome =
  | { kind: "linked" }
  | { kind: "elsewhere"; room: RoomId }
  /** The room already serves the bridge: another chat's portal or a management room. */
  | { kind: "room-in-use" };

export class PortalManager {
  /** Serialises room creation per (user, contact): one portal room, never two. */
  private readonly lock = new KeyedLock();

  private readonly portals: PortalsTable;
  private readonly users: UsersTable;
  private readonly contacts: ContactsTable;
  private readonly ghosts: GhostManager;
  private readonly matrix: MatrixApi;
  private readonly log: Logger;

  constructor(options: {
    portals: PortalsTable;
    users: UsersTable;
    contacts: ContactsTable;
    ghosts: GhostManager;
    matrix: MatrixApi;
    log: Logger;
  }) {
    this.portals = options.portals;
    this.users = options.users;
    this.contacts = options.contacts;
    this.ghosts = options.ghosts;
    this.matrix = options.matrix;
    this.log = options.log;
  }

  /** The portal for a chat the user starts: an existing one (re-invited if left) or a new one. */
  async openOutgoing(user: MatrixUserId, contact: RemoteUserId): Promise<OpenPortal> {
    return this.lock.run(`${user}\n${contact}`, () => this.openOutgoingNow(user, contact));
  }

  private async openOutgoingNow(user: MatrixUserId, contact: RemoteUserId): Promise<OpenPortal> {
    const ghost = await this.ghosts.ensure(contact);
    const existing = await this.portals.get(user, contact);
    if (existing !== undefined && existing.roomId !== null) {
      if (existing.requestState === "declined" || existing.requestState === "incoming-pending") {
        await this.portals.update(existing.id, { requestState: "accepted" });
      }
      await this.reinviteIfGone(existing, existing.roomId, ghost);
      return { portal: { ...existing, roomId: existing.roomId }, ghost, created: false };
    }
    const row = existing ?? (await this.portals.ensure(user, contact, "outgoing-pending"));
    const label = this.ghosts.label(ghost);
    const room = await this.createRoom(row, ghost, { topic: outgoingPendingTopic(label) });
    await this.matrix.sendNotice(room, outgoingPendingTopic(label));
    return {
      portal: { ...row, roomId: room, requestState: "outgoing-pending" },
      ghost,
      created: true,
    };
  }

  /** The room of the user's chat with a contact, if it has one. */
  async roomOf(user: MatrixUserId, contact: RemoteUserId): Promise<RoomId | undefined> {
    return (await this.portals.get(user, contact))?.roomId ?? undefined;
  }

  /**
   * Makes `room` (a direct chat the user created and invited the ghost to) the portal of their
   * chat with `contact`, unless that chat already has another room. The ghost joins and brings
   * the bot in. A chat without a room (new, or cleaned up) starts as the user's chat request.
   * The room stays the user's: the bridge sets no name, topic or space there (it has no power to).
   */
  async linkRoom(user: MatrixUserId, contact: RemoteUserId, room: RoomId): Promise<LinkOutcome> {
    return this.lock.run(`${user}\n${contact}`, async () => {
      const ghost = await this.ghosts.ensure(contact);
      const existing = await this.portals.get(user, contact);
      if (existing?.roomId !== undefined && existing.roomId !== null && existing.roomId !== room) {
        return { kind: "elsewhere", room: existing.roomId };
      }
      // One room, one use: a room that is another chat's portal or a management room would
      // then route the user's messages (or commands) to the wrong place, possibly to this
      // contact.
      const other = await this.portals.byRoom(room);
      if (
        (other !== undefined && other.id !== existing?.id) ||
        (await this.users.byManagementRoom(room)) !== undefined
      ) {
        return { kind: "room-in-use" };
      }
      const row = existing ?? (await this.portals.ensure(user, contact, "outgoing-pending"));
      await this.matrix.join(ghost.mxid, room);
      // The user may have invited the bot too: then the invite fails and the join still works.
      await this.matrix.invite(ghost.mxid, room, this.matrix.botUserId).catch((err: unknown) => {
        this.log.debug({ err, room }, "bot not invited by the ghost");
      });
      await this.matrix.join(this.matrix.botUserId, room);
      await this.portals.update(row.id, { roomId: room, userMembership: "join" });
      if (existing?.roomId !== room && row.requestState === "outgoing-pending") {
        await this.matrix.sendNotice(room, outgoingPendingTopic(this.ghosts.label(ghost)));
      }
      this.log.info({ portal: row.id, room }, "portal linked to a room of the user");
      return { kind: "linked" };
    });
  }

  /**
   * The portal an incoming message goes to, created on first contact (as a message request when
   * the network says so). Call `afterIncoming` once the message is posted.
   */
  async forIncoming(
    user: MatrixUserId,
    contact: RemoteUserId,
    isRequest: boolean,
  ): Promise<OpenPortal> {
    return this.lock.run(`${user}\n${contact}`, () =>
      this.forIncomingNow(user, contact, isRequest),
    );
  }

  private async forIncomingNow(
    user: MatrixUserId,
    contact: RemoteUserId,
    isRequest: boolean,
  ): Promise<OpenPortal> {
    const ghost = await this.ghosts.ensure(contact);
    const existing = await this.portals.get(user, contact);
    if (existing !== undefined && existing.roomId !== null) {
      let requestState = existing.requestState;
      if (requestState === "declined") {
        // A declined contact writing again is asked about again rather than silently dropped.
        requestState = "incoming-pending";
        await this.portals.update(existing.id, { requestState });
        await this.presentRequest(existing.roomId, ghost);
      }
      return {
        portal: { ...existing, requestState, roomId: existing.roomId },
        ghost,
        created: false,
      };
    }
    const requestState = isRequest ? "incoming-pending" : "none";
    const row = existing ?? (await this.portals.ensure(user, contact, requestState));
    const label = this.ghosts.label(ghost);
    const room = await this.createRoom(
      row,
      ghost,
      isRequest
        ? {
            name: `Message request: ${label}`,
            topic: requestRoomTopic(label, this.ghosts.network.commandPrefix),
          }
        : {},
    );
    if (isRequest)
      await this.matrix.sendNotice(
        room,
        requestRoomTopic(label, this.ghosts.network.commandPrefix),
      );
    return { portal: { ...row, roomId: room, requestState }, ghost, created: true };
  }

  /** After a contact's message was posted: the first reply accepts the user's chat request. */
  async afterIncoming(open: OpenPortal): Promise<void> {
    const { portal, ghost } = open;
    if (portal.requestState === "outgoing-pending") await this.markAccepted(portal, ghost);
    await this.reinviteIfGone(portal, portal.roomId, ghost);
  }

  /** The contact accepted the user's chat request (request-accepted or a first reply). */
  async markAccepted(portal: PortalRow, ghost: GhostRow): Promise<void> {
    if (portal.requestState !== "outgoing-pending" || portal.roomId === null) return;
    await this.portals.update(portal.id, { requestState: "accepted" });
    const label = this.ghosts.label(ghost);
    // In a room the user created (a ghost invite) the bot may lack the power to change the topic.
    await this.matrix
      .setRoomTopic(this.matrix.botUserId, portal.roomId, "")
      .catch((err: unknown) => {
        this.log.debug({ err, room: portal.roomId }, "pending-chat topic not cleared");
      });
    await this.matrix.sendNotice(portal.roomId, `${label} accepted your chat request.`);
  }

  /** The user's membership in a portal changed (seen in a Matrix event). */
  async onUserMembership(
    portal: PortalRow,
    membership: "join" | "leave" | "invite",
  ): Promise<void> {
    if (portal.roomId === null || membership === "invite") return;
    if (membership === "join") {
      await this.portals.update(portal.id, { userMembership: "join" });
      if (portal.requestState === "incoming-pending") await this.acceptRequest(portal);
      return;
    }
    const wasInvited = portal.userMembership === "invite";
    await this.portals.update(portal.id, { userMembership: "leave" });
    if (wasInvited && portal.requestState === "incoming-pending") {
      await this.portals.update(portal.id, { requestState: "declined" });
      const ghost = await this.ghosts.ensure(portal.contact);
      const user = await this.users.get(portal.userMxid);
      if (user !== undefined && user.managementRoom !== null) {
        await this.matrix.sendNotice(user.managementRoom, declinedNotice(this.ghosts.label(ghost)));
      }
    }
  }

  /** Joining or replying accepts a message request: the room becomes an ordinary chat. */
  async acceptRequest(portal: PortalRow): Promise<void> {
    if (portal.requestState !== "incoming-pending" || portal.roomId === null) return;
    await this.portals.update(portal.id, { requestState: "accepted" });
    const ghost = await this.ghosts.ensure(portal.contact);
    await this.matrix.setRoomName(ghost.mxid, portal.roomId, "");
    await this.matrix.setRoomTopic(ghost.mxid, portal.roomId, "");
    await this.matrix.sendNotice(
      portal.roomId,
      `You accepted the message request from ${this.ghosts.label(ghost)}.`,
    );
  }

  /**
   * The bridge leaves every portal of the user, takes it off the user's space and forgets it
   * (after a logout, when the user chose to clean up). Failures are logged, not thrown: a room the
   * bridge can no longer act in must not keep the others from being cleaned up.
   */
  async leaveAll(user: MatrixUserId): Promise<number> {
    const portals = await this.portals.listByUser(user);
    const space = (await this.users.get(user))?.spaceRoom ?? null;
    for (const portal of portals) {
      if (portal.roomId === null) continue;
      if (space !== null) {
        await this.matrix.removeFromSpace(space, portal.roomId).catch((err: unknown) => {
          this.log.warn({ err, room: portal.roomId }, "portal could not be taken off the space");
        });
      }
      const ghost = await this.ghosts.ensure(portal.contact);
      await this.matrix.leave(ghost.mxid, portal.roomId).catch((err: unknown) => {
        this.log.warn({ err, room: portal.roomId }, "ghost could not leave the portal");
      });
      await this.matrix.leave(this.matrix.botUserId, portal.roomId).catch((err: unknown) => {
        this.log.warn({ err, room: portal.roomId }, "bot could not leave the portal");
      });
    }
    await this.portals.deleteByUser(user);
    return portals.length;
  }

  private async createRoom(
    row: PortalRow,
    ghost: GhostRow,
    texts: { name?: string; topic?: string },
  ): Promise<RoomId> {
    const room = await this.matrix.createPortalRoom({
      creator: ghost.mxid,
      user: row.userMxid,
      ...texts,
    });
    await this.portals.update(row.id, { roomId: room, userMembership: "invite" });
    await this.matrix.join(this.matrix.botUserId, room);
    const contact = await this.contacts.get(row.userMxid, row.contact);
    if (contact !== undefined && contact.localName !== null)
      await this.ghosts.setLocalName(ghost, room, contact.localName);
    const space = await this.ensureSpace(row.userMxid);
    await this.matrix.addToSpace(space, room, ghost.mxid);
    this.log.info({ portal: row.id, room }, "portal created");
    return room;
  }

  async ensureSpace(user: MatrixUserId): Promise<RoomId> {
    const row = await this.users.ensure(user);
    if (row.spaceRoom !== null) return row.spaceRoom;
    const space = await this.matrix.createSpace({
      user,
      name: this.ghosts.network.displayName,
      topic: spaceTopic(this.ghosts.network),
    });
    await this.users.update(user, { spaceRoom: space });
    return space;
  }

  private async presentRequest(room: RoomId, ghost: GhostRow): Promise<void> {
    const label = this.ghosts.label(ghost);
    await this.matrix.setRoomName(ghost.mxid, room, `Message request: ${label}`);
    await this.matrix.setRoomTopic(
      ghost.mxid,
      room,
      requestRoomTopic(label, this.ghosts.network.commandPrefix),
    );
    await this.matrix.sendNotice(room, requestRoomTopic(label, this.ghosts.network.commandPrefix));
  }

  private async reinviteIfGone(portal: PortalRow, room: RoomId, ghost: GhostRow): Promise<void> {
    if (portal.userMembership !== "leave") return;
    await this.matrix.invite(ghost.mxid, room, portal.userMxid);
    await this.portals.update(portal.id, { userMembership: "invite" });
    this.log.info({ portal: portal.id, room }, "user invited back to the portal they left");
  }
}
