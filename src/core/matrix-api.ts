import { BridgeError } from "../util/errors.js";
import type { EventId, MatrixUserId, RoomId } from "../util/ids.js";
import type { MessageContent } from "./network.js";

/**
 * What the core asks of the Matrix side (src/matrix/gateway.ts implements it on the appservice's
 * intents). Every call may reject (homeserver unreachable, forbidden); the core lets such errors
 * fail the work at hand, so a network event is redelivered or a Matrix transaction retried.
 * `as` is always the bot or one of the bridge's ghosts.
 */
export interface MatrixApi {
  readonly botUserId: MatrixUserId;
  /** Registers the ghost if it is not yet, and sets its global display name. Idempotent. */
  ensureGhost(ghost: MatrixUserId, displayName: string): Promise<void>;
  /** Creates a direct room owned by `creator` (a ghost) with the bot and the user invited. */
  createPortalRoom(options: {
    creator: MatrixUserId;
    user: MatrixUserId;
    name?: string;
    topic?: string;
  }): Promise<RoomId>;
  /**
   * Creates a group portal owned by the bot (power 100), named `name`, where inviting, kicking and
   * renaming need power 50 (a group admin's), with `powerLevels` for other users. Encrypted like
   * a direct portal when Matrix-side encryption is on. Nobody is invited yet.
   */
  createGroupRoom(options: {
    name: string;
    powerLevels: Readonly<Record<string, number>>;
  }): Promise<RoomId>;
  /**
   * Sets users' power levels in a room the bot administers, keeping everything else of the room's
   * power levels; a level of 0 removes the user's entry.
   */
  setUserPowerLevels(room: RoomId, levels: Readonly<Record<string, number>>): Promise<void>;
  /** The users joined to or invited into a room, read as `as` (who must be in it). */
  roomMembers(as: MatrixUserId, room: RoomId): Promise<MatrixUserId[]>;
  /** Removes `user` from `room` (also rescinds an invite). */
  kick(as: MatrixUserId, room: RoomId, user: MatrixUserId, reason?: string): Promise<void>;
  /** Creates the user's personal space, owned by the bot, and invites the user. */
  createSpace(options: { user: MatrixUserId; name: string; topic: string }): Promise<RoomId>;
  /** Lists `room` in `space` (m.space.child by the bot, m.space.parent by the room's creator). */
  addToSpace(space: RoomId, room: RoomId, roomCreator: MatrixUserId): Promise<void>;
  /** Takes `room` off `space`'s list (an empty m.space.child by the bot). */
  removeFromSpace(space: RoomId, room: RoomId): Promise<void>;
  invite(as: MatrixUserId, room: RoomId, user: MatrixUserId): Promise<void>;
  join(as: MatrixUserId, room: RoomId): Promise<void>;
  leave(as: MatrixUserId, room: RoomId): Promise<void>;
  /**
   * A notice from the bot; `replyTo` makes it a reply to that event. With an `idempotencyKey`,
   * sends with the same key into the same room post one event (as sendContent's).
   */
  sendNotice(
    room: RoomId,
    text: string,
    replyTo?: EventId,
    idempotencyKey?: string,
  ): Promise<EventId>;
  /**
   * A message from a ghost, converted from the neutral model; `edits` makes it an m.replace.
   * Sends with the same `idempotencyKey` (the remote message's identity) into the same room post
   * one event: a redelivery after a crash between the send and recording its mapping returns the
   * event of the first send instead of posting a duplicate.
   */
  sendContent(
    as: MatrixUserId,
    room: RoomId,
    content: MessageContent,
    relation?: { replyTo?: EventId; edits?: EventId },
    idempotencyKey?: string,
  ): Promise<EventId>;
  sendReaction(as: MatrixUserId, room: RoomId, target: EventId, key: string): Promise<EventId>;
  redact(as: MatrixUserId, room: RoomId, event: EventId): Promise<void>;
  setRoomName(as: MatrixUserId, room: RoomId, name: string): Promise<void>;
  setRoomTopic(as: MatrixUserId, room: RoomId, topic: string): Promise<void>;
  /** Overrides a ghost's display name in one room only (its own m.room.member event). */
  setRoomDisplayName(ghost: MatrixUserId, room: RoomId, displayName: string): Promise<void>;
  sendTyping(as: MatrixUserId, room: RoomId, typing: boolean): Promise<void>;
  sendReadReceipt(as: MatrixUserId, room: RoomId, event: EventId): Promise<void>;
  /**
   * The `origin_server_ts` of an event in a room the bot is in, read as the bot. Undefined when
   * the homeserver does not give it (unknown event, no access, unreachable): callers that need it
   * only for best-effort work (read receipts) skip it then. Never throws.
   */
  eventTime(room: RoomId, event: EventId): Promise<number | undefined>;
}

/**
 * The homeserver refused a request for good (a 4xx other than 429: M_TOO_LARGE, M_FORBIDDEN,
 * M_BAD_JSON...): repeating it cannot help. Thrown by the Matrix side so that the core can tell
 * the user and go on instead of having the work redelivered forever. `errcode` and `statusCode`
 * are the homeserver's.
 */
export class MatrixRefusedError extends BridgeError {
  constructor(
    readonly errcode: string,
    readonly statusCode: number,
    message: string,
    cause?: unknown,
  ) {
    super(`matrix-refused`, `${message} (${errcode})`, { cause });
  }
}
