import type { MessageContent } from "../../core/network.js";
import type { EventId } from "../../util/ids.js";

/**
 * Minimal Matrix shapes this module reads and writes. Inbound events are `unknown` until checked
 * (content is user input); outbound contents are typed precisely so the compiler checks what the
 * ghost sends.
 */

/** What the caller hands in for a Matrix room event: only these fields are read. */
export interface MatrixEventInput {
  type: string;
  content: unknown;
  /** Before room version 11 `redacts` sits at the top level of m.room.redaction. */
  redacts?: unknown;
}

/** The JSON Web Key of an encrypted attachment (client-server spec, "Sending encrypted attachments"). */
export interface EncryptedFile {
  url: string;
  key: {
    kty: "oct";
    key_ops: readonly string[];
    alg: "A256CTR";
    k: string;
    ext: true;
  };
  iv: string;
  hashes: Readonly<Record<string, string>> & { sha256: string };
  v: "v2";
}

/**
 * Where a Matrix attachment lives. Bytes are never fetched here: the caller downloads `mxc`
 * (and decrypts with `encryption` in an encrypted room) when the network asks to open the media.
 */
export interface MatrixMediaSource {
  mxc: string;
  encryption?: { key: string; iv: string; sha256: string };
}

/** A thumbnail referenced by an inbound media event, for the caller to fetch if it wants one. */
export interface MatrixThumbnailSource extends MatrixMediaSource {
  mimeType?: string;
  width?: number;
  height?: number;
}

export interface MatrixMediaRef {
  source: MatrixMediaSource;
  thumbnail?: MatrixThumbnailSource;
}

/**
 * Supplies `NeutralMedia.open()` for an inbound attachment. Called lazily by the network side,
 * possibly more than once; may reject (homeserver unreachable, media gone).
 */
export type MatrixMediaOpener = (source: MatrixMediaSource) => Promise<AsyncIterable<Uint8Array>>;

/** The result of converting one inbound Matrix event. Never thrown: malformed input is `unsupported`. */
export type MatrixInbound =
  | { kind: "message"; content: MessageContent; replyTo?: EventId; media?: MatrixMediaRef }
  | { kind: "edit"; target: EventId; content: MessageContent; media?: MatrixMediaRef }
  | { kind: "reaction"; target: EventId; key: string }
  | { kind: "redaction"; target: EventId }
  | { kind: "unsupported"; reason: string };

export interface Mentions {
  user_ids?: readonly string[];
  room?: boolean;
}

interface ReplyRelation {
  "m.in_reply_to": { event_id: string };
}

interface FormattedFields {
  format?: "org.matrix.custom.html";
  formatted_body?: string;
}

export interface TextContent extends FormattedFields {
  msgtype: "m.text" | "m.notice" | "m.emote";
  body: string;
}

interface ThumbnailInfo {
  mimetype: string;
  size?: number;
  w: number;
  h: number;
}

export interface MediaInfo {
  mimetype: string;
  size?: number;
  w?: number;
  h?: number;
  /** Milliseconds. */
  duration?: number;
  thumbnail_url?: string;
  thumbnail_file?: EncryptedFile;
  thumbnail_info?: ThumbnailInfo;
}

export interface MediaContent extends FormattedFields {
  msgtype: "m.image" | "m.video" | "m.audio" | "m.file";
  /** The caption when `filename` is present and differs, else the file name (media captions). */
  body: string;
  filename?: string;
  url?: string;
  file?: EncryptedFile;
  info: MediaInfo;
  /** MSC3245 voice messages: present (empty) marks the audio as a voice message. */
  "org.matrix.msc3245.voice"?: Record<string, never>;
  /** MSC1767 audio: duration in milliseconds, waveform amplitudes 0-1024. */
  "org.matrix.msc1767.audio"?: { duration: number; waveform?: readonly number[] };
}

export interface LocationContent {
  msgtype: "m.location";
  body: string;
  geo_uri: string;
  /** MSC3488 extensible location, which current Element renders as a map pin. */
  "org.matrix.msc3488.location": { uri: string; description?: string };
  "org.matrix.msc3488.asset": { type: "m.pin" };
}

/** A message body the ghost sends: one of the msgtypes above. */
export type MatrixMessageContent = TextContent | MediaContent | LocationContent;

/** The full content of an m.room.message event as sent, with relations and mentions. */
export type RoomMessageContent = MatrixMessageContent & {
  "m.mentions": Mentions;
  "m.relates_to"?: ReplyRelation | { rel_type: "m.replace"; event_id: string };
  "m.new_content"?: MatrixMessageContent & { "m.mentions": Mentions };
};

export interface ReactionContent {
  "m.relates_to": { rel_type: "m.annotation"; event_id: string; key: string };
}
