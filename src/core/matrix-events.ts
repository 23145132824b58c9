import type { MessageRow, MessagesTable } from "../db/messages.js";
import type { ReactionsTable } from "../db/reactions.js";
import type { PortalRow, PortalsTable } from "../db/portals.js";
import type { UsersTable } from "../db/users.js";
import type { GroupPortalRow } from "../db/groups.js";
import { BridgeError, describeError, isTransientError } from "../util/errors.js";
import type { EventId, MatrixUserId, RoomId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type { LoginManager } from "./logins.js";
import type { MatrixApi } from "./matrix-api.js";
import { selfIdOf } from "./contact-directory.js";
import {
  isGroupCapable,
  isEditCapable,
  isReactionCapable,
  isReceiptCapable,
  isRetractCapable,
  isTypingCapable,
  type MessageContent,
  type MessageReference,
  type ReactionCapable,
  type NetworkLogin,
  type RemoteChatId,
  type RemoteMessageId,
  type RemoteUserId,
} from "./network.js";
import { NO_OBSERVER, type CoreObserver } from "./observer.js";
import type { PortalManager } from "./portals.js";
import type { GroupManager } from "./groups.js";
import type { MappingTables } from "./remote-events.js";
import { clock, type UserLimits } from "./rate-limits.js";
import { notLoggedIn } from "./texts.js";

/**
 * A portal a Matrix event happened in: a user's 1:1 portal, or a group portal shared by the
 * bridge's users in the group. The handling below is the same for both; the group's differs only
 * in where it sends (`to` is the group), which login acts (the sender's own, if a member) and
 * whose messages a user may edit or delete (their own, by network id).
 */
export type AnyPortal = PortalRow | GroupPortalRow;
export const isGroupPortal = (p: AnyPortal): p is GroupPortalRow => "remoteId" in p;

/** What the caller knows of earlier attempts at a Matrix event (MatrixEventsHandler.message). */
export interface MatrixEventAttempt {
  /**
   * No attempt at this event can have been made before, in this process or an earlier one: the
   * Matrix ingress knows it of an event it has just recorded as new (matrix/ingress, `begin`).
   * The core then skips its look-up of the event's mapping (#15: a statement per message).
   * Absent or false, it looks the mapping up, and an event sent before is not sent again; set
   * wrongly, an event is sent twice.
   */
  readonly firstAttempt?: boolean;
}

/** Incoming messages a read receipt may mark: the latest ones (see `readTarget`). */
const READ_CANDIDATES = 8;

/** What MatrixEventsHandler works with (BridgeCore builds it); the optional parts default off. */
interface MatrixEventsHandlerOptions {
  tables: {
    users: UsersTable;
    portals: PortalsTable;
    messages: MessagesTable;
    reactions: ReactionsTable;
  };
  portals: PortalManager;
  logins: LoginManager;
  matrix: MatrixApi;
  log: Logger;
  observer?: CoreObserver;
  limits?: UserLimits;
  groups?: GroupManager;
  groupTables?: MappingTables;
}

/**
 * What a Matrix user does in a portal, passed to their login. A send the network refuses at once
 * is answered with a notice replying to the user's event; nothing fails silently.
 */
export class MatrixEventsHandler {
  private readonly tables: MatrixEventsHandlerOptions["tables"];
  private readonly portals: PortalManager;
  private readonly logins: LoginManager;
  private readonly matrix: MatrixApi;
  private readonly log: Logger;
  private readonly observer: CoreObserver;
  private readonly limits: UserLimits | undefined;
  private readonly groups: GroupManager | undefined;
  private readonly groupTables: MappingTables | undefined;

  constructor(options: MatrixEventsHandlerOptions) {
    this.tables = options.tables;
    this.portals = options.portals;
    this.logins = options.logins;
    this.matrix = options.matrix;
    this.log = options.log;
    this.observer = options.observer ?? NO_OBSERVER;
    this.limits = options.limits;
    this.groups = options.groups;
    this.groupTables = options.groupTables;
  }

  private tablesOf(portal: AnyPortal): MappingTables {
    if (!isGroupPortal(portal)) return this.tables;
    if (this.groupTables === undefined) throw new Error("group portal without group tables");
    return this.groupTables;
  }

  private toOf(portal: AnyPortal): RemoteChatId {
    return isGroupPortal(portal) ? portal.remoteId : portal.contact;
  }

  /** The network id the user's messages are stored under in this portal. */
  private selfIn(login: NetworkLogin, portal: AnyPortal): RemoteUserId {
    return isGroupPortal(portal) && isGroupCapable(login) ? login.selfId() : selfIdOf(login);
  }

  /**
   * The login a user acts through in a portal: in a group, only a member's (otherwise a notice
   * says why, as `notice` does for a user without login).
   */
  private async actingLogin(
    sender: MatrixUserId,
    portal: AnyPortal,
    eventId: EventId,
    notice: boolean,
  ): Promise<NetworkLogin | undefined> {
    if (isGroupPortal(portal)) {
      if (this.groups === undefined || portal.roomId === null) return undefined;
      return this.groups.actingLogin(sender, { ...portal, roomId: portal.roomId }, eventId);
    }
    return notice
      ? this.loginOrNotice(sender, portal.roomId as RoomId, eventId)
      : this.logins.get(sender);
  }

  async message(
    sender: MatrixUserId,
    portal: AnyPortal,
    eventId: EventId,
    content: MessageContent,
    replyToEvent?: EventId,
    attempt: MatrixEventAttempt = {},
  ): Promise<void> {
    const startedAt = performance.now();
    const room = portal.roomId as RoomId;
    const tables = this.tablesOf(portal);
    const login = await this.actingLogin(sender, portal, eventId, true);
    if (login === undefined) return;
    // Sent before: an attempt that crashed, or failed, after its send (a crash between the send
    // and the insert below leaves the event pending, and its next attempt is no first one).
    if (attempt.firstAttempt !== true && (await tables.messages.byEvent(eventId))) return;
    const limitedUntil = this.limits?.messages.take(sender);
    if (limitedUntil !== undefined) {
      this.observer.messageFailed("to-network", "user-rate-limit");
      await this.matrix.sendNotice(
        room,
        `Not sent: you are sending too fast (at most ${this.limits?.messages.limit} messages a ` +
          `minute). Send it again after ${clock(limitedUntil)}.`,
        eventId,
      );
      return;
    }
    // Replying to a message request accepts it (PROTOCOL.md §10.3: no protocol action needed).
    if (!isGroupPortal(portal) && portal.requestState === "incoming-pending") {
      await this.portals.acceptRequest(portal);
    }
    const target =
      replyToEvent === undefined ? undefined : await tables.messages.byEvent(replyToEvent);
    if (target !== undefined && target.portalId !== portal.id) {
      await this.otherPortal(room, eventId, "reply");
      return;
    }
    const replyTo = target === undefined ? undefined : this.referenceTo(target, login, portal);
    let remoteId: RemoteMessageId;
    try {
      remoteId = await login.sendMessage(this.toOf(portal), content, replyTo, eventId);
    } catch (err) {
      this.observer.messageFailed("to-network", err instanceof BridgeError ? err.code : "internal");
      await this.failed(room, eventId, err);
      return;
    }
    this.observer.messageBridged(
      "to-network",
      content.type,
      (performance.now() - startedAt) / 1000,
    );
    await tables.messages.insert({
      portalId: portal.id,
      eventId,
      remoteId,
      // The network's id of the user, which the contact's replies and reactions name as author.
      author: this.selfIn(login, portal),
      order: null,
      sentAt: Date.now(),
      direction: "out",
    });
  }

  async edit(
    sender: MatrixUserId,
    portal: AnyPortal,
    eventId: EventId,
    target: EventId,
    content: MessageContent,
  ): Promise<void> {
    const room = portal.roomId as RoomId;
    const login = await this.actingLogin(sender, portal, eventId, true);
    if (login === undefined) return;
    const original = await this.tablesOf(portal).messages.byEvent(target);
    if (original !== undefined && original.portalId !== portal.id) {
      await this.otherPortal(room, eventId, "edit");
      return;
    }
    if (original?.direction !== "out") return;
    // In a group, another local user's message is theirs to edit, not this user's.
    if (isGroupPortal(portal) && original.author !== this.selfIn(login, portal)) return;
    if (!isEditCapable(login)) {
      await this.matrix.sendNotice(
        room,
        `Edits cannot be bridged to ${this.logins.network.displayName}.`,
        eventId,
      );
      return;
    }
    // The contact's app would ignore a late edit (§13.6): say so instead of sending it.
    if (Date.now() - original.sentAt > login.editWindowMs()) {
      await this.matrix.sendNotice(
        room,
        `Not sent: ${this.logins.network.displayName} accepts edits only within ${duration(login.editWindowMs())} of the original message.`,
        eventId,
      );
      return;
    }
    try {
      await login.sendEdit(this.toOf(portal), original.remoteId, content);
    } catch (err) {
      await this.failed(room, eventId, err);
    }
  }

  /** A reaction by the user: the network gets the user's complete set for that message. */
  async reaction(
    sender: MatrixUserId,
    portal: AnyPortal,
    eventId: EventId,
    targetEvent: EventId,
    key: string,
  ): Promise<void> {
    const tables = this.tablesOf(portal);
    const target = await tables.messages.byEvent(targetEvent);
    if (target !== undefined && target.portalId !== portal.id) {
      await this.otherPortal(portal.roomId as RoomId, eventId, "reaction");
      return;
    }
    if (target === undefined || target.retracted) return;
    const login = await this.actingLogin(sender, portal, eventId, false);
    if (login === undefined) return;
    if (!isReactionCapable(login)) return;
    const ref = this.referenceTo(target, login, portal);
    if (await tables.reactions.byEvent(eventId)) return;
    // The network validates the key (one emoji for interop) when it gets the new set: it is
    // stored only after that succeeded, so a refused key never joins the later sets.
    const rows = await tables.reactions.bySender(portal.id, ref, sender);
    const emojis = [...new Set([...rows.map((r) => r.emoji), key])];
    try {
      await login.sendReactions(this.toOf(portal), ref, emojis);
    } catch (err) {
      await this.failed(portal.roomId as RoomId, eventId, err);
      return;
    }
    await tables.reactions.insert({
      portalId: portal.id,
      eventId,
      targetId: ref.id,
      targetAuthor: ref.author,
      sender,
      emoji: key,
    });
  }

  async redaction(
    sender: MatrixUserId,
    portal: AnyPortal,
    redacted: EventId,
    eventId?: EventId,
  ): Promise<void> {
    const tables = this.tablesOf(portal);
    const reaction = await tables.reactions.byEvent(redacted);
    const message = reaction === undefined ? await tables.messages.byEvent(redacted) : undefined;
    const owner = reaction?.portalId ?? message?.portalId;
    if (owner !== undefined && owner !== portal.id) {
      await this.otherPortal(portal.roomId as RoomId, eventId ?? redacted, "deletion");
      return;
    }
    if (reaction === undefined && message === undefined) return;
    // In a group only the user's own reactions and messages are theirs to take back.
    if (reaction !== undefined && reaction.sender !== sender) return;
    const login = await this.actingLogin(sender, portal, eventId ?? redacted, false);
    if (reaction !== undefined) {
      await tables.reactions.delete(redacted);
      if (login === undefined || !isReactionCapable(login)) return;
      const ref = { author: reaction.targetAuthor as RemoteUserId, id: reaction.targetId };
      await this.sendReactionSet(login, portal, ref, sender, redacted);
      return;
    }
    const original = message;
    if (login === undefined || original?.direction !== "out" || original.retracted) return;
    if (isGroupPortal(portal) && original.author !== this.selfIn(login, portal)) return;
    if (!isRetractCapable(login)) return;
    if (Date.now() - original.sentAt > login.retractWindowMs()) {
      await this.matrix.sendNotice(
        portal.roomId as RoomId,
        `Not deleted for the contact: ${this.logins.network.displayName} accepts deletions only within ${duration(login.retractWindowMs())} of the original message.`,
        redacted,
      );
      return;
    }
    try {
      await login.sendRetract(this.toOf(portal), original.remoteId);
      await tables.messages.markRetracted(redacted);
    } catch (err) {
      await this.failed(portal.roomId as RoomId, redacted, err);
    }
  }

  /** A read receipt from the user; not sent while a request is pending (§10.3) or when off. */
  async read(sender: MatrixUserId, portal: AnyPortal, eventId: EventId): Promise<void> {
    const login = this.logins.get(sender);
    if (
      login === undefined ||
      !isReceiptCapable(login) ||
      !(await this.markersAllowed(portal, sender))
    ) {
      return;
    }
    const user = await this.tables.users.get(sender);
    if (user?.readReceipts !== true) return;
    const target = await this.readTarget(portal, eventId);
    if (target === undefined) return;
    await login.sendRead(this.toOf(portal), { author: target.author, id: target.remoteId });
  }

  /**
   * What a receipt on `eventId` has read: the latest bridged incoming message at or before it in
   * the room. Clients put receipts on the latest event, which is often not a bridged message but
   * an edit, a reaction or the user's own message.
   *
   * "Before" is the room's order, so both sides are compared by the homeserver's time: an
   * incoming message's `sentAt` is the sender's clock, and one delivered late (the bridge was
   * offline, a P15 hold) was posted after events that its `sentAt` precedes; marking it read
   * would tell the contact that the user read what they have not seen. Among the latest
   * READ_CANDIDATES incoming messages (a receipt is on one of the last events), the one posted
   * last at or before the event wins; nothing is sent if none is known to be (a missed receipt
   * is harmless, a false one is not). Times the homeserver does not give fall back to ours.
   */
  private async readTarget(portal: AnyPortal, eventId: EventId): Promise<MessageRow | undefined> {
    const tables = this.tablesOf(portal);
    const known = await tables.messages.byEvent(eventId);
    if (known !== undefined && known.portalId !== portal.id) return undefined;
    // A deleted message cannot be marked (the network no longer has it), but the receipt still
    // says the user read up to there: the search below finds the latest one before it.
    if (known?.direction === "in" && !known.retracted) return known;
    const room = portal.roomId as RoomId;
    const at = (await this.matrix.eventTime(room, eventId)) ?? known?.sentAt;
    if (at === undefined) return undefined;
    let best: { row: MessageRow; posted: number } | undefined;
    for (const row of await tables.messages.latestIncoming(portal.id, READ_CANDIDATES)) {
      // Posted after it was sent, so one sent after `at` was posted after it too: no lookup (a
      // sender's clock running ahead costs at most a missed receipt).
      if (row.sentAt > at) continue;
      const posted = (await this.matrix.eventTime(room, row.eventId)) ?? row.sentAt;
      if (posted <= at && (best === undefined || posted > best.posted)) best = { row, posted };
    }
    return best?.row;
  }

  /** Typing by the user; resolves whether it was passed on (not when pending, off or unsupported). */
  async typing(sender: MatrixUserId, portal: AnyPortal, typing: boolean): Promise<boolean> {
    const login = this.logins.get(sender);
    if (
      login === undefined ||
      !isTypingCapable(login) ||
      !(await this.markersAllowed(portal, sender))
    ) {
      return false;
    }
    const user = await this.tables.users.get(sender);
    if (user?.typingNotifications !== true) return false;
    await login.sendTyping(this.toOf(portal), typing);
    return true;
  }

  private async sendReactionSet(
    login: NetworkLogin & ReactionCapable,
    portal: AnyPortal,
    ref: MessageReference,
    sender: MatrixUserId,
    cause: EventId,
  ): Promise<void> {
    const rows = await this.tablesOf(portal).reactions.bySender(portal.id, ref, sender);
    const emojis = [...new Set(rows.map((r) => r.emoji))];
    try {
      await login.sendReactions(this.toOf(portal), ref, emojis);
    } catch (err) {
      await this.failed(portal.roomId as RoomId, cause, err);
    }
  }

  /**
   * The network's reference to a bridged message: the contact's, or the user's own. In a group
   * every row carries its author's network id (another local user's message included).
   */
  private referenceTo(
    message: MessageRow,
    login: NetworkLogin,
    portal: AnyPortal,
  ): MessageReference {
    return {
      author:
        message.direction === "in" || isGroupPortal(portal) ? message.author : selfIdOf(login),
      id: message.remoteId,
    };
  }

  private async markersAllowed(portal: AnyPortal, sender: MatrixUserId): Promise<boolean> {
    if (isGroupPortal(portal)) {
      // A group the user was added to is a request until they join (§17.1): no markers.
      const row = await this.groups?.table.user(portal.id, sender);
      return row !== undefined && row.requestState !== "incoming-pending";
    }
    const fresh = await this.tables.portals.byId(portal.id);
    return (
      fresh !== undefined &&
      fresh.requestState !== "incoming-pending" &&
      fresh.requestState !== "declined"
    );
  }

  /**
   * A reply, edit, reaction or deletion naming an event of another portal: refused, since
   * passing it on would send one chat's message id (and contact) into another chat.
   */
  private async otherPortal(room: RoomId, eventId: EventId, what: string): Promise<void> {
    this.log.info({ room, what }, "relation to another chat's event refused");
    await this.matrix.sendNotice(
      room,
      `Not sent: this ${what} refers to a message of another chat.`,
      eventId,
    );
  }

  private async loginOrNotice(
    sender: MatrixUserId,
    room: RoomId,
    eventId: EventId,
  ): Promise<NetworkLogin | undefined> {
    const login = this.logins.get(sender);
    if (login === undefined) {
      await this.matrix.sendNotice(room, `Not sent. ${notLoggedIn}`, eventId);
    }
    return login;
  }

  private async failed(room: RoomId, eventId: EventId, err: unknown): Promise<void> {
    // A lost database connection is no reason to drop the message: failing the work has the
    // homeserver retry the transaction once the database is back.
    if (isTransientError(err)) throw err;
    const text =
      err instanceof BridgeError
        ? `Not sent: ${err.message}`
        : "Not sent because of an internal error.";
    // The notice names the reason the user can act on; the log keeps the whole chain for the
    // admin (a refusal's cause, such as which limit a stanza exceeded, is not in the notice).
    if (err instanceof BridgeError) {
      this.log.warn({ room, eventId, err: describeError(err) }, "the network refused a message");
    } else {
      this.log.error({ room, eventId, err: describeError(err) }, "sending to the network failed");
    }
    await this.matrix.sendNotice(room, text, eventId);
  }
}

/** A window such as 900000 ms as "15 minutes", for notices. */
function duration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, "day"],
    [3_600_000, "hour"],
    [60_000, "minute"],
    [1000, "second"],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size;
      return `${n} ${name}${n === 1 ? "" : "s"}`;
    }
  }
  const seconds = Math.max(1, Math.round(ms / 1000));
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}
