import type { MediaKind, MessageContent, NeutralMedia, NeutralText } from "../../core/network.js";
import { parseGeoUri } from "./geo.js";
import type {
  MatrixMediaOpener,
  MatrixMediaRef,
  MatrixMediaSource,
  MatrixThumbnailSource,
} from "./types.js";
import {
  field,
  isInvalid,
  isMxcUri,
  isRecord,
  optInteger,
  optRecord,
  optString,
  type JsonRecord,
} from "./validate.js";
import { waveformFromMatrix, waveformIsUsable } from "./waveform.js";

/** Either the converted content or why it cannot be bridged. */
export type BodyResult =
  { ok: true; content: MessageContent; media?: MatrixMediaRef } | { ok: false; reason: string };

export const reject = (reason: string): BodyResult => ({ ok: false, reason });

const KINDS: Readonly<Record<string, MediaKind>> = {
  "m.image": "image",
  "m.video": "video",
  "m.audio": "audio",
  "m.file": "document",
  "m.sticker": "image",
};

const MAX_SIZE = Number.MAX_SAFE_INTEGER;
const MAX_PIXELS = 1_000_000;
/** About 24 days in milliseconds: longer durations are nonsense, not media. */
const MAX_DURATION_MS = 2 ** 31 - 1;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** An encrypted attachment (`file`), checked field by field; undefined when unusable. */
function encryptedSource(v: unknown): MatrixMediaSource | undefined {
  if (!isRecord(v)) return undefined;
  const key = field(v, "key");
  const hashes = field(v, "hashes");
  if (!isRecord(key) || !isRecord(hashes)) return undefined;
  const url = field(v, "url");
  const k = field(key, "k");
  const iv = field(v, "iv");
  const sha256 = field(hashes, "sha256");
  const valid =
    isMxcUri(url) &&
    field(v, "v") === "v2" &&
    field(key, "alg") === "A256CTR" &&
    [k, iv, sha256].every((s) => typeof s === "string" && s.length <= 128 && BASE64.test(s));
  if (!valid) return undefined;
  return { mxc: url, encryption: { key: k as string, iv: iv as string, sha256: sha256 as string } };
}

/** `url` or `file`, whichever the room kind put there. */
function mediaSource(
  obj: JsonRecord,
  urlKey: string,
  fileKey: string,
): MatrixMediaSource | undefined {
  const file = field(obj, fileKey);
  if (file !== undefined) return encryptedSource(file);
  const url = field(obj, urlKey);
  return isMxcUri(url) ? { mxc: url } : undefined;
}

/** A thumbnail is decoration: anything malformed about it just means no thumbnail. */
function thumbnailSource(info: JsonRecord): MatrixThumbnailSource | undefined {
  const source = mediaSource(info, "thumbnail_url", "thumbnail_file");
  if (source === undefined) return undefined;
  const thumb: MatrixThumbnailSource = { ...source };
  const tinfo = optRecord(info, "thumbnail_info");
  if (tinfo !== undefined && !isInvalid(tinfo)) {
    const mimeType = optString(tinfo, "mimetype", 255);
    const width = optInteger(tinfo, "w", 1, MAX_PIXELS);
    const height = optInteger(tinfo, "h", 1, MAX_PIXELS);
    if (typeof mimeType === "string") thumb.mimeType = mimeType;
    if (typeof width === "number") thumb.width = width;
    if (typeof height === "number") thumb.height = height;
  }
  return thumb;
}

/**
 * m.image, m.video, m.audio, m.file and m.sticker. The caption follows the spec's media-caption
 * rule: `body` is a caption only when `filename` is present and differs from it; otherwise `body`
 * is the file name. Core fields that are present but malformed reject the whole message.
 */
export function mediaToNeutral(
  msgtype: string,
  content: JsonRecord,
  body: string,
  caption: (() => NeutralText) | undefined,
  open: MatrixMediaOpener,
): BodyResult {
  const kind = KINDS[msgtype];
  if (kind === undefined) return reject(`msgtype ${msgtype} is not media`);
  const source = mediaSource(content, "url", "file");
  if (source === undefined) return reject(`${msgtype} has no valid url or encrypted file`);
  const info = optRecord(content, "info") ?? {};
  if (isInvalid(info)) return reject(`${msgtype} info is not an object`);
  const mimeType = optString(info, "mimetype", 255);
  const size = optInteger(info, "size", 0, MAX_SIZE);
  const width = optInteger(info, "w", 0, MAX_PIXELS);
  const height = optInteger(info, "h", 0, MAX_PIXELS);
  const durationMs = optInteger(info, "duration", 0, MAX_DURATION_MS);
  const filename = optString(content, "filename", 1024);
  for (const [name, value] of Object.entries({
    mimeType,
    size,
    width,
    height,
    durationMs,
    filename,
  })) {
    if (isInvalid(value)) return reject(`${msgtype} has a malformed ${name}`);
  }

  const media: NeutralMedia = {
    kind,
    // Unknown sizes and types are learned by the caller when it downloads the bytes.
    mimeType: (mimeType as string | undefined) ?? "application/octet-stream",
    size: (size as number | undefined) ?? 0,
    open: () => open(source),
  };
  const fileName = (filename as string | undefined) ?? (msgtype === "m.sticker" ? undefined : body);
  if (fileName !== undefined && fileName !== "") media.fileName = fileName;
  if (typeof width === "number" && width > 0) media.width = width;
  if (typeof height === "number" && height > 0) media.height = height;

  let duration = durationMs as number | undefined;
  if (kind === "audio") {
    const audio = optRecord(content, "org.matrix.msc1767.audio");
    if (audio !== undefined && !isInvalid(audio)) {
      const extDuration = optInteger(audio, "duration", 0, MAX_DURATION_MS);
      if (typeof extDuration === "number") duration ??= extDuration;
      const waveform = waveformFromMatrix(field(audio, "waveform"));
      if (waveformIsUsable(waveform)) media.waveform = waveform;
    }
    if (isRecord(field(content, "org.matrix.msc3245.voice"))) media.voice = true;
  }
  if (duration !== undefined && (kind === "audio" || kind === "video")) {
    media.durationSeconds = duration === 0 ? 0 : Math.max(1, Math.round(duration / 1000));
  }

  const ref: MatrixMediaRef = { source };
  const thumbnail = thumbnailSource(info);
  if (thumbnail !== undefined) ref.thumbnail = thumbnail;

  const isCaption = typeof filename === "string" && filename !== body && msgtype !== "m.sticker";
  const captionText = isCaption && caption !== undefined ? caption() : undefined;
  const result: MessageContent =
    captionText !== undefined && captionText.text !== ""
      ? { type: "media", media, caption: captionText }
      : { type: "media", media };
  return { ok: true, content: result, media: ref };
}

/** m.location: `geo_uri`, or MSC3488's `uri` when a client sent only the extensible form. */
export function locationToNeutral(content: JsonRecord): BodyResult {
  const extensible = optRecord(content, "org.matrix.msc3488.location");
  const ext = extensible === undefined || isInvalid(extensible) ? undefined : extensible;
  const uri = field(content, "geo_uri") ?? (ext === undefined ? undefined : field(ext, "uri"));
  const point = parseGeoUri(uri);
  if (point === undefined) return reject("m.location has no valid geo URI");
  const location: Extract<MessageContent, { type: "location" }> = { type: "location", ...point };
  const description = ext === undefined ? undefined : optString(ext, "description", 256);
  if (typeof description === "string" && description.trim() !== "") {
    location.name = description.trim();
  }
  return { ok: true, content: location };
}
