import type { MatrixApi } from "../../../src/core/matrix-api.js";
import type { MessageContent } from "../../../src/core/network.js";
import type { EventId, MatrixUserId, RoomId } from "../../../src/util/ids.js";

export interface RecordedEvent {
  room: RoomId;
  sender: MatrixUserId;
  eventId: EventId;
  kind: "notice" | "content" | "reaction";
  text: string;
  content?: MessageContent;
  replyTo?: EventId;
  edits?: EventId;
}

function textOf(content: MessageContent): string {
  switch (content.type) {
    case "text":
      return content.text.text;
    case "unsupported":
      return content.fallback ?? "";
    default:
      return `[${content.type}]`;
  }
}

/** A MatrixApi that records what the core asked for, for unit tests of the core. */
export class FakeMatrix implements MatrixApi {
  readonly botUserId = "@whatsappbot:example.org" as MatrixUserId;
  readonly events: RecordedEvent[] = [];
  readonly calls: string[] = [];
  readonly ghosts = new Map<MatrixUserId, string>();
  readonly rooms = new Map<
    RoomId,
    { creator: MatrixUserId; user?: MatrixUserId; name?: string; topic?: string; space?: boolean }
  >();
  readonly roomNames = new Map<string, string>();
  private next = 1;

  async ensureGhost(ghost: MatrixUserId, displayName: string): Promise<void> {
    this.ghosts.set(ghost, displayName);
  }

  async createPortalRoom(options: {
    creator: MatrixUserId;
    user: MatrixUserId;
    name?: string;
    topic?: string;
  }): Promise<RoomId> {
    const room = `!room${this.next++}:example.org` as RoomId;
    this.rooms.set(room, { ...options });
    this.calls.push(`create-portal ${room} by ${options.creator} for ${options.user}`);
    return room;
  }

  /** Power levels of group rooms as the core set them (users only). */
  readonly powerLevels = new Map<RoomId, Record<string, number>>();

  async createGroupRoom(options: {
    name: string;
    powerLevels: Readonly<Record<string, number>>;
  }): Promise<RoomId> {
    const room = `!group${this.next++}:example.org` as RoomId;
    this.rooms.set(room, { creator: this.botUserId, name: options.name });
    this.powerLevels.set(room, { ...options.powerLevels, [this.botUserId]: 100 });
    this.calls.push(`create-group ${room} "${options.name}"`);
    return room;
  }

  async setUserPowerLevels(room: RoomId, levels: Readonly<Record<string, number>>): Promise<void> {
    const users = { ...(this.powerLevels.get(room) ?? {}) };
    for (const [user, level] of Object.entries(levels)) {
      if (level === 0) delete users[user];
      else users[user] = level;
    }
    this.powerLevels.set(room, users);
    this.calls.push(`power ${room} ${JSON.stringify(levels)}`);
  }

  /** Members of rooms the test set up (`roomMembers` answers from it). */
  readonly members = new Map<RoomId, MatrixUserId[]>();

  async roomMembers(_as: MatrixUserId, room: RoomId): Promise<MatrixUserId[]> {
    return this.members.get(room) ?? [];
  }

  async kick(as: MatrixUserId, room: RoomId, user: MatrixUserId): Promise<void> {
    this.calls.push(`kick ${room} ${user} by ${as}`);
  }

  async createSpace(options: { user: MatrixUserId; name: string }): Promise<RoomId> {
    const room = `!space${this.next++}:example.org` as RoomId;
    this.rooms.set(room, {
      creator: this.botUserId,
      user: options.user,
      name: options.name,
      space: true,
    });
    this.calls.push(`create-space ${room} for ${options.user}`);
    return room;
  }

  async addToSpace(space: RoomId, room: RoomId): Promise<void> {
    this.calls.push(`space-child ${space} ${room}`);
  }

  async removeFromSpace(space: RoomId, room: RoomId): Promise<void> {
    this.calls.push(`space-child-removed ${space} ${room}`);
  }

  async invite(as: MatrixUserId, room: RoomId, user: MatrixUserId): Promise<void> {
    this.calls.push(`invite ${room} ${user} by ${as}`);
  }

  async join(as: MatrixUserId, room: RoomId): Promise<void> {
    this.calls.push(`join ${room} ${as}`);
  }

  async leave(as: MatrixUserId, room: RoomId): Promise<void> {
    this.calls.push(`leave ${room} ${as}`);
  }

  /** Errors the next notices throw, one each (a homeserver answering 500, say). */
  readonly noticeFailures: Error[] = [];
  /** Events sent with an idempotency key, by room and key: a homeserver's transaction ids. */
  private readonly byIdempotencyKey = new Map<string, EventId>();

  async sendNotice(
    room: RoomId,
    text: string,
    replyTo?: EventId,
    idempotencyKey?: string,
  ): Promise<EventId> {
    const failure = this.noticeFailures.shift();
    if (failure !== undefined) throw failure;
    const key = idempotencyKey === undefined ? undefined : `${room}\n${idempotencyKey}`;
    const sent = key === undefined ? undefined : this.byIdempotencyKey.get(key);
    if (sent !== undefined) return sent;
    const eventId = await this.record({
      room,
      sender: this.botUserId,
      kind: "notice",
      text,
      ...(replyTo ? { replyTo } : {}),
    });
    if (key !== undefined) this.byIdempotencyKey.set(key, eventId);
    return eventId;
  }

  async sendContent(
    as: MatrixUserId,
    room: RoomId,
    content: MessageContent,
    relation: { replyTo?: EventId; edits?: EventId } = {},
  ): Promise<EventId> {
    return this.record({
      room,
      sender: as,
      kind: "content",
      text: textOf(content),
      content,
      ...relation,
    });
  }

  async sendReaction(
    as: MatrixUserId,
    room: RoomId,
    target: EventId,
    key: string,
  ): Promise<EventId> {
    return this.record({ room, sender: as, kind: "reaction", text: key, replyTo: target });
  }

  async redact(as: MatrixUserId, room: RoomId, event: EventId): Promise<void> {
    this.calls.push(`redact ${room} ${event} by ${as}`);
  }

  async setRoomName(_as: MatrixUserId, room: RoomId, name: string): Promise<void> {
    this.calls.push(`name ${room} "${name}"`);
    const known = this.rooms.get(room);
    if (known !== undefined && room.startsWith("!group")) known.name = name;
  }

  async setRoomTopic(_as: MatrixUserId, room: RoomId, topic: string): Promise<void> {
    this.calls.push(`topic ${room} "${topic}"`);
  }

  async setRoomDisplayName(ghost: MatrixUserId, room: RoomId, displayName: string): Promise<void> {
    this.roomNames.set(`${room} ${ghost}`, displayName);
  }

  async sendTyping(as: MatrixUserId, room: RoomId, typing: boolean): Promise<void> {
    this.calls.push(`typing ${room} ${as} ${typing}`);
  }

  /** Times of events the test placed in rooms (`placeEvent`); undefined for others. */
  readonly eventTimes = new Map<EventId, number>();

  async eventTime(_room: RoomId, event: EventId): Promise<number | undefined> {
    return this.eventTimes.get(event);
  }

  async sendReadReceipt(as: MatrixUserId, room: RoomId, event: EventId): Promise<void> {
    this.calls.push(`receipt ${room} ${event} by ${as}`);
  }

  notices(room: RoomId): string[] {
    return this.events.filter((e) => e.room === room && e.kind === "notice").map((e) => e.text);
  }

  lastNotice(room: RoomId): string {
    return this.notices(room).at(-1) ?? "";
  }

  private async record(event: Omit<RecordedEvent, "eventId">): Promise<EventId> {
    const eventId = `$ev${this.next++}` as EventId;
    this.events.push({ ...event, eventId });
    return eventId;
  }
}
