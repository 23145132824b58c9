import type { Config } from "../config/schema.js";
import type { ContactsTable } from "../db/contacts.js";
import type { MessageRow, MessagesTable } from "../db/messages.js";
import type { PortalsTable } from "../db/portals.js";
import type { ReactionsTable } from "../db/reactions.js";
import type { UsersTable } from "../db/users.js";
import type { MatrixUserId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type { GhostManager } from "./ghosts.js";
import { KeyedLock } from "./keyed-lock.js";
import type { MatrixApi } from "./matrix-api.js";
import type { LoginState, MessageReference, RemoteEvent, SendFailure } from "./network.js";
import { formatInternational } from "./phone-format.js";
import type { PortalManager } from "./portals.js";

type EventOf<K extends RemoteEvent["kind"]> = Extract<RemoteEvent, { kind: K }>;

/**
 * The core's answer to what a login reports (CoreCallbacks.report): each event is stored and
 * bridged before the promise resolves, so the connector acknowledges the network only then. A
 * message already mapped is not posted again (redelivery after a crash is harmless).
 */
export class RemoteEventHandler {
  private readonly states = new Map<MatrixUserId, LoginState>();
  private readonly lock = new KeyedLock();

  constructor(
    private readonly config: Config,
    private readonly tables: {
      users: UsersTable;
      portals: PortalsTable;
      contacts: ContactsTable;
      messages: MessagesTable;
      reactions: ReactionsTable;
    },
    private readonly ghosts: GhostManager,
    private readonly portals: PortalManager,
    private readonly matrix: MatrixApi,
    private readonly log: Logger,
  ) {}

  stateOf(user: MatrixUserId): LoginState | undefined {
    return this.states.get(user);
  }

  /** Events about one conversation are handled one at a time, in the order they were reported. */
  async handle(user: MatrixUserId, event: RemoteEvent): Promise<void> {
    const contact =
      event.kind === "request-accepted" || event.kind === "identity-changed"
        ? event.contact
        : event.kind === "send-failed" || event.kind === "state"
          ? ""
          : event.from;
    return this.lock.run(`${user}\n${contact}`, () => this.dispatch(user, event));
  }

  private async dispatch(user: MatrixUserId, event: RemoteEvent): Promise<void> {
    switch (event.kind) {
      case "message":
        return this.message(user, event);
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
      case "state":
        return this.state(user, event.state);
      case "delivered":
        // Delivery to the contact's device is shown by nothing on Matrix yet; read markers are.
        return;
    }
  }

  private async message(user: MatrixUserId, event: EventOf<"message">): Promise<void> {
    const open = await this.portals.forIncoming(user, event.from, event.isRequest);
    const { portal, ghost } = open;
    if (await this.tables.messages.byRemote(portal.id, event.from, event.id)) return;
    const replyTo =
      event.replyTo === undefined
        ? undefined
        : await this.tables.messages.byRemote(portal.id, event.replyTo.author, event.replyTo.id);
    const eventId = await this.matrix.sendContent(
      ghost.mxid,
      portal.roomId,
      event.content,
      { ...(replyTo === undefined ? {} : { replyTo: replyTo.eventId }) },
      `message\n${event.from}\n${event.id}`,
    );
    await this.tables.messages.insert({
      portalId: portal.id,
      eventId,
      remoteId: event.id,
      author: event.from,
      order: event.order,
      sentAt: event.sentAt.getTime(),
      direction: "in",
    });
    await this.portals.afterIncoming(open);
  }

  private async edit(user: MatrixUserId, event: EventOf<"edit">): Promise<void> {
    const portal = await this.tables.portals.get(user, event.from);
    if (portal === undefined || portal.roomId === null) return;
    const target = await this.tables.messages.byRemote(
      portal.id,
      event.target.author,
      event.target.id,
    );
    if (target === undefined || event.target.author !== event.from) {
      this.log.debug({ portal: portal.id }, "edit of an unknown or foreign message dropped");
      return;
    }
    const ghost = await this.ghosts.ensure(event.from);
    await this.matrix.sendContent(ghost.mxid, portal.roomId, event.content, {
      edits: target.eventId,
    });
  }

  private async retract(user: MatrixUserId, event: EventOf<"retract">): Promise<void> {
    const portal = await this.tables.portals.get(user, event.from);
    if (portal === undefined || portal.roomId === null || event.target.author !== event.from)
      return;
    const target = await this.tables.messages.byRemote(
      portal.id,
      event.target.author,
      event.target.id,
    );
    if (target === undefined || target.retracted) return;
    const ghost = await this.ghosts.ensure(event.from);
    await this.matrix.redact(ghost.mxid, portal.roomId, target.eventId);
    await this.tables.messages.markRetracted(target.eventId);
  }

  /** The contact's complete set on a message becomes ghost reactions added and redacted. */
  private async reactions(user: MatrixUserId, event: EventOf<"reactions">): Promise<void> {
    const portal = await this.tables.portals.get(user, event.from);
    if (portal === undefined || portal.roomId === null) return;
    const target = await this.findTarget(user, portal.id, event.target);
    if (target === undefined) return;
    const ghost = await this.ghosts.ensure(event.from);
    const current = await this.tables.reactions.bySender(portal.id, event.target, ghost.mxid);
    const wanted = new Set(event.emojis);
    for (const row of current) {
      if (wanted.has(row.emoji)) continue;
      await this.matrix.redact(ghost.mxid, portal.roomId, row.eventId);
      await this.tables.reactions.delete(row.eventId);
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
      await this.tables.reactions.insert({
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
    const portal = await this.tables.portals.get(user, event.from);
    if (portal === undefined || portal.roomId === null) return;
    const target = await this.findTarget(user, portal.id, event.upTo);
    if (target === undefined) return;
    const ghost = await this.ghosts.ensure(event.from);
    await this.matrix.sendReadReceipt(ghost.mxid, portal.roomId, target.eventId);
  }

  private async typing(user: MatrixUserId, event: EventOf<"typing">): Promise<void> {
    const portal = await this.tables.portals.get(user, event.from);
    if (portal === undefined || portal.roomId === null) return;
    const ghost = await this.ghosts.ensure(event.from);
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
    await this.tables.contacts.update(user, event.contact, { verifiedAt: null });
    const portal = await this.tables.portals.get(user, event.contact);
    if (portal === undefined || portal.roomId === null) return;
    const number = formatInternational((await this.ghosts.ensure(event.contact)).phone);
    const lines = [
      `The security code with ${number} changed. This happens when they reinstall WhatsApp or ` +
        "switch phones; it can also mean someone else is receiving their messages.",
    ];
    if (event.verifiedMarkCleared) lines.push(`${number} is no longer marked as verified.`);
    lines.push(
      this.config.interop.identity_change === "hold"
        ? `Messages to ${number} are held until you check the new code with \`!wa verify\` and confirm it.`
        : `Compare the new code with them using \`!wa verify\`.`,
    );
    await this.matrix.sendNotice(portal.roomId, lines.join(" "));
  }

  private async undecryptable(user: MatrixUserId, event: EventOf<"undecryptable">): Promise<void> {
    const open = await this.portals.forIncoming(user, event.from, false);
    const number = formatInternational(open.ghost.phone);
    await this.matrix.sendNotice(
      open.portal.roomId,
      `A message from ${number} (sent ${event.sentAt.toISOString()}) could not be decrypted. ` +
        "Their app may send it again; otherwise ask them to resend it.",
    );
    await this.portals.afterIncoming(open);
  }

  private async sendFailed(user: MatrixUserId, event: EventOf<"send-failed">): Promise<void> {
    const portalIds = (await this.tables.portals.listByUser(user)).map((p) => p.id);
    const sent = await this.tables.messages.outgoingByRemote(portalIds, event.target.id);
    if (sent === undefined) {
      this.log.warn({ user }, "a send failure for an unknown message");
      return;
    }
    const portal = await this.tables.portals.byId(sent.portalId);
    if (portal === undefined || portal.roomId === null) return;
    await this.matrix.sendNotice(portal.roomId, failureText(event.reason), sent.eventId);
  }

  private async state(user: MatrixUserId, state: LoginState): Promise<void> {
    const previous = this.states.get(user);
    this.states.set(user, state);
    if (previous?.code === state.code) return;
    this.log.info({ user, state: state.code }, "login state changed");
    if (state.code !== "logged-out" && state.code !== "bad-credentials") return;
    const row = await this.tables.users.get(user);
    if (row === undefined || row.managementRoom === null) return;
    await this.matrix.sendNotice(
      row.managementRoom,
      `You were logged out of WhatsApp: ${state.message} Send \`login\` to log in again.`,
    );
  }

  private async findTarget(
    user: MatrixUserId,
    portalId: number,
    ref: MessageReference,
  ): Promise<MessageRow | undefined> {
    const portal = await this.tables.portals.byId(portalId);
    if (portal === undefined) return undefined;
    // The user's own messages are stored with the Matrix id as author: match them by id alone.
    if (ref.author === portal.contact) {
      return this.tables.messages.byRemote(portalId, portal.contact, ref.id);
    }
    return this.tables.messages.outgoingByRemote([portalId], ref.id);
  }
}

/** The notice for a message the network refused or gave up on, by reason code. */
export function failureText(reason: SendFailure): string {
  const retry =
    reason.retryAt === undefined ? "" : ` You can try again after ${reason.retryAt.toISOString()}.`;
  switch (reason.code) {
    case "blocked":
      return "Not delivered: the recipient does not accept your messages.";
    case "not-reachable":
      return "Not delivered: this contact can no longer be reached through the bridge.";
    case "rate-limited":
      return `Not delivered yet: you are sending too fast.${retry}`;
    case "too-large":
      return "Not delivered: the file is too large for WhatsApp.";
    case "request-pending":
      return "Not delivered: your chat request is still waiting for the contact to accept it.";
    case "timed-out":
      return "Not delivered: WhatsApp did not confirm the message in time.";
    case "identity-unconfirmed":
      return "Not sent: the contact's security code changed. Check it with `!wa verify` first.";
    case "unsupported":
      return "Not delivered: WhatsApp does not support this kind of message.";
    case "internal":
      return `Not delivered: ${reason.message}`;
  }
}
