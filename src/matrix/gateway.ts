import type { Bridge, Intent } from "matrix-appservice-bridge";
import type { MatrixApi } from "../core/matrix-api.js";
import type { MessageContent, NeutralMedia, NeutralText, TextSpan } from "../core/network.js";
import { BridgeError } from "../util/errors.js";
import { eventId, roomId, type EventId, type MatrixUserId, type RoomId } from "../util/ids.js";
import {
  defaultFileName,
  editContent,
  neutralToMatrix,
  reactionContent,
  roomMessage,
  type MatrixMediaOpener,
  type UploadedMedia,
} from "./convert/index.js";

/**
 * The core's MatrixApi on matrix-appservice-bridge intents: the bot and every ghost act through
 * their own intent, which registers the user on first use.
 */
export class IntentMatrixApi implements MatrixApi {
  readonly botUserId: MatrixUserId;

  constructor(
    private readonly bridge: Bridge,
    private readonly domain: string,
    private readonly mediaMaxBytes: number,
  ) {
    this.botUserId = bridge.getBot().getUserId() as MatrixUserId;
  }

  private intent(user: MatrixUserId): Intent {
    return this.bridge.getIntent(user);
  }

  async ensureGhost(ghost: MatrixUserId, displayName: string): Promise<void> {
    const intent = this.intent(ghost);
    await intent.ensureRegistered();
    await intent.setDisplayName(displayName);
  }

  async createPortalRoom(options: {
    creator: MatrixUserId;
    user: MatrixUserId;
    name?: string;
    topic?: string;
  }): Promise<RoomId> {
    const { room_id: room } = await this.intent(options.creator).createRoom({
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
    });
    return roomId(room);
  }

  async createSpace(options: { user: MatrixUserId; name: string; topic: string }): Promise<RoomId> {
    const { room_id: room } = await this.intent(this.botUserId).createRoom({
      createAsClient: true,
      options: {
        preset: "private_chat",
        name: options.name,
        topic: options.topic,
        invite: [options.user],
        creation_content: { type: "m.space" },
        power_level_content_override: { events_default: 100, users: { [this.botUserId]: 100 } },
      },
    });
    return roomId(room);
  }

  async addToSpace(space: RoomId, room: RoomId, roomCreator: MatrixUserId): Promise<void> {
    const via = [this.domain];
    await this.intent(this.botUserId).sendStateEvent(space, "m.space.child", room, { via });
    await this.intent(roomCreator).sendStateEvent(room, "m.space.parent", space, {
      via,
      canonical: true,
    });
  }

  async invite(as: MatrixUserId, room: RoomId, user: MatrixUserId): Promise<void> {
    await this.intent(as).invite(room, user);
  }

  async join(as: MatrixUserId, room: RoomId): Promise<void> {
    await this.intent(as).join(room);
  }

  async leave(as: MatrixUserId, room: RoomId): Promise<void> {
    await this.intent(as).leave(room);
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
  ): Promise<EventId> {
    const uploaded = content.type === "media" ? await this.upload(as, content.media) : undefined;
    const body = neutralToMatrix(content, uploaded);
    if (relation.edits !== undefined) return this.send(as, room, editContent(relation.edits, body));
    return this.send(
      as,
      room,
      roomMessage(body, relation.replyTo === undefined ? undefined : { eventId: relation.replyTo }),
    );
  }

  async sendReaction(
    as: MatrixUserId,
    room: RoomId,
    target: EventId,
    key: string,
  ): Promise<EventId> {
    const { event_id: id } = await this.intent(as).sendEvent(
      room,
      "m.reaction",
      reactionContent(target, key) as unknown as Record<string, unknown>,
    );
    return eventId(id);
  }

  async redact(as: MatrixUserId, room: RoomId, event: EventId): Promise<void> {
    await this.intent(as).matrixClient.redactEvent(room, event);
  }

  async setRoomName(as: MatrixUserId, room: RoomId, name: string): Promise<void> {
    await this.intent(as).setRoomName(room, name);
  }

  async setRoomTopic(as: MatrixUserId, room: RoomId, topic: string): Promise<void> {
    await this.intent(as).setRoomTopic(room, topic);
  }

  async setRoomDisplayName(ghost: MatrixUserId, room: RoomId, displayName: string): Promise<void> {
    await this.intent(ghost).setRoomUserProfile(room, { displayname: displayName });
  }

  async sendTyping(as: MatrixUserId, room: RoomId, typing: boolean): Promise<void> {
    await this.intent(as).sendTyping(room, typing);
  }

  async sendReadReceipt(as: MatrixUserId, room: RoomId, event: EventId): Promise<void> {
    await this.intent(as).sendReadReceipt(room, event);
  }

  private async send(as: MatrixUserId, room: RoomId, body: object): Promise<EventId> {
    const { event_id: id } = await this.intent(as).sendMessage(
      room,
      body as Record<string, unknown>,
    );
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
    const { data } = await this.intent(this.botUserId).matrixClient.downloadContent(source.mxc);
    if (data.byteLength > this.mediaMaxBytes) {
      throw new BridgeError("media-too-large", `media larger than ${this.mediaMaxBytes} bytes`);
    }
    return (async function* () {
      yield new Uint8Array(data);
    })();
  };

  /** Uploads the plaintext (bounded by interop.media_max_bytes) for mediaToMatrix. */
  private async upload(as: MatrixUserId, media: NeutralMedia): Promise<UploadedMedia> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of await media.open()) {
      size += chunk.byteLength;
      if (size > this.mediaMaxBytes) {
        throw new BridgeError("media-too-large", `media larger than ${this.mediaMaxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    const intent = this.intent(as);
    const url = await intent.uploadContent(Buffer.concat(chunks), {
      name: media.fileName ?? defaultFileName(media),
      type: media.mimeType,
    });
    const thumb = media.thumbnail;
    if (thumb === undefined) return { url };
    // The network's preview (a JPEG in WhatsApp's case) becomes the event's thumbnail_url.
    const thumbnailUrl = await intent.uploadContent(Buffer.from(thumb.data), {
      name: "thumbnail",
      type: thumb.mimeType,
    });
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
