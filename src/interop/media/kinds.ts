/**
 * Media kinds and the numbers attached to them (PROTOCOL.md §8.3, §13.2, §14.3). Limits are sizes
 * of the encrypted blob, never of the plaintext.
 */
const MEDIA_KINDS = ["image", "video", "audio", "document"] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

export const isMediaKind = (value: string): value is MediaKind =>
  (MEDIA_KINDS as readonly string[]).includes(value);

/** HKDF `info` per kind (§14.3); `audio` covers voice messages too. */
export const MEDIA_HKDF_INFO: Readonly<Record<MediaKind, string>> = {
  image: "Interop Image Keys",
  video: "Interop Video Keys",
  audio: "Interop Audio Keys",
  document: "Interop Document Keys",
};

/** Maximum encrypted blob size per kind, in bytes. */
export type MediaLimits = Readonly<Record<MediaKind, number>>;

/** Name of the hello limit that carries each kind's maximum (§8.3). */
const MEDIA_LIMIT_NAMES: Readonly<Record<MediaKind, string>> = {
  image: "max-image-bytes",
  video: "max-video-bytes",
  audio: "max-audio-bytes",
  document: "max-document-bytes",
};

export const DEFAULT_MEDIA_LIMITS: MediaLimits = {
  image: 16_777_216,
  video: 16_777_216,
  audio: 16_777_216,
  document: 104_857_600,
};

/** Blob lifetime after upload, minimum slot validity and slot quota defaults (§8.3). */
export const DEFAULT_MEDIA_RETENTION_SECONDS = 2_592_000;
export const DEFAULT_MIN_SLOT_SECONDS = 300;
export const DEFAULT_UPLOADS_PER_HOUR = 100;

/** Bytes of the truncated HMAC appended to the ciphertext (§14.3). */
export const MAC_LENGTH = 10;
const AES_BLOCK = 16;
/** The shortest well-formed blob: one padding block and the MAC (§14.4). */
const MIN_BLOB_LENGTH = AES_BLOCK + MAC_LENGTH;

/** Encrypted blob length for a plaintext of `size` bytes: 16·(floor(size/16)+1) + 10 (§14.3). */
export function blobLengthFor(size: number): number {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`media size must be a non-negative integer, got ${String(size)}`);
  }
  return AES_BLOCK * (Math.floor(size / AES_BLOCK) + 1) + MAC_LENGTH;
}

/** Whether a blob length satisfies the framing rules of §14.4 (at least 26, whole blocks). */
export function isWellFormedBlobLength(length: number): boolean {
  return length >= MIN_BLOB_LENGTH && (length - MAC_LENGTH) % AES_BLOCK === 0;
}

/**
 * The per-kind limits in effect, from the limits announced in the latest hello (by name, §8.3);
 * a limit not announced takes its default.
 */
export function mediaLimitsFrom(
  announced: ReadonlyMap<string, number> | Readonly<Record<string, number | undefined>>,
): MediaLimits {
  const get = (name: string): number | undefined =>
    announced instanceof Map
      ? announced.get(name)
      : (announced as Record<string, number | undefined>)[name];
  const pick = (kind: MediaKind): number =>
    get(MEDIA_LIMIT_NAMES[kind]) ?? DEFAULT_MEDIA_LIMITS[kind];
  return {
    image: pick("image"),
    video: pick("video"),
    audio: pick("audio"),
    document: pick("document"),
  };
}
