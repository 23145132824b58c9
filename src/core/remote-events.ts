import type { ContactsTable } from "../db/contacts.js";
import type { MessageRow, MessagesTable } from "../db/messages.js";
import type { PortalRow, PortalsTable } from "../db/portals.js";
import type { ReactionsTable } from "../db/reactions.js";
import type { UsersTable } from "../db/users.js";
import type { GhostRecord } from "../db/ghosts.js";
import type { MatrixUserId, RemoteGroupId, RoomId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type { GhostManager } from "./ghosts.js";
import type { GroupManager } from "./groups.js";
import type { LoginManager } from "./logins.js";
import { KeyedLock } from "./keyed-lock.js";
import { MatrixRefusedError, type MatrixApi } from "./matrix-api.js";
import {
  isEditCapable,
  isPermanentMediaFailure,
  isRetractCapable,
  type LoginState,
  type MessageReference,
  type NetworkDescription,
  type RemoteEvent,
  type RemoteUserId,
  type SendFailure,
} from "./network.js";
import { NO_OBSERVER, type CoreObserver } from "./observer.js";
import type { PortalManager } from "./portals.js";
import { HeldRequestError, clock, type UserLimits } from "./rate-limits.js";
import { groupUndecryptable, identityChangedNotice } from "./texts.js";

type EventOf<K extends RemoteEvent["kind"]> = Extract<RemoteEvent, { kind: K }>;

/** The tables of one kind of portal: 1:1 portals' or group portals'. */
export interface MappingTables {
  messages: MessagesTable;
  reactions: ReactionsTable;
}

/**
 * The conversation a remote event is bridged into: a user's 1:1 portal or a group portal. The
 * bridging code below is the same for both; only where the room and its mapping come from differs.
 */
interface Chat extends MappingTables {
  id: number;
  roomId: RoomId;
  /** The user's 1:1 portal (request state, contact); undefined in a group. */
  direct: PortalRow | undefined;
  /** Whether the reporting user's markers (receipts, typing) may be shown here. */
  requestState: string;
}

/** Undecryptable notices already posted for a group message (several logins report it). */
const UNDECRYPTABLE_MEMORY = 1000;

/** What RemoteEventHandler works with (BridgeCore builds it); the optional parts default off. */
interface RemoteEventHandlerOptions {
  tables: {
    users: UsersTable;
    portals: PortalsTable;
    contacts: ContactsTable;
    messages: MessagesTable;
    reactions: ReactionsTable;
  };
  ghosts: GhostManager;
  portals: PortalManager;
  matrix: MatrixApi;
  log: Logger;
  /** The user's login, for the network's edit and retraction windows. */
  logins: Pick<LoginManager, "get" | "userOfSelfId">;
  observer?: CoreObserver;
  limits?: UserLimits;
  groups?: GroupManager;
  groupTables?: MappingTables;
}

/**
 * The core's answer to what a login reports (CoreCallbacks.report): each event is stored and
 * bridged before the promise resolves, so the connector acknowledges the network only then. A
 * message already mapped is not posted again (redelivery after a crash is harmless).
 */
export class RemoteEventHandler {
  private readonly states = new Map<MatrixUserId, LoginState>();
  private readonly lock = new KeyedLock();
  /** Until when each user was told that message requests are held (one notice per window). */
  private readonly heldNotified = new Map<MatrixUserId, number>();

  private readonly tables: RemoteEventHandlerOptions["tables"];
  private readonly ghosts: GhostManager;
  private readonly portals: PortalManager;
  private readonly matrix: MatrixApi;
  private readonly log: Logger;
  private readonly logins: Pick<LoginManager, "get" | "userOfSelfId">;
  private readonly observer: CoreObserver;
  private readonly limits: UserLimits | undefined;
  private readonly groups: GroupManager | undefined;
  private readonly groupTables: MappingTables | undefined;

  constructor(options: RemoteEventHandlerOptions) {
    this.tables = options.tables;
    this.ghosts = options.ghosts;
    this.portals = options.portals;
    this.matrix = options.matrix;
    this.log = options.log;
    this.logins = options.logins;
    this.observer = options.observer ?? NO_OBSERVER;
    this.limits = options.limits;
    this.groups = options.groups;
    this.groupTables = options.groupTables;
  }

  private readonly undecryptableSeen = new Set<string>();

  stateOf(user: MatrixUserId): LoginState | undefined {
    return this.states.get(user);
  }

  /**
   * Forgets what the network reported of the user's login: a new login (or none) replaced it.
   * Without this, a login after one the network ended showed the old `logged-out`, and the
   * network ending the new one was not told (the same code twice is no change).
   */
  forgetState(user: MatrixUserId): void {
    this.states.delete(user);
  }

  /** Events about one conversation are handled one at a time, in the order they were reported. */
  async handle(user: MatrixUserId, event: RemoteEvent): Promise<void> {
    const contact = conversationKey(event);
    // Latency is measured from the report, so time waiting behind the conversation's lock counts.
    const reportedAt = performance.now();
    // A group's events are serialised across logins: every member login reports them, and the
    // second report must see what the first stored (docs/groups.md, decision 2).
    const key = isGroupKeyed(event) ? `\n${contact}` : `${user}\n${contact}`;
    return this.lock.run(key, () => this.dispatch(user, event, reportedAt));
  }

  private async dispatch(
    user: MatrixUserId,
    event: RemoteEvent,
    reportedAt: number,
  ): Promise<void> {
    if ("group" in event && event.group !== undefined && "from" in event) {
      // A member who is a Matrix user of this bridge did this in the room already (decision 3).
      if (this.logins.userOfSelfId(event.from) !== undefined) return;
      if (this.groups === undefined) return;
    }
    switch (event.kind) {
      case "message":
        return this.message(user, event, reportedAt);
      case "edit":
        return this.edit(user, event);
      case "retract":
        return this.retract(user, event);
      case "reactions":
        return this.reactions(user, event);
      case "read":
        return this.read(user, event);
      case "typing":
        return this.typing(user, event);
      case "request-accepted":
        return this.requestAccepted(user, event);
      case "identity-changed":
        return this.identityChanged(user, event);
      case "undecryptable":
        return this.undecryptable(user, event);
      case "send-failed":
        return this.sendFailed(user, event);
      case "send-delayed":
        return this.sendFailed(user, event);
      case "state":
        return this.state(user, event.state);
      case "delivered":
        // Delivery to the contact's device is shown by nothing on Matrix yet; read markers are.
        return;
      case "group-info":
        if (this.groups === undefined) return;
        if (await this.groups.isNewRequest(user, event.info.id, event.addedBy)) {
          await this.admitRequest(user);
        }
        return this.groups.applyInfo(user, event.info, event.addedBy);
      case "group-change":
        return this.groups?.applyChange(
          user,
          event.group,
          event.version,
          event.change,
          event.members,
          event.by,
        );
      case "group-subject":
        return this.groups?.applySubject(user, event.group, event.version, event.subject);
    }
  }

  private async message(
    user: MatrixUserId,
    event: EventOf<"message">,
    reportedAt: number,
  ): Promise<void> {
    let chat: Chat;
    let ghost: GhostRecord;
    let after: () => Promise<void>;
    if (event.group !== undefined) {
      // A message of a group the user is not in yet would bring them in (groupChat): a request
      // like the add itself, so an add held over the limit is not bypassed by its first message.
      if (await this.groups?.isNewRequest(user, event.group, event.from)) {
        await this.admitRequest(user);
      }
      const group = await this.groupChat(user, event.group);
      if (group === undefined) return;
      chat = group;
      ghost = await this.groupGhost(chat, event.from);
      after = async () => undefined;
    } else {
      if (event.isRequest) await this.admitRequest(user, event.from);
      const open = await this.portals.forIncoming(user, event.from, event.isRequest);
      chat = this.directChat(open.portal);
      ghost = open.ghost;
      after = () => this.portals.afterIncoming(open);
    }
    if (await this.post(chat, ghost, event, reportedAt)) await after();
  }

  /**
   * Posts a message into its chat once and records the mapping: 1:1 and groups alike. False when
   * nothing was done (mapped before, or not even a notice could be posted).
   */
  private async post(
    chat: Chat,
    ghost: GhostRecord,
    event: EventOf<"message">,
    reportedAt: number,
  ): Promise<boolean> {
    const portal = chat;
    const label = this.ghosts.label(ghost);
    // Mapped before? A redelivery, a replay after a restart, a retry after a failed report, or
    // another member login's report of a group message may be. A connector's `firstHandOver`
    // says it is none of these (network.ts), so the look-up is skipped; not in a group, where
    // another login may have reported the message first. A crash between the post below and
    // the mapping's insert leaves the event unacknowledged: its next hand-over is no first one
    // and looks the mapping up (finding none, it posts again with the same transaction id,
    // which the homeserver keeps once).
    const mappedBefore =
      event.firstHandOver === true && chat.direct !== undefined
        ? undefined
        : await chat.messages.byRemote(portal.id, event.from, event.id);
    if (mappedBefore !== undefined) return false;
    const replyTo =
      event.replyTo === undefined
        ? undefined
        : await chat.messages.byRemote(portal.id, event.replyTo.author, event.replyTo.id);
    let eventId;
    let refused = false;
    try {
      // The transaction id comes from the network's message: a redelivery after a crash between
      // this send and the mapping below is the same send to the homeserver, not a second event.
      eventId = await this.matrix.sendContent(
        ghost.mxid,
        portal.roomId,
        event.content,
        { ...(replyTo === undefined ? {} : { replyTo: replyTo.eventId }) },
        `message\n${event.from}\n${event.id}`,
      );
    } catch (err) {
      if (event.content.type === "media" && isPermanentMediaFailure(err)) {
        // Retrying cannot help (a URL outside the gatekeeper's media origin, a file that failed
        // its checks): say so in the chat and count the message as handled, instead of having
        // it redelivered forever while the user sees nothing.
        this.observer.messageFailed("to-matrix", (err as { code: string }).code);
        this.log.warn(
          { portal: portal.id, code: (err as { code: string }).code },
          "media from the network refused",
        );
        refused = true;
        eventId = await this.matrix.sendNotice(
          portal.roomId,
          `${label} sent a file (${event.content.media.kind}) that ` +
            "could not be received: it failed the bridge's safety checks. Ask them to send it again.",
        );
      } else if (err instanceof MatrixRefusedError) {
        // The homeserver refused this event for good (after the gateway fitted it to 64 KiB):
        // redelivering it every few seconds would hold back the contact's later messages
        // forever. Say so in the chat and count it as handled.
        this.observer.messageFailed("to-matrix", err.errcode);
        this.log.warn(
          { portal: portal.id, errcode: err.errcode, status: err.statusCode },
          "message from the network refused by the homeserver",
        );
        refused = true;
        try {
          eventId = await this.matrix.sendNotice(
            portal.roomId,
            `${label} sent a message that could not be shown here: ` +
              `the homeserver refused it (${err.errcode}). Ask them to send it again differently.`,
          );
        } catch (noticeErr) {
          if (!(noticeErr instanceof MatrixRefusedError)) throw noticeErr;
          // Not even a notice can be posted in this room: nothing more to do for this message.
          return false;
        }
      } else {
        // Not lost: the rejection leaves the delivery unacknowledged, so it comes again.
        this.observer.messageFailed("to-matrix", "homeserver");
        throw err;
      }
    }
    if (!refused) {
      this.observer.messageBridged(
        "to-matrix",
        event.content.type,
        (performance.now() - reportedAt) / 1000,
      );
    }
    // ON CONFLICT DO NOTHING: a second login's report of the same group message stores nothing.
    await chat.messages.insert({
      portalId: portal.id,
      eventId,
      remoteId: event.id,
      author: event.from,
      order: event.order,
      sentAt: event.sentAt.getTime(),
      direction: "in",
    });
    return true;
  }

  /**
   * A message request (a message from a contact without a chat, or an add to a group by someone
   * who is not a local user) counts against `limits.message_requests_per_hour`. Over it the
   * request is held, not dropped: the rejection (HeldRequestError, `deferred`) makes the connector
   * keep it and report it again later, and the user is told once per window in the management
   * room.
   */
  private async admitRequest(user: MatrixUserId, from?: RemoteUserId): Promise<void> {
    if (this.limits === undefined) return;
    if (from !== undefined) {
      const existing = await this.tables.portals.get(user, from);
      if (existing !== undefined && existing.roomId !== null) return;
    }
    const retryAt = this.limits.requests.take(user);
    if (retryAt === undefined) return;
    if ((this.heldNotified.get(user) ?? 0) < this.limits.requests.now()) {
      this.heldNotified.set(user, retryAt.getTime());
      const row = await this.tables.users.get(user);
      if (row !== undefined && row.managementRoom !== null) {
        await this.matrix.sendNotice(
          row.managementRoom,
          `More message requests from new contacts arrived than the ${this.limits.requests.limit} ` +
            `an hour this bridge shows. They are held, not lost: they appear from ` +
            `${clock(retryAt)} on, in the order they came.`,
        );
      }
    }
    this.log.info({ user, retryAt: retryAt.toISOString() }, "message request held over the limit");
    throw new HeldRequestError(retryAt);
  }

  private async edit(user: MatrixUserId, event: EventOf<"edit">): Promise<void> {
    const portal = await this.chatOf(user, event);
    if (portal === undefined) return;
    const target = await portal.messages.byRemote(portal.id, event.target.author, event.target.id);
    if (target === undefined || event.target.author !== event.from) {
      this.log.debug({ portal: portal.id }, "edit of an unknown or foreign message dropped");
      return;
    }
    const login = this.logins.get(user);
    if (
      !this.withinWindow(
        target,
        event.serverTime,
        login && isEditCapable(login) ? login.editWindowMs() : undefined,
      )
    ) {
      this.log.debug({ portal: portal.id }, "edit outside the edit window dropped");
      return;
    }
    const ghost = await this.ghostIn(portal, event.from);
    // Keyed by the edit's identity: a group edit reported by a second login posts nothing new.
    await this.matrix.sendContent(
      ghost.mxid,
      portal.roomId,
      event.content,
      { edits: target.eventId },
      `edit\n${event.from}\n${event.target.id}\n${event.order}`,
    );
  }

  private async retract(user: MatrixUserId, event: EventOf<"retract">): Promise<void> {
    const portal = await this.chatOf(user, event);
    if (portal === undefined || event.target.author !== event.from) return;
    const target = await portal.messages.byRemote(portal.id, event.target.author, event.target.id);
    if (target === undefined || target.retracted) return;
    const login = this.logins.get(user);
    if (
      !this.withinWindow(
        target,
        event.serverTime,
        login && isRetractCapable(login) ? login.retractWindowMs() : undefined,
      )
    ) {
      this.log.debug({ portal: portal.id }, "retraction outside the window dropped");
      return;
    }
    const ghost = await this.ghostIn(portal, event.from);
    await this.matrix.redact(ghost.mxid, portal.roomId, target.eventId);
    await portal.messages.markRetracted(target.eventId);
  }

  /** The contact's complete set on a message becomes ghost reactions added and redacted. */
  private async reactions(user: MatrixUserId, event: EventOf<"reactions">): Promise<void> {
    const portal = await this.chatOf(user, event);
    if (portal === undefined) return;
    const target = await this.findTarget(portal, event.target);
    if (target === undefined) return;
    const ghost = await this.ghostIn(portal, event.from);
    const current = await portal.reactions.bySender(portal.id, event.target, ghost.mxid);
    const wanted = new Set(event.emojis);
    for (const row of current) {
      if (wanted.has(row.emoji)) continue;
      await this.matrix.redact(ghost.mxid, portal.roomId, row.eventId);
      await portal.reactions.delete(row.eventId);
    }
    const present = new Set(current.map((r) => r.emoji));
    for (const emoji of wanted) {
      if (present.has(emoji)) continue;
      const eventId = await this.matrix.sendReaction(
        ghost.mxid,
        portal.roomId,
        target.eventId,
        emoji,
      );
      await portal.reactions.insert({
        portalId: portal.id,
        eventId,
        targetId: event.target.id,
        targetAuthor: event.target.author,
        sender: ghost.mxid,
        emoji,
      });
    }
  }

  private async read(user: MatrixUserId, event: EventOf<"read">): Promise<void> {
    const portal = await this.chatOf(user, event);
    if (portal === undefined) return;
    if (!(await this.markersShown(user, portal, "readReceipts"))) return;
    const target = await this.findTarget(portal, event.upTo);
    if (target === undefined) return;
    const ghost = await this.ghostIn(portal, event.from);
    await this.matrix.sendReadReceipt(ghost.mxid, portal.roomId, target.eventId);
  }

  private async typing(user: MatrixUserId, event: EventOf<"typing">): Promise<void> {
    const portal = await this.chatOf(user, event);
    if (portal === undefined) return;
    if (!(await this.markersShown(user, portal, "typingNotifications"))) return;
    const ghost = await this.ghostIn(portal, event.from);
    await this.matrix.sendTyping(ghost.mxid, portal.roomId, event.typing);
  }

  private async requestAccepted(
    user: MatrixUserId,
    event: EventOf<"request-accepted">,
  ): Promise<void> {
    const portal = await this.tables.portals.get(user, event.contact);
    if (portal === undefined) return;
    await this.portals.markAccepted(portal, await this.ghosts.ensure(event.contact));
  }

  private async identityChanged(
    user: MatrixUserId,
    event: EventOf<"identity-changed">,
  ): Promise<void> {
    const portal = await this.tables.portals.get(user, event.contact);
    if (portal === undefined || portal.roomId === null) return;
    const label = this.ghosts.label(await this.ghosts.ensure(event.contact));
    const notice = identityChangedNotice(label, this.ghosts.network, event);
    // Handled again after a failure (the network retries until handled, issue #16): the same
    // change posts one notice, however far the failed attempt got.
    try {
      await this.matrix.sendNotice(
        portal.roomId,
        notice,
        undefined,
        event.changeId === undefined ? undefined : `identity-changed\n${event.changeId}`,
      );
    } catch (err) {
      if (!(err instanceof MatrixRefusedError)) throw err;
      // Refused for good (the bot cannot post in this room): retrying would hold back the
      // contact's later messages, which wait behind this event, for ever.
      this.log.warn(
        { portal: portal.id, errcode: err.errcode, status: err.statusCode },
        "identity change notice refused by the homeserver",
      );
    }
  }

  private async undecryptable(user: MatrixUserId, event: EventOf<"undecryptable">): Promise<void> {
    if (event.group !== undefined) {
      const key = `${event.group}\n${event.from}\n${event.id}`;
      if (this.undecryptableSeen.has(key)) return;
      const chat = await this.groupChat(user, event.group);
      if (chat === undefined) return;
      this.observer.undecryptable();
      const ghost = await this.groupGhost(chat, event.from);
      await this.matrix.sendNotice(
        chat.roomId,
        groupUndecryptable(this.ghosts.label(ghost), clock(event.sentAt)),
      );
      this.undecryptableSeen.add(key);
      if (this.undecryptableSeen.size > UNDECRYPTABLE_MEMORY) {
        this.undecryptableSeen.delete(this.undecryptableSeen.values().next().value as string);
      }
      return;
    }
    this.observer.undecryptable();
    const open = await this.portals.forIncoming(user, event.from, false);
    const label = this.ghosts.label(open.ghost);
    await this.matrix.sendNotice(
      open.portal.roomId,
      groupUndecryptable(label, clock(event.sentAt)),
    );
    await this.portals.afterIncoming(open);
  }

  /** A failure, or a delay the network resolves by itself: a notice replying to the message. */
  private async sendFailed(
    user: MatrixUserId,
    event: EventOf<"send-failed"> | EventOf<"send-delayed">,
  ): Promise<void> {
    if (event.kind === "send-failed") this.observer.messageFailed("to-network", event.reason.code);
    if (event.group !== undefined) {
      const group = await this.groups?.table.byRemote(event.group);
      const sentInGroup =
        group === undefined
          ? undefined
          : await this.groupTables?.messages.outgoingByRemote([group.id], event.target.id);
      if (group === undefined || group.roomId === null || sentInGroup === undefined) return;
      const text =
        event.kind === "send-delayed"
          ? delayText(event.reason)
          : failureText(event.reason, this.ghosts.network);
      await this.matrix.sendNotice(group.roomId, text, sentInGroup.eventId);
      return;
    }
    const portalIds = (await this.tables.portals.listByUser(user)).map((p) => p.id);
    const sent = await this.tables.messages.outgoingByRemote(portalIds, event.target.id);
    if (sent === undefined) {
      this.log.warn({ user }, "a send failure for an unknown message");
      return;
    }
    const portal = await this.tables.portals.byId(sent.portalId);
    if (portal === undefined || portal.roomId === null) return;
    const text =
      event.kind === "send-delayed"
        ? delayText(event.reason)
        : failureText(event.reason, this.ghosts.network);
    await this.matrix.sendNotice(portal.roomId, text, sent.eventId);
  }

  private async state(user: MatrixUserId, state: LoginState): Promise<void> {
    const previous = this.states.get(user);
    this.states.set(user, state);
    if (previous?.code === state.code) return;
    // A network connection shared by every login reports each of its ups and downs to all of
    // them: at info that was one line per login (10,000 lines per reconnect with 10,000 users),
    // which buried the connector's own one line about it. Only what ends a user's login, and
    // needs the user or the admin, is at info.
    const ended = state.code === "logged-out" || state.code === "bad-credentials";
    this.log[ended ? "info" : "debug"]({ user, state: state.code }, "login state changed");
    if (state.code !== "logged-out" && state.code !== "bad-credentials") return;
    const row = await this.tables.users.get(user);
    if (row === undefined || row.managementRoom === null) return;
    await this.matrix.sendNotice(
      row.managementRoom,
      `You were logged out of ${this.ghosts.network.displayName}: ${state.message} Send \`login\` to log in again.`,
    );
  }

  private directChat(portal: PortalRow & { roomId: RoomId }): Chat {
    return {
      id: portal.id,
      roomId: portal.roomId,
      messages: this.tables.messages,
      reactions: this.tables.reactions,
      direct: portal,
      requestState: portal.requestState,
    };
  }

  /** A group's portal (created from the network's info when missing) as a chat of `user`. */
  private async groupChat(user: MatrixUserId, group: RemoteGroupId): Promise<Chat | undefined> {
    if (this.groups === undefined || this.groupTables === undefined) return undefined;
    const portal = await this.groups.portalFor(user, group);
    if (portal === undefined) return undefined;
    const row = await this.groups.table.user(portal.id, user);
    return {
      id: portal.id,
      roomId: portal.roomId,
      ...this.groupTables,
      direct: undefined,
      requestState: row?.requestState ?? "none",
    };
  }

  /** The chat of a conversation event: the group's portal, or the user's portal with `from`. */
  private async chatOf(
    user: MatrixUserId,
    event: { from: RemoteUserId; group?: RemoteGroupId },
  ): Promise<Chat | undefined> {
    if (event.group !== undefined) return this.groupChat(user, event.group);
    const portal = await this.tables.portals.get(user, event.from);
    if (portal === undefined || portal.roomId === null) return undefined;
    return this.directChat({ ...portal, roomId: portal.roomId });
  }

  private groupGhost(chat: Chat, from: RemoteUserId): Promise<GhostRecord> {
    if (this.groups === undefined) throw new Error("group event without group support");
    return this.groups.ghostOf(chat.id, from);
  }

  /** The ghost that speaks for `from` in a chat. */
  private ghostIn(chat: Chat, from: RemoteUserId): Promise<GhostRecord> {
    return chat.direct === undefined ? this.groupGhost(chat, from) : this.ghosts.ensure(from);
  }

  /**
   * §13.6/§13.7: an edit or retraction counts only within the network's window after the
   * original. Measured from the original's time as stored (the sender's clock, which the
   * gatekeeper bounds) to the network's time of the edit; without either, it is accepted.
   */
  private withinWindow(
    original: MessageRow,
    at: Date | undefined,
    windowMs: number | undefined,
  ): boolean {
    if (at === undefined || windowMs === undefined) return true;
    return at.getTime() - original.sentAt <= windowMs;
  }

  /**
   * §15.7, §10.3 (P17): a user who turned their read receipts (or typing) off does not see the
   * contact's either, and nobody sees them while a request is pending or after it was declined.
   */
  private async markersShown(
    user: MatrixUserId,
    portal: Chat,
    setting: "readReceipts" | "typingNotifications",
  ): Promise<boolean> {
    if (portal.requestState === "incoming-pending" || portal.requestState === "declined") {
      return false;
    }
    return (await this.tables.users.get(user))?.[setting] === true;
  }

  private async findTarget(chat: Chat, ref: MessageReference): Promise<MessageRow | undefined> {
    const portalId = chat.id;
    // In a group every message is stored with its author's network id, the users' own too.
    if (chat.direct === undefined) return chat.messages.byRemote(portalId, ref.author, ref.id);
    const portal = await this.tables.portals.byId(portalId);
    if (portal === undefined) return undefined;
    // The user's own messages are stored with the Matrix id as author: match them by id alone.
    if (ref.author === portal.contact) {
      return this.tables.messages.byRemote(portalId, portal.contact, ref.id);
    }
    return this.tables.messages.outgoingByRemote([portalId], ref.id);
  }
}

/** Events of one group are handled in order across every login that reports them. */
function isGroupKeyed(event: RemoteEvent): boolean {
  return (
    ("group" in event && event.group !== undefined) ||
    event.kind === "group-info" ||
    event.kind === "group-change" ||
    event.kind === "group-subject"
  );
}

/** The notice for a message the network holds back and sends again by itself. */
function delayText(reason: SendFailure): string {
  const at = reason.retryAt === undefined ? "shortly" : `after ${clock(reason.retryAt)}`;
  return reason.code === "rate-limited"
    ? `Not delivered yet: you are sending too fast. The bridge sends it again by itself ${at}; no need to resend.`
    : `Not delivered yet: the bridge sends it again by itself ${at}.`;
}

/** The notice for a message the network refused or gave up on, by reason code. */
function failureText(reason: SendFailure, network: NetworkDescription): string {
  const retry =
    reason.retryAt === undefined ? "" : ` You can try again after ${clock(reason.retryAt)}.`;
  switch (reason.code) {
    case "blocked":
      return "Not delivered: the recipient does not accept your messages.";
    case "not-reachable":
      return "Not delivered: this contact can no longer be reached through the bridge.";
    case "rate-limited":
      return `Not delivered yet: you are sending too fast.${retry}`;
    case "too-large":
      return `Not delivered: the file is too large for ${network.displayName}.`;
    case "request-pending":
      return "Not delivered: your chat request is still waiting for the contact to accept it.";
    case "timed-out":
      return `Not delivered: ${network.displayName} did not confirm the message in time.`;
    case "identity-unconfirmed":
      return `Not sent: the contact's security code changed. Check it with \`${network.commandPrefix} verify\` first.`;
    case "unsupported":
      return `Not delivered: ${network.displayName} does not support this kind of message.`;
    case "internal":
      return `Not delivered: ${reason.message}`;
  }
}

/** The conversation an event belongs to: events of one conversation are handled in order. */
function conversationKey(event: RemoteEvent): string {
  if ("group" in event && event.group !== undefined) return event.group;
  switch (event.kind) {
    case "request-accepted":
    case "identity-changed":
      return event.contact;
    case "group-info":
    case "group-change":
    case "group-subject":
      return event.group;
    case "send-failed":
    case "send-delayed":
    case "state":
      return "";
    default:
      return event.from;
  }
}
