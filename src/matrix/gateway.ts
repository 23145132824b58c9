import { createHash, randomUUID } from "node:crypto";
import type { Bridge, Intent } from "matrix-appservice-bridge";
import type { MatrixApi } from "../core/matrix-api.js";
import type { MessageContent, NeutralMedia, NeutralText, TextSpan } from "../core/network.js";
import { BridgeError, describeError } from "../util/errors.js";
import { eventId, roomId, type EventId, type MatrixUserId, type RoomId } from "../util/ids.js";
import { silentLogger, type Logger } from "../util/log.js";
import {
  defaultFileName,
  editContent,
  neutralToMatrix,
  reactionContent,
  roomMessage,
  type MatrixMediaOpener,
  type UploadedMedia,
} from "./convert/index.js";
import {
  DEFAULT_MATRIX_RETRY,
  rateLimitWait,
  withMatrixRetries,
  type MatrixRetryPolicy,
} from "./retry.js";
import { MatrixMedia, mediaRetryWait } from "./media.js";

/**
 * The core's MatrixApi on matrix-appservice-bridge intents: the bot and every ghost act through
 * their own intent, which registers the user on first use.
 *
 * Transient homeserver failures (429, 5xx, connection errors) are retried in place (retry.ts), so
 * a homeserver that is briefly overloaded or restarting delays the bridge without reordering or
 * losing anything. Only idempotent requests are retried on 5xx: events are sent with a
 * transaction id that stays the same across the retries (the homeserver answers a repeat with
 * the first event), and room creation is repeated only after a 429.
 */
export class IntentMatrixApi implements MatrixApi {
  readonly botUserId: MatrixUserId;
  private mediaClient: MatrixMedia | undefined;

  constructor(
    private readonly bridge: Bridge,
    private readonly domain: string,
    private readonly mediaMaxBytes: number,
    private readonly log: Logger = silentLogger(),
    private readonly retry: MatrixRetryPolicy = DEFAULT_MATRIX_RETRY,
  ) {
    this.botUserId = bridge.getBot().getUserId() as MatrixUserId;
  }

  private intent(user: MatrixUserId): Intent {
    return this.bridge.getIntent(user);
  }

  /** An idempotent request, retried on transient failures. */
  private retried<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return withMatrixRetries(what, attempt, this.log, this.retry);
  }

  /** A request that must not be repeated after the homeserver may have acted: 429 only. */
  private retriedIfLimited<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return withMatrixRetries(what, attempt, this.log, this.retry, rateLimitWait);
  }

  async ensureGhost(ghost: MatrixUserId, displayName: string): Promise<void> {
    const intent = this.intent(ghost);
    await this.retried("register", () => intent.ensureRegistered());
    await this.retried("displayname", () => intent.setDisplayName(displayName));
  }

  async createPortalRoom(options: {
    creator: MatrixUserId;
    user: MatrixUserId;
    name?: string;
    topic?: string;
  }): Promise<RoomId> {
    const intent = this.intent(options.creator);
    const { room_id: room } = await this.retriedIfLimited("createRoom", () =>
      intent.createRoom({
        createAsClient: true,
        options: {
          preset: "private_chat",
          is_direct: true,
          invite: [options.user, this.botUserId],
          ...(options.name === undefined ? {} : { name: options.name }),
          ...(options.topic === undefined ? {} : { topic: options.topic }),
          power_level_content_override: {
            users: { [options.creator]: 100, [this.botUserId]: 100 },
          },
        },
      }),
    );
    return roomId(room);
  }

  async createSpace(options: { user: MatrixUserId; name: string; topic: string }): Promise<RoomId> {
    const intent = this.intent(this.botUserId);
    const { room_id: room } = await this.retriedIfLimited("createRoom", () =>
      intent.createRoom({
        createAsClient: true,
        options: {
          preset: "private_chat",
          name: options.name,
          topic: options.topic,
          invite: [options.user],
          creation_content: { type: "m.space" },
          power_level_content_override: { events_default: 100, users: { [this.botUserId]: 100 } },
        },
      }),
    );
    return roomId(room);
  }

  async addToSpace(space: RoomId, room: RoomId, roomCreator: MatrixUserId): Promise<void> {
    const via = [this.domain];
    await this.retried("state", () =>
      this.intent(this.botUserId).sendStateEvent(space, "m.space.child", room, { via }),
    );
    await this.retried("state", () =>
      this.intent(roomCreator).sendStateEvent(room, "m.space.parent", space, {
        via,
        canonical: true,
      }),
    );
  }

  async removeFromSpace(space: RoomId, room: RoomId): Promise<void> {
    // The spec removes a child by an m.space.child without `via`: empty content.
    await this.retried("state", () =>
      this.intent(this.botUserId).sendStateEvent(space, "m.space.child", room, {}),
    );
  }

  async invite(as: MatrixUserId, room: RoomId, user: MatrixUserId): Promise<void> {
    await this.retried("invite", () => this.intent(as).invite(room, user));
  }

  async join(as: MatrixUserId, room: RoomId): Promise<void> {
    await this.retried("join", () => this.intent(as).join(room));
  }

  async leave(as: MatrixUserId, room: RoomId): Promise<void> {
    await this.retried("leave", () => this.intent(as).leave(room));
  }

  async sendNotice(room: RoomId, text: string, replyTo?: EventId): Promise<EventId> {
    // The body keeps the `code` marks as Markdown; formatted_body shows them as code.
    const body = {
      ...neutralToMatrix({ type: "text", text: inlineCode(text), notice: true }),
      body: text,
    };
    return this.send(
      this.botUserId,
      room,
      roomMessage(body, replyTo === undefined ? undefined : { eventId: replyTo }),
    );
  }

  async sendContent(
    as: MatrixUserId,
    room: RoomId,
    content: MessageContent,
    relation: { replyTo?: EventId; edits?: EventId } = {},
    idempotencyKey?: string,
  ): Promise<EventId> {
    const uploaded = content.type === "media" ? await this.upload(as, content.media) : undefined;
    const body = neutralToMatrix(content, uploaded);
    if (relation.edits !== undefined) {
      return this.send(as, room, editContent(relation.edits, body), idempotencyKey);
    }
    return this.send(
      as,
      room,
      roomMessage(body, relation.replyTo === undefined ? undefined : { eventId: relation.replyTo }),
      idempotencyKey,
    );
  }

  async sendReaction(
    as: MatrixUserId,
    room: RoomId,
    target: EventId,
    key: string,
  ): Promise<EventId> {
    return this.sendEvent(
      as,
      room,
      "m.reaction",
      reactionContent(target, key) as unknown as Record<string, unknown>,
    );
  }

  async redact(as: MatrixUserId, room: RoomId, event: EventId): Promise<void> {
    const intent = this.intent(as);
    const path =
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/redact/` +
      `${encodeURIComponent(event)}/${encodeURIComponent(transactionId(as))}`;
    await this.retried("redact", async () => {
      await intent.ensureRegistered();
      await intent.matrixClient.doRequest("PUT", path, null, {});
    });
  }

  async setRoomName(as: MatrixUserId, room: RoomId, name: string): Promise<void> {
    await this.retried("state", () => this.intent(as).setRoomName(room, name));
  }

  async setRoomTopic(as: MatrixUserId, room: RoomId, topic: string): Promise<void> {
    await this.retried("state", () => this.intent(as).setRoomTopic(room, topic));
  }

  async setRoomDisplayName(ghost: MatrixUserId, room: RoomId, displayName: string): Promise<void> {
    await this.retried("state", () =>
      this.intent(ghost).setRoomUserProfile(room, { displayname: displayName }),
    );
  }

  async sendTyping(as: MatrixUserId, room: RoomId, typing: boolean): Promise<void> {
    await this.retried("typing", () => this.intent(as).sendTyping(room, typing));
  }

  async sendReadReceipt(as: MatrixUserId, room: RoomId, event: EventId): Promise<void> {
    await this.retried("receipt", () => this.intent(as).sendReadReceipt(room, event));
  }

  async eventTime(room: RoomId, event: EventId): Promise<number | undefined> {
    try {
      const found = await this.intent(this.botUserId).getEvent(room, event);
      const ts = (found.raw as { origin_server_ts?: unknown } | undefined)?.origin_server_ts;
      return typeof ts === "number" && Number.isFinite(ts) ? ts : undefined;
    } catch (err) {
      this.log.debug({ room, event, err: describeError(err) }, "event time not available");
      return undefined;
    }
  }

  private send(
    as: MatrixUserId,
    room: RoomId,
    body: object,
    idempotencyKey?: string,
  ): Promise<EventId> {
    return this.sendEvent(
      as,
      room,
      "m.room.message",
      body as Record<string, unknown>,
      idempotencyKey,
    );
  }

  /**
   * PUT /rooms/{room}/send/{type}/{txnId} as `as`, with one transaction id for every retry, so
   * that a repeat of a request the homeserver did carry out returns the same event instead of a
   * second one. With an idempotency key (the remote message's id) the transaction id is derived
   * from it, which also makes the send after a crash and a redelivery return the event posted
   * before the crash. Joins the room first when the homeserver says the sender is not in it, as
   * the library's own sendEvent does.
   */
  private async sendEvent(
    as: MatrixUserId,
    room: RoomId,
    type: string,
    content: Record<string, unknown>,
    idempotencyKey?: string,
  ): Promise<EventId> {
    const intent = this.intent(as);
    const txnId = transactionId(
      as,
      idempotencyKey === undefined ? undefined : `${room}\n${idempotencyKey}`,
    );
    const path =
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/` +
      `${encodeURIComponent(type)}/${encodeURIComponent(txnId)}`;
    const put = async (): Promise<string> => {
      const answer = (await intent.matrixClient.doRequest("PUT", path, null, content)) as {
        event_id?: unknown;
      };
      if (typeof answer.event_id !== "string") {
        throw new BridgeError("matrix-send", "the homeserver answered a send without event_id");
      }
      return answer.event_id;
    };
    const id = await this.retried(`send ${type}`, async () => {
      await intent.ensureRegistered();
      try {
        return await put();
      } catch (err) {
        if ((err as { errcode?: unknown }).errcode !== "M_FORBIDDEN") throw err;
        // Not (or no longer) in the room: join and send once more.
        await intent.join(room);
        return put();
      }
    });
    return eventId(id);
  }

  /**
   * Opens a Matrix attachment for the network (NeutralMedia.open of an inbound message). Portals
   * are unencrypted rooms, so an encrypted attachment is refused rather than sent undecrypted.
   */
  readonly openMedia: MatrixMediaOpener = async (source) => {
    if (source.encryption !== undefined) {
      throw new BridgeError("media-encrypted", "encrypted attachments cannot be bridged");
    }
    return this.media().download(source.mxc);
  };

  /** The content repository, streamed (media.ts); made on first use from the bot's client. */
  private media(): MatrixMedia {
    if (this.mediaClient === undefined) {
      const client = this.intent(this.botUserId).matrixClient;
      this.mediaClient = new MatrixMedia({
        homeserverUrl: client.homeserverUrl,
        asToken: client.accessToken,
        maxBytes: this.mediaMaxBytes,
        log: this.log,
      });
    }
    return this.mediaClient;
  }

  /** Uploads the plaintext (bounded by interop.media_max_bytes) for mediaToMatrix, streamed. */
  private async upload(as: MatrixUserId, media: NeutralMedia): Promise<UploadedMedia> {
    const intent = this.intent(as);
    await this.retried("register", () => intent.ensureRegistered());
    // A repeated upload at worst leaves an unused copy on the homeserver; each attempt reads
    // the media afresh (open() may be called more than once).
    const url = await withMatrixRetries(
      "upload",
      async () =>
        this.media().upload({
          user: as,
          source: await media.open(),
          size: media.size,
          mimeType: media.mimeType,
          fileName: media.fileName ?? defaultFileName(media),
        }),
      this.log,
      this.retry,
      mediaRetryWait,
    );
    const thumb = media.thumbnail;
    if (thumb === undefined) return { url };
    // The network's preview (a JPEG in WhatsApp's case) becomes the event's thumbnail_url.
    const thumbnailUrl = await this.retried("upload", () =>
      intent.uploadContent(Buffer.from(thumb.data), { name: "thumbnail", type: thumb.mimeType }),
    );
    return {
      url,
      thumbnail: {
        url: thumbnailUrl,
        mimeType: thumb.mimeType,
        size: thumb.data.byteLength,
        width: thumb.width,
        height: thumb.height,
      },
    };
  }
}

/**
 * A transaction id for a send by `as`: derived from `key` when given (the same key always gives
 * the same id; the sender is part of it because Synapse scopes appservice transaction ids to the
 * appservice, not to the user it acts as), else random.
 */
export function transactionId(as: MatrixUserId, key?: string): string {
  if (key === undefined) return `mwi.${randomUUID()}`;
  return `mwi.${createHash("sha256").update(`${as}\n${key}`).digest("base64url").slice(0, 32)}`;
}

/** Turns `code` segments of a bot text into monospace spans. */
export function inlineCode(source: string): NeutralText {
  const spans: TextSpan[] = [];
  let text = "";
  const parts = source.split("`");
  // An odd count of backticks leaves the last one unpaired: it is kept as written.
  const paired =
    parts.length % 2 === 1
      ? parts
      : [...parts.slice(0, -2), `${parts.at(-2) ?? ""}\`${parts.at(-1) ?? ""}`];
  paired.forEach((part, i) => {
    if (i % 2 === 1 && part.length > 0) {
      spans.push({ start: text.length, end: text.length + part.length, style: "monospace" });
    }
    text += part;
  });
  return { text, spans };
}
