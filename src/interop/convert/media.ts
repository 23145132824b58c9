import type { MediaKind, NeutralMedia } from "../../core/network.js";
import { sanitizeFilename, type MediaContent } from "../codec/content-media.js";
import { ConvertError } from "./errors.js";
import { wireText } from "./text.js";
import { fileNameFor } from "../../util/media-files.js";

/**
 * A received `<media>` (§13.2) as the media layer needs it to fetch and verify the blob (§14.4:
 * url, kind, mediaKey, size, sha256, encSha256; the same fields as the media layer's
 * `MediaReference`) and as the core needs it to show the result. Values are the sender's claims
 * until the media layer has verified the plaintext.
 */
export interface InboundMedia {
  readonly kind: MediaKind;
  readonly url: string;
  readonly mediaKey: Uint8Array;
  readonly sha256: Uint8Array;
  readonly encSha256: Uint8Array;
  /** Plaintext size in bytes. */
  readonly size: number;
  /** Syntactically checked MIME type; a claim, never a reason alone to render inline. */
  readonly mimeType: string;
  /** Sanitised per §13.2 (no path components, no Cc/Cf characters); always set for documents. */
  readonly fileName: string | undefined;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly durationSeconds: number | undefined;
  readonly voice: boolean;
  /** 64 amplitudes 0-100, voice messages only. */
  readonly waveform: readonly number[] | undefined;
  /** Only a JPEG (checked by its signature) whose dimensions are known. */
  readonly thumbnail: InboundThumbnail | undefined;
}

interface InboundThumbnail {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly mimeType: "image/jpeg";
}

/** Gives the plaintext of a received media item; provided by the media layer (download+verify). */
export type MediaOpener = (media: InboundMedia) => NeutralMedia["open"];

/** What the media layer's upload returns (its `UploadedMedia` has these fields and more). */
export interface UploadedMediaRef {
  readonly kind: MediaKind;
  /** The slot's GET URL. */
  readonly url: string;
  readonly mediaKey: Uint8Array;
  /** Plaintext size as encrypted. */
  readonly size: number;
  readonly sha256: Uint8Array;
  readonly encSha256: Uint8Array;
}

const OCTET_STREAM = "application/octet-stream";
const TOKEN = "[A-Za-z0-9!#$&^_.+-]+";
const MIME = new RegExp(`^${TOKEN}/${TOKEN}(?:\\s*;\\s*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\r\\n]*"))*$`);

/** A MIME type that is safe to pass on (type/subtype with simple parameters), else octet-stream. */
export function cleanMimeType(claim: string | undefined): string {
  const t = claim?.trim() ?? "";
  return t.length <= 255 && MIME.test(t) ? t.toLowerCase() : OCTET_STREAM;
}

export function inboundMedia(m: MediaContent): InboundMedia {
  const fileName =
    m.filename !== undefined || m.kind === "document"
      ? sanitizeFilename(m.filename ?? "")
      : undefined;
  return {
    kind: m.kind,
    url: m.url,
    mediaKey: m.key,
    sha256: m.sha256,
    encSha256: m.encSha256,
    size: m.size,
    mimeType: cleanMimeType(m.type),
    fileName,
    width: m.width,
    height: m.height,
    durationSeconds: m.duration,
    voice: m.kind === "audio" && m.voice,
    waveform: m.kind === "audio" && m.voice && m.waveform ? [...m.waveform] : undefined,
    thumbnail: inboundThumbnail(m),
  };
}

function inboundThumbnail(m: MediaContent): InboundThumbnail | undefined {
  if (m.thumbnail === undefined || !isJpeg(m.thumbnail.jpeg)) return undefined;
  const measured = jpegSize(m.thumbnail.jpeg);
  const width = m.thumbnail.width ?? measured?.width;
  const height = m.thumbnail.height ?? measured?.height;
  if (width === undefined || height === undefined) return undefined;
  return { data: m.thumbnail.jpeg, width, height, mimeType: "image/jpeg" };
}

export function neutralMedia(d: InboundMedia, open: NeutralMedia["open"]): NeutralMedia {
  const media: NeutralMedia = { kind: d.kind, mimeType: d.mimeType, size: d.size, open };
  if (d.fileName !== undefined) media.fileName = d.fileName;
  if (d.width !== undefined) media.width = d.width;
  if (d.height !== undefined) media.height = d.height;
  if (d.durationSeconds !== undefined) media.durationSeconds = d.durationSeconds;
  if (d.voice) media.voice = true;
  if (d.waveform !== undefined) media.waveform = d.waveform;
  if (d.thumbnail !== undefined) media.thumbnail = { ...d.thumbnail };
  return media;
}

const isJpeg = (b: Uint8Array): boolean => b.length > 3 && b[0] === 0xff && b[1] === 0xd8;

/** Dimensions from a JPEG's start-of-frame segment, or undefined if there is none. */
export function jpegSize(b: Uint8Array): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 8 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1] as number;
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const isFrame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (isFrame) {
      const height = ((b[i + 5] as number) << 8) | (b[i + 6] as number);
      const width = ((b[i + 7] as number) << 8) | (b[i + 8] as number);
      return width > 0 && height > 0 ? { width, height } : undefined;
    }
    i += 2 + (((b[i + 2] as number) << 8) | (b[i + 3] as number));
  }
  return undefined;
}

const dimension = (v: number | undefined): number | undefined =>
  v !== undefined && Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined;

/**
 * The kind to upload a neutral media item as. §13.2 makes width and height required for images
 * and video and a duration required for audio and video; an item lacking them would reach the
 * receiver as an unknown element, so it travels as a document. Decide this before encrypting: the
 * kind selects the key derivation (§14.3).
 */
export function outboundMediaKind(media: NeutralMedia): MediaKind {
  const sized = dimension(media.width) !== undefined && dimension(media.height) !== undefined;
  const timed = dimension(media.durationSeconds) !== undefined;
  switch (media.kind) {
    case "image":
      return sized ? "image" : "document";
    case "video":
      return sized && timed ? "video" : "document";
    case "audio":
      return timed ? "audio" : "document";
    case "document":
      return "document";
  }
}

function defaultFileName(kind: MediaKind, mimeType: string): string {
  return fileNameFor(kind, mimeType);
}

/** The `<media>` element for an uploaded item (§13.2); `uploaded.kind` must be `outboundMediaKind`. */
export function mediaElement(
  media: NeutralMedia,
  uploaded: UploadedMediaRef,
  maxThumbnailBytes: number,
): MediaContent {
  const kind = outboundMediaKind(media);
  if (uploaded.kind !== kind) {
    throw new ConvertError(
      "unsupported-content",
      `media was uploaded as ${uploaded.kind} but must be sent as ${kind}`,
    );
  }
  const mimeType = cleanMimeType(media.mimeType);
  const visual = kind === "image" || kind === "video";
  const timed = kind === "audio" || kind === "video";
  const voice = kind === "audio" && media.voice === true;
  const name = media.fileName === undefined ? undefined : wireText(media.fileName);
  const thumb = media.thumbnail;
  return {
    kind,
    url: uploaded.url,
    type: mimeType,
    size: uploaded.size,
    sha256: uploaded.sha256,
    encSha256: uploaded.encSha256,
    key: uploaded.mediaKey,
    width: visual ? dimension(media.width) : undefined,
    height: visual ? dimension(media.height) : undefined,
    duration: timed ? dimension(media.durationSeconds) : undefined,
    voice,
    filename:
      kind === "document" || name !== undefined
        ? sanitizeFilename(name ?? defaultFileName(media.kind, mimeType))
        : undefined,
    thumbnail:
      thumb !== undefined &&
      kind !== "audio" &&
      isJpeg(thumb.data) &&
      thumb.data.length <= maxThumbnailBytes
        ? { width: dimension(thumb.width), height: dimension(thumb.height), jpeg: thumb.data }
        : undefined,
    waveform: voice ? waveformBytes(media.waveform) : undefined,
  };
}

/** 64 amplitudes 0-100 (§13.2), resampled and clamped from whatever the neutral model holds. */
function waveformBytes(values: readonly number[] | undefined): Uint8Array | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const out = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    const v = values[Math.floor((i * values.length) / 64)] ?? 0;
    out[i] = Number.isFinite(v) ? Math.min(100, Math.max(0, Math.round(v))) : 0;
  }
  return out;
}
