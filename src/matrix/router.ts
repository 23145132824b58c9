import type { WeakEvent } from "matrix-appservice-bridge";
import type { GroupPortalRow } from "../db/groups.js";
import type { OpenGroupPortal, UserLevels } from "../core/groups.js";
import { isGroupPortal, type AnyPortal, type MatrixEventAttempt } from "../core/matrix-events.js";
import { echoed } from "../core/texts.js";
import type { ProcessedEventsTable } from "../db/processed-events.js";
import { describeError } from "../util/errors.js";
import {
  eventId,
  isMatrixUserId,
  roomId,
  type EventId,
  type MatrixUserId,
  type RoomId,
} from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type { MessageContent } from "../core/network.js";
import type { RouterPort } from "../core/ports.js";
import {
  matrixEventToNeutral,
  type MatrixMediaOpener,
  type MatrixMediaRef,
} from "./convert/index.js";
import type { DecryptOutcome } from "./crypto/room-crypto.js";
import type { EphemeralEvent, Transaction } from "./transactions.js";

/** The part of RoomCrypto the router uses: the clear event for each event it gets. */
interface EventDecryptor {
  decrypt(event: WeakEvent): Promise<DecryptOutcome>;
}

/** `<prefix> create-group <name>` (or bridgev2's alias `create`) in a room that is no portal. */
const createGroupHere = (prefix: string): RegExp =>
  new RegExp(
    `^\\s*${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s+(create-group|create)(\\s|$)`,
    "i",
  );

/** Thumbnails are small previews; anything larger is not worth fetching for one. */
const MAX_THUMBNAIL_BYTES = 256 * 1024;

/**
 * Room events a person sends as content that WhatsApp has no counterpart for. Dropping them
 * silently would leave the user believing the contact saw them, so each gets a notice; other
 * event types (state, receipts of clients, call signalling after the invite) are not content.
 */
const UNBRIDGEABLE: Readonly<Record<string, string>> = {
  "m.poll.start": "polls cannot be bridged to WhatsApp",
  "org.matrix.msc3381.poll.start": "polls cannot be bridged to WhatsApp",
  "m.room.encrypted": "encrypted messages cannot be bridged; keep this chat unencrypted",
  "m.call.invite": "calls cannot be bridged to WhatsApp",
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Routes what the homeserver pushes: the bot's invites and management-room commands to the core's
 * command layer, portal messages to the user's login, memberships to the portal lifecycle.
 * Events from the bot and the ghosts are dropped (no echo), events seen before are skipped (a
 * retried transaction is handled once), and an event is recorded as handled only after its
 * handling succeeded.
 */
interface MatrixEventRouterOptions {
  /** The core's side of routing (BridgeCore.router). */
  core: RouterPort;
  /** The events handled already, so that a retried transaction is handled once. */
  processed: ProcessedEventsTable;
  /** Downloads a Matrix media attachment (IntentMatrixApi.openMedia). */
  openMedia: MatrixMediaOpener;
  log: Logger;
  /**
   * Decrypts events of encrypted rooms (RoomCrypto); without it every event is taken as sent, and
   * an encrypted one is answered with the notice that it cannot be bridged.
   */
  decryptor?: EventDecryptor | undefined;
}

export class MatrixEventRouter {
  /** Typing last passed on, per room and user (a group portal has several users). */
  private readonly typing = new Map<string, boolean>();

  private readonly core: RouterPort;
  private readonly processed: ProcessedEventsTable;
  private readonly openMedia: MatrixMediaOpener;
  private readonly log: Logger;
  private readonly decryptor: EventDecryptor | undefined;

  constructor(options: MatrixEventRouterOptions) {
    this.core = options.core;
    this.processed = options.processed;
    this.openMedia = options.openMedia;
    this.log = options.log;
    this.decryptor = options.decryptor;
    this.createGroupPattern = createGroupHere(options.core.network.commandPrefix);
  }

  private readonly createGroupPattern: RegExp;

  async handleTransaction(txn: Transaction): Promise<void> {
    for (const event of txn.events) await this.handleEvent(event);
    for (const event of txn.ephemeral) {
      // Receipts and typing are best effort: losing one is harmless, retrying the whole
      // transaction for one is not worth re-handling the rest.
      await this.handleEphemeral(event).catch((err: unknown) => {
        this.log.debug({ type: event.type, err: describeError(err) }, "ephemeral event dropped");
      });
    }
  }

  async handleEvent(event: WeakEvent): Promise<void> {
    if (typeof event.event_id !== "string" || typeof event.room_id !== "string") return;
    if (this.core.isOwnUser(event.sender)) return;
    if (await this.processed.has(event.event_id)) {
      this.log.debug({ eventId: event.event_id }, "event handled before; skipped");
      return;
    }
    await this.route(event);
    await this.processed.mark(event.event_id);
  }

  /**
   * Handles one recorded event (the ingress's room worker calls this; own echoes were dropped
   * before recording). Throws to have the failure classified by the ingress. An encrypted event
   * is decrypted first (RoomCrypto waits a bounded time for a missing key); one that cannot be
   * read, or plaintext where encryption is required, is answered with a notice.
   */
  async route(event: WeakEvent, attempt: MatrixEventAttempt = {}): Promise<void> {
    const outcome: DecryptOutcome =
      this.decryptor === undefined ? { kind: "clear", event } : await this.decryptor.decrypt(event);
    if (outcome.kind === "clear") await this.routeClear(outcome.event, attempt);
    else if (
      outcome.kind === "refused" &&
      (await this.portalOf(roomId(event.room_id))) === undefined
    ) {
      // Required encryption applies to portals; management rooms stay plaintext.
      await this.routeClear(event);
    } else await this.notDecrypted(event, outcome.kind, outcome.reason);
  }

  /** A portal user's event the bridge cannot read (or must not bridge): the user is told. */
  private async notDecrypted(
    event: WeakEvent,
    kind: "undecryptable" | "refused",
    reason: string,
  ): Promise<void> {
    const portal = await this.portalOf(roomId(event.room_id));
    if (portal === undefined || !(await this.isPortalUser(portal, event.sender))) return;
    this.log.debug({ eventId: event.event_id, reason }, "Matrix event not bridged");
    await this.core.notice(
      portal.roomId as RoomId,
      kind === "undecryptable"
        ? "Not sent: the bridge could not decrypt this message; send it again."
        : `Not sent: ${reason}.`,
      eventId(event.event_id),
    );
  }

  private async routeClear(event: WeakEvent, attempt: MatrixEventAttempt = {}): Promise<void> {
    if (!isMatrixUserId(event.sender)) return;
    const sender = event.sender;
    const room = roomId(event.room_id);
    const content = isRecord(event.content) ? event.content : {};
    if (event.type === "m.room.member") {
      const target = event.state_key;
      const group = opened(await this.core.groupPortals.byRoom(room));
      if (group !== undefined) {
        await this.groupMembership(sender, group, target, content["membership"]);
        return;
      }
      if (content["membership"] === "invite" && typeof target === "string") {
        // A ghost invited by a user starts or links that chat there (core/ghost-invites.ts).
        if (this.core.isGhost(target)) {
          await this.core.onGhostInvited(
            sender,
            room,
            target as MatrixUserId,
            content["is_direct"] === true,
          );
          return;
        }
      }
      await this.membership(sender, room, target, content["membership"]);
      return;
    }
    if (this.core.permissionOf(sender) === "none") return;
    const portal = await this.core.portalRows.byRoom(room);
    if (portal !== undefined) {
      if (portal.userMxid !== sender) return;
      await this.portalEvent(portal, sender, event, content, attempt);
      return;
    }
    const group = opened(await this.core.groupPortals.byRoom(room));
    if (group !== undefined) {
      await this.groupEvent(group, sender, event, content, attempt);
      return;
    }
    if (event.type !== "m.room.message" || typeof content["body"] !== "string") return;
    const user = await this.core.users.byManagementRoom(room);
    if (user === undefined && this.createGroupPattern.test(content["body"])) {
      // bridgev2's create-group in a room of the user's where the bridge was brought in (a
      // ghost invited there offers it): the room becomes the group's portal.
      await this.core.createGroupHere(sender, room, content["body"]);
      return;
    }
    if (user?.mxid !== sender) return;
    await this.core.handleManagementMessage(sender, room, content["body"]);
  }

  private async membership(
    sender: MatrixUserId,
    room: RoomId,
    target: unknown,
    membership: unknown,
  ): Promise<void> {
    if (target === this.core.botUserId && membership === "invite") {
      const portal = await this.core.portalRows.byRoom(room);
      if (portal === undefined) await this.core.onBotInvited(sender, room);
      return;
    }
    if (target !== sender) return;
    const portal = await this.core.portalRows.byRoom(room);
    if (portal?.userMxid !== sender) return;
    if (membership === "join" || membership === "leave") {
      await this.core.portals.onUserMembership(portal, membership);
    }
  }

  /**
   * Membership in a group portal: a user inviting or kicking a ghost adds or removes that member
   * at the network; a user's own join or leave accepts a request or leaves the group.
   */
  private async groupMembership(
    sender: MatrixUserId,
    portal: OpenGroupPortal,
    target: unknown,
    membership: unknown,
  ): Promise<void> {
    if (typeof target !== "string" || !isMatrixUserId(target)) return;
    if (target === sender) {
      if (membership === "join" || membership === "leave") {
        await this.core.groups.onUserMembership(sender, portal, membership);
      }
      // Joined without being a member through their login (a room made public, say): removed.
      if (membership === "join" && !this.core.isGhost(target)) {
        await this.core.groups.onOutsider(portal, target);
      }
      return;
    }
    if (!this.core.isGhost(target)) {
      // Someone invited a Matrix user who is not a member at the network: they would read the
      // group without being in it. The bot's own invites never come here (its events are dropped).
      if (membership === "invite") await this.core.groups.onOutsider(portal, target);
      return;
    }
    if (membership === "invite") await this.core.groups.onGhostInvited(sender, portal, target);
    else if (membership === "leave" || membership === "ban") {
      await this.core.groups.onGhostKicked(sender, portal, target);
    }
  }

  /** A user's event in a group portal: a name or power level change, or content. */
  private async groupEvent(
    portal: OpenGroupPortal,
    sender: MatrixUserId,
    event: WeakEvent,
    content: Record<string, unknown>,
    attempt: MatrixEventAttempt,
  ): Promise<void> {
    const isState = event.type === "m.room.name" || event.type === "m.room.power_levels";
    // Content from someone who is not one of the group's bridge users is answered by the core
    // with a notice; room settings of theirs are the room's own business.
    if (isState && (await this.core.groupPortals.user(portal.id, sender)) === undefined) return;
    if (event.type === "m.room.name" && event.state_key === "") {
      const name = typeof content["name"] === "string" ? content["name"] : "";
      if (name !== portal.subject) await this.core.groups.onRenamed(sender, portal, name);
      return;
    }
    if (event.type === "m.room.power_levels" && event.state_key === "") {
      // Compared with the previous levels: only what this event changed is acted on.
      const unsigned: unknown = event.unsigned;
      const prev =
        isRecord(unsigned) && isRecord(unsigned["prev_content"]) ? unsigned["prev_content"] : {};
      await this.core.groups.onPowerLevels(sender, portal, userLevels(content), userLevels(prev));
      return;
    }
    await this.portalEvent(portal, sender, event, content, attempt);
  }

  /** The 1:1 or group portal of a room, if it is one. */
  private async portalOf(room: RoomId): Promise<AnyPortal | undefined> {
    return (
      (await this.core.portalRows.byRoom(room)) ?? opened(await this.core.groupPortals.byRoom(room))
    );
  }

  /** Whether a Matrix user is the portal's user (1:1) or one of its users (group). */
  private async isPortalUser(portal: AnyPortal, user: string): Promise<boolean> {
    if (!isGroupPortal(portal)) return portal.userMxid === user;
    return (await this.core.groupPortals.user(portal.id, user as MatrixUserId)) !== undefined;
  }

  private async portalEvent(
    portal: AnyPortal,
    sender: MatrixUserId,
    event: WeakEvent,
    content: Record<string, unknown>,
    attempt: MatrixEventAttempt,
  ): Promise<void> {
    const id = eventId(event.event_id);
    const body = content["body"];
    if (
      event.type === "m.room.message" &&
      typeof body === "string" &&
      body.trim().startsWith(`${this.core.network.commandPrefix} `)
    ) {
      if (isGroupPortal(portal)) {
        await this.core.handleGroupPortalCommand(sender, portal.roomId as RoomId, body);
      } else await this.core.handlePortalCommand(sender, portal, body);
      return;
    }
    const inbound = matrixEventToNeutral(event, this.openMedia);
    switch (inbound.kind) {
      case "message": {
        const content = await this.withThumbnail(inbound.content, inbound.media);
        await this.core.fromMatrix.message(sender, portal, id, content, inbound.replyTo, attempt);
        return;
      }
      case "edit":
        await this.core.fromMatrix.edit(sender, portal, id, inbound.target, inbound.content);
        return;
      case "reaction":
        await this.core.fromMatrix.reaction(sender, portal, id, inbound.target, inbound.key);
        return;
      case "redaction":
        await this.core.fromMatrix.redaction(sender, portal, inbound.target, id);
        return;
      case "unsupported": {
        if (event.state_key !== undefined) return;
        const known = UNBRIDGEABLE[event.type];
        // A reaction that cannot be passed on (a key over 256 characters, no target) is said so
        // too: the user sees their reaction and would believe the contact does.
        if (
          known === undefined &&
          event.type !== "m.room.message" &&
          event.type !== "m.sticker" &&
          event.type !== "m.reaction"
        ) {
          return;
        }
        this.log.debug({ reason: inbound.reason }, "unsupported Matrix message");
        await this.core.notice(
          portal.roomId as RoomId,
          `Not sent: ${known ?? echoed(inbound.reason, 120)}.`,
          id,
        );
      }
    }
  }

  /**
   * Fetches the thumbnail an attachment references, so that the contact sees a preview: the
   * conversion only names it. A thumbnail is decoration, so one that is missing, too large,
   * without dimensions or unreachable is left out rather than failing the message.
   */
  private async withThumbnail(
    content: MessageContent,
    ref: MatrixMediaRef | undefined,
  ): Promise<MessageContent> {
    const thumb = ref?.thumbnail;
    if (content.type !== "media" || thumb === undefined) return content;
    const { width, height } = thumb;
    if (width === undefined || height === undefined) return content;
    try {
      const chunks: Uint8Array[] = [];
      let size = 0;
      for await (const chunk of await this.openMedia(thumb)) {
        size += chunk.byteLength;
        if (size > MAX_THUMBNAIL_BYTES) return content;
        chunks.push(chunk);
      }
      const data = new Uint8Array(Buffer.concat(chunks));
      const mimeType = thumb.mimeType ?? "application/octet-stream";
      return {
        ...content,
        media: { ...content.media, thumbnail: { data, width, height, mimeType } },
      };
    } catch (err) {
      this.log.debug({ err: describeError(err) }, "thumbnail not fetched; sent without");
      return content;
    }
  }

  async handleEphemeral(event: EphemeralEvent): Promise<void> {
    if (typeof event.room_id !== "string") return;
    const room = roomId(event.room_id);
    if (event.type !== "m.typing" && event.type !== "m.receipt") return;
    const portal = await this.portalOf(room);
    if (portal === undefined) return;
    const portalUsers = isGroupPortal(portal)
      ? (await this.core.groupPortals.users(portal.id)).map((u) => u.user)
      : [portal.userMxid];
    if (event.type === "m.typing") {
      const users = Array.isArray(event.content["user_ids"]) ? event.content["user_ids"] : [];
      for (const user of portalUsers) {
        const typing = users.includes(user);
        const key = `${room}\n${user}`;
        // m.typing repeats the whole list on every change (the ghost's too): pass on changes only.
        if ((this.typing.get(key) ?? false) === typing) continue;
        if (await this.core.fromMatrix.typing(user, portal, typing)) this.typing.set(key, typing);
      }
      return;
    }
    for (const [target, receipts] of Object.entries(event.content)) {
      const read = isRecord(receipts) ? receipts["m.read"] : undefined;
      if (!isRecord(read) || !target.startsWith("$")) continue;
      for (const user of portalUsers) {
        if (user in read) await this.core.fromMatrix.read(user, portal, target as EventId);
      }
    }
  }
}

/** A group portal row that has its room, or undefined. */
function opened(row: GroupPortalRow | undefined): OpenGroupPortal | undefined {
  return row === undefined || row.roomId === null ? undefined : { ...row, roomId: row.roomId };
}

/** The users part of an m.room.power_levels content (missing or malformed parts: none, 0). */
function userLevels(content: Record<string, unknown>): UserLevels {
  const users: Record<string, number> = {};
  if (isRecord(content["users"])) {
    for (const [user, level] of Object.entries(content["users"])) {
      if (typeof level === "number") users[user] = level;
    }
  }
  const usersDefault = typeof content["users_default"] === "number" ? content["users_default"] : 0;
  return { users, usersDefault };
}
