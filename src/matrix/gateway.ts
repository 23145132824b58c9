import { createHash, randomUUID } from "node:crypto";
import type { Bridge, Intent } from "matrix-appservice-bridge";
import { MatrixRefusedError, type MatrixApi } from "../core/matrix-api.js";
import type { MessageContent, NeutralMedia, NeutralText, TextSpan } from "../core/network.js";
import { BridgeError, describeError } from "../util/errors.js";
import { eventId, roomId, type EventId, type MatrixUserId, type RoomId } from "../util/ids.js";
import { silentLogger, type Logger } from "../util/log.js";
import { homeserverRequest } from "./http.js";
import {
  defaultFileName,
  editContent,
  neutralToMatrix,
  reactionContent,
  roomMessage,
  type MatrixMediaOpener,
  type UploadedMedia,
} from "./convert/index.js";
import { CONTENT_LIMIT_BYTES, ENCRYPTED_CONTENT_LIMIT_BYTES, fitContent } from "./fit.js";
import { withCheckedType } from "./media-type.js";
import type { RoomEncryptor } from "./crypto/room-crypto.js";
import {
  DEFAULT_MATRIX_RETRY,
  rateLimitWait,
  withMatrixRetries,
  type MatrixRetryPolicy,
} from "./retry.js";
import { MatrixMedia, mediaRetryWait } from "./media.js";

/** The event power levels createRoom gives a room by default (client-server API, createRoom). */
const DEFAULT_EVENT_LEVELS = {
  "m.room.name": 50,
  "m.room.power_levels": 100,
  "m.room.history_visibility": 100,
  "m.room.canonical_alias": 50,
  "m.room.avatar": 50,
  "m.room.tombstone": 100,
  "m.room.server_acl": 100,
} as const;

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
interface IntentMatrixApiOptions {
  bridge: Bridge;
  /** The homeserver's domain (`homeserver.domain`), the server a room is joined via. */
  domain: string;
  /**
   * The largest media file passed in either direction, in bytes: reading a larger one fails while
   * it streams. The network's limit, which the wiring (src/bridge.ts) takes from the connector's
   * settings; the Matrix side knows no network.
   */
  mediaMaxBytes: number;
  log?: Logger | undefined;
  /** The in-place retries of transient failures (DEFAULT_MATRIX_RETRY by default). */
  retry?: MatrixRetryPolicy | undefined;
  /** Encrypts for encrypted rooms (RoomCrypto); without it every room is sent plaintext. */
  encryptor?: RoomEncryptor | undefined;
}

export class IntentMatrixApi implements MatrixApi {
  readonly botUserId: MatrixUserId;
  private mediaClient: MatrixMedia | undefined;
  private readonly closing = new AbortController();

  private readonly bridge: Bridge;
  private readonly domain: string;
  private readonly mediaMaxBytes: number;
  private readonly log: Logger;
  private readonly retry: MatrixRetryPolicy;
  private readonly encryptor: RoomEncryptor | undefined;

  constructor(options: IntentMatrixApiOptions) {
    this.bridge = options.bridge;
    this.domain = options.domain;
    this.mediaMaxBytes = options.mediaMaxBytes;
    this.log = options.log ?? silentLogger();
    this.retry = options.retry ?? DEFAULT_MATRIX_RETRY;
    this.encryptor = options.encryptor;
    this.botUserId = options.bridge.getBot().getUserId() as MatrixUserId;
  }

  private intent(user: MatrixUserId): Intent {
    return this.bridge.getIntent(user);
  }

  /**
   * Ends the in-place retries (a stop): a request failing after this fails at once, so that a
   * graceful stop is not held for minutes by a homeserver that keeps failing. The work it belongs
   * to stays recorded and is done after the next start.
   */
  async close(): Promise<void> {
    this.closing.abort();
    // The media client's keep-alive connections (src/matrix/media.ts): left open, they keep a
    // stopped bridge's process alive.
    await this.mediaClient?.close().catch(() => undefined);
    this.mediaClient = undefined;
  }

  /** An idempotent request, retried on transient failures. */
  private retried<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return withMatrixRetries(what, attempt, this.log, this.retry, undefined, this.closing.signal);
  }

  /** A request that must not be repeated after the homeserver may have acted: 429 only. */
  private retriedIfLimited<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return withMatrixRetries(
      what,
      attempt,
      this.log,
      this.retry,
      rateLimitWait,
      this.closing.signal,
    );
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
    const initialState = this.encryptor?.initialState() ?? [];
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
            // The spec's defaults, except that the user may turn encryption on (the bridge
            // follows it); it can never be turned off again.
            events: { ...DEFAULT_EVENT_LEVELS, "m.room.encryption": 0 },
          },
          ...(initialState.length === 0 ? {} : { initial_state: initialState }),
        },
      }),
    );
    await this.encryptor?.roomCreated(room, initialState);
    return roomId(room);
  }

  async createGroupRoom(options: {
    name: string;
    powerLevels: Readonly<Record<string, number>>;
  }): Promise<RoomId> {
    const intent = this.intent(this.botUserId);
    const initialState = this.encryptor?.initialState() ?? [];
    const { room_id: room } = await this.retriedIfLimited("createRoom", () =>
      intent.createRoom({
        createAsClient: true,
        options: {
          preset: "private_chat",
          name: options.name,
          power_level_content_override: {
            users: { ...options.powerLevels, [this.botUserId]: 100 },
            // A group's admins have 50 (docs/groups.md): they may invite, kick, rename and make
            // admins (a ghost raised to 50), as at the network. With power levels at 100 no admin
            // could, and admin changes from Matrix would never reach the network.
            invite: 50,
            kick: 50,
            events: {
              ...DEFAULT_EVENT_LEVELS,
              "m.room.name": 50,
              "m.room.power_levels": 50,
              "m.room.encryption": 0,
            },
          },
          ...(initialState.length === 0 ? {} : { initial_state: initialState }),
        },
      }),
    );
    await this.encryptor?.roomCreated(room, initialState);
    return roomId(room);
  }

  async setUserPowerLevels(room: RoomId, levels: Readonly<Record<string, number>>): Promise<void> {
    const intent = this.intent(this.botUserId);
    await this.stateChange(() =>
      this.retried("state", async () => {
        const current = (await intent.getStateEvent(room, "m.room.power_levels", "")) as Record<
          string,
          unknown
        > | null;
        const content = { ...(current ?? {}) };
        const users = { ...((content["users"] as Record<string, number> | undefined) ?? {}) };
        for (const [user, level] of Object.entries(levels)) {
          if (level === 0) delete users[user];
          else users[user] = level;
        }
        await intent.sendStateEvent(room, "m.room.power_levels", "", { ...content, users });
      }),
    );
  }

  /**
   * A state change the homeserver (or the library's own power check, which throws a bare Error
   * before asking) refuses for lack of power is a MatrixRefusedError M_FORBIDDEN, so that the
   * core can tell it from a failure worth retrying (a group made of a room of the user's).
   */
  private async stateChange(run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      if (err instanceof Error && /Cannot ensure client has power level/.test(err.message)) {
        throw new MatrixRefusedError("M_FORBIDDEN", 403, "the bridge has no power for this", err);
      }
      throw refusal(err) ?? err;
    }
  }

  async roomMembers(as: MatrixUserId, room: RoomId): Promise<MatrixUserId[]> {
    const events = await this.retried("members", () =>
      this.intent(as).matrixClient.getRoomMembers(room, undefined, ["join", "invite"]),
    );
    return events.map((e) => e.membershipFor as MatrixUserId);
  }

  async kick(as: MatrixUserId, room: RoomId, user: MatrixUserId, reason?: string): Promise<void> {
    await this.retried("kick", () => this.intent(as).kick(room, user, reason));
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

  /**
   * Joins through the client API first, so that a failure keeps the homeserver's status and
   * errcode (the library's join reports every failure as a bare "Failed to join room", which
   * made a 5xx look final and a rescinded invite look like a bug); only a 403 falls back to the
   * library's join, which has the bot invite a ghost that was not invited.
   */
  async join(as: MatrixUserId, room: RoomId): Promise<void> {
    const intent = this.intent(as);
    try {
      await this.retried("join", async () => {
        await intent.ensureRegistered();
        try {
          await intent.matrixClient.joinRoom(room);
        } catch (err) {
          if ((err as { errcode?: unknown }).errcode !== "M_FORBIDDEN" || as === this.botUserId) {
            throw err;
          }
          await intent.join(room);
        }
      });
    } catch (err) {
      throw refusal(err) ?? err;
    }
  }

  async leave(as: MatrixUserId, room: RoomId): Promise<void> {
    await this.retried("leave", () => this.intent(as).leave(room));
  }

  async sendNotice(
    room: RoomId,
    text: string,
    replyTo?: EventId,
    idempotencyKey?: string,
  ): Promise<EventId> {
    // The body keeps the `code` marks as Markdown; formatted_body shows them as code.
    const body = {
      ...neutralToMatrix({ type: "text", text: inlineCode(text), notice: true }),
      body: text,
    };
    return this.send(
      this.botUserId,
      room,
      roomMessage(body, replyTo === undefined ? undefined : { eventId: replyTo }),
      idempotencyKey,
    );
  }

  async sendContent(
    as: MatrixUserId,
    room: RoomId,
    content: MessageContent,
    relation: { replyTo?: EventId; edits?: EventId } = {},
    idempotencyKey?: string,
  ): Promise<EventId> {
    let checked = content;
    let uploaded: UploadedMedia | undefined;
    if (content.type === "media") {
      const encryptor = this.encryptor;
      if (encryptor !== undefined && (await encryptor.isEncrypted(room))) {
        // Streamed through the cipher: only the head is read ahead, to check the type.
        const stream = limited(await content.media.open(), this.mediaMaxBytes);
        const { head, all } = await withHead(stream, TYPE_SNIFF_BYTES);
        const media = withCheckedType(content.media, head);
        checked = { ...content, media };
        uploaded = await this.uploadEncrypted(as, media, all);
      } else {
        // Streamed to the homeserver as well: only the head is read ahead, for the type check.
        const stream = limited(await content.media.open(), this.mediaMaxBytes);
        const { head, all } = await withHead(stream, TYPE_SNIFF_BYTES);
        const media = withCheckedType(content.media, head);
        checked = { ...content, media };
        uploaded = await this.upload(as, media, all);
      }
    }
    const body = neutralToMatrix(checked, uploaded);
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
    await this.stateChange(async () => {
      await this.retried("state", () => this.intent(as).setRoomName(room, name));
    });
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
   *
   * Every send goes through here, so this is where the content is fitted to the 64 KiB event
   * limit (fit.ts), and where a homeserver's final refusal (a 4xx other than 429, after the join
   * and the retries) becomes a MatrixRefusedError: permanent, never retried by a queue.
   */
  private async sendEvent(
    as: MatrixUserId,
    room: RoomId,
    type: string,
    unfitted: Record<string, unknown>,
    idempotencyKey?: string,
  ): Promise<EventId> {
    const encrypted = this.encryptor !== undefined && (await this.encryptor.isEncrypted(room));
    const content = fitContent(
      unfitted,
      encrypted ? ENCRYPTED_CONTENT_LIMIT_BYTES : CONTENT_LIMIT_BYTES,
    );
    const intent = this.intent(as);
    // Encrypted once, before the retries: a repeat carries the same ciphertext and txnId.
    const sent =
      this.encryptor === undefined
        ? { type, content }
        : await this.encryptor.encrypt(as, room, type, content);
    const txnId = transactionId(
      as,
      idempotencyKey === undefined ? undefined : `${room}\n${idempotencyKey}`,
    );
    const path =
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/` +
      `${encodeURIComponent(sent.type)}/${encodeURIComponent(txnId)}`;
    const put = async (): Promise<string> => {
      // The keep-alive pool of src/matrix/http.ts, not the library's `request` (issue #15).
      const answer = (await homeserverRequest(
        intent.matrixClient,
        as === this.botUserId ? undefined : as,
        "PUT",
        path,
        sent.content,
      )) as {
        event_id?: unknown;
      };
      if (typeof answer.event_id !== "string") {
        throw new BridgeError("matrix-send", "the homeserver answered a send without event_id");
      }
      return answer.event_id;
    };
    try {
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
    } catch (err) {
      throw refusal(err) ?? err;
    }
  }

  /**
   * Opens a Matrix attachment for the network (NeutralMedia.open of an inbound message). Portals
   * are unencrypted rooms, so an encrypted attachment is refused rather than sent undecrypted.
   */
  readonly openMedia: MatrixMediaOpener = async (source) => {
    if (source.encryption !== undefined) {
      if (this.encryptor === undefined) {
        throw new BridgeError("media-encrypted", "encrypted attachments cannot be bridged");
      }
      // Streamed and decrypted chunk by chunk, bounded like plaintext media.
      return limited(
        await this.encryptor.openEncrypted(source.mxc, source.encryption),
        this.mediaMaxBytes,
      );
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

  /**
   * Uploads the media (already bounded by mediaMaxBytes) into an encrypted room as an
   * encrypted attachment, streamed through the cipher.
   */
  private async uploadEncrypted(
    as: MatrixUserId,
    media: NeutralMedia,
    data: AsyncIterable<Uint8Array>,
  ): Promise<UploadedMedia> {
    const encryptor = this.encryptor;
    if (encryptor === undefined) throw new Error("uploadEncrypted without an encryptor");
    const name = media.fileName ?? defaultFileName(media);
    // Not retried: the stream is consumed by the first attempt (a retry of the whole send
    // opens the media again).
    const file = await encryptor.uploadEncrypted(as, data, name);
    const thumb = media.thumbnail;
    if (thumb === undefined) return { file };
    const thumbnailFile = await encryptor.uploadEncrypted(
      as,
      (async function* () {
        yield thumb.data;
      })(),
      "thumbnail",
    );
    return {
      file,
      thumbnail: {
        file: thumbnailFile,
        mimeType: thumb.mimeType,
        size: thumb.data.byteLength,
        width: thumb.width,
        height: thumb.height,
      },
    };
  }

  /**
   * Uploads the plaintext for mediaToMatrix, with the type checked against the bytes
   * (media-type.ts: active types never go with a type a client would render).
   */
  private async upload(
    as: MatrixUserId,
    media: NeutralMedia,
    first: AsyncIterable<Uint8Array>,
  ): Promise<UploadedMedia> {
    const intent = this.intent(as);
    await this.retried("register", () => intent.ensureRegistered());
    // Streamed through media.ts (the spec's /_matrix/media/v3/upload with Content-Length: the
    // media's announced size; a stream of another length fails the upload rather than storing a
    // truncated file). The first attempt sends the stream already opened for the type check; a
    // retry opens the media again (NeutralMedia.open may be called more than once). A repeated
    // upload at worst leaves an unused copy on the homeserver.
    let opened: AsyncIterable<Uint8Array> | undefined = first;
    const url = await withMatrixRetries(
      "upload",
      async () => {
        const source = opened ?? limited(await media.open(), this.mediaMaxBytes);
        opened = undefined;
        return this.media().upload({
          user: as,
          source,
          size: media.size,
          mimeType: media.mimeType,
          fileName: media.fileName ?? defaultFileName(media),
        });
      },
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

/** Passes `source` on and fails with media-too-large once more than `max` bytes went by. */
async function* limited(
  source: AsyncIterable<Uint8Array>,
  max: number,
): AsyncGenerator<Uint8Array> {
  let size = 0;
  for await (const chunk of source) {
    size += chunk.byteLength;
    if (size > max) throw new BridgeError("media-too-large", `media larger than ${max} bytes`);
    yield chunk;
  }
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

/** A homeserver's final refusal (4xx other than 429) as a MatrixRefusedError; else undefined. */
function refusal(err: unknown): MatrixRefusedError | undefined {
  if (err instanceof MatrixRefusedError || typeof err !== "object" || err === null)
    return undefined;
  const e = err as { statusCode?: unknown; errcode?: unknown; body?: unknown };
  const status = e.statusCode;
  if (typeof status !== "number" || status < 400 || status >= 500 || status === 429) {
    return undefined;
  }
  const body = jsonBody(e.body);
  const errcode =
    typeof e.errcode === "string"
      ? e.errcode
      : typeof body.errcode === "string"
        ? body.errcode
        : "M_UNKNOWN";
  return new MatrixRefusedError(errcode, status, "the homeserver refused the event", err);
}

function jsonBody(body: unknown): { errcode?: unknown } {
  if (body instanceof Uint8Array) {
    try {
      return JSON.parse(Buffer.from(body).toString("utf8")) as { errcode?: unknown };
    } catch {
      return {};
    }
  }
  return typeof body === "object" && body !== null ? (body as { errcode?: unknown }) : {};
}

/** What is read ahead of a stream to check a media type against its bytes (media-type.ts). */
const TYPE_SNIFF_BYTES = 512;

/**
 * The first `bytes` of a stream (or all of it, if shorter), and the whole stream again: the head
 * is read ahead once and replayed, the rest is passed through as it comes.
 */
async function withHead(
  stream: AsyncIterable<Uint8Array>,
  bytes: number,
): Promise<{ head: Uint8Array; all: AsyncIterable<Uint8Array> }> {
  const iterator = stream[Symbol.asyncIterator]();
  const read: Uint8Array[] = [];
  let size = 0;
  let done = false;
  while (size < bytes) {
    const next = await iterator.next();
    if (next.done === true) {
      done = true;
      break;
    }
    read.push(next.value);
    size += next.value.byteLength;
  }
  const head = Buffer.concat(read).subarray(0, bytes);
  async function* all(): AsyncIterable<Uint8Array> {
    yield* read;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  return { head, all: all() };
}
