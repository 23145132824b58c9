import { hkdfSync, randomBytes } from "node:crypto";
import { MediaIntegrityError } from "./errors.js";
import { MEDIA_HKDF_INFO, type MediaKind } from "./kinds.js";

export const MEDIA_KEY_LENGTH = 32;
const EXPANDED_LENGTH = 112;
const ZERO_SALT = Buffer.alloc(32);

/** The four parts of an expanded mediaKey (§14.3). `refKey` is reserved and unused in v0.2. */
export interface MediaKeys {
  readonly iv: Buffer;
  readonly cipherKey: Buffer;
  readonly macKey: Buffer;
  readonly refKey: Buffer;
}

/** A fresh random mediaKey; §14.3 requires a new one for every upload. */
export const generateMediaKey = (): Buffer => randomBytes(MEDIA_KEY_LENGTH);

/** HKDF-SHA256(IKM = mediaKey, salt = 32 zero bytes, info = INFO(kind), L = 112), split per §14.3. */
export function expandMediaKey(mediaKey: Uint8Array, kind: MediaKind): MediaKeys {
  if (mediaKey.length !== MEDIA_KEY_LENGTH) {
    throw new MediaIntegrityError(
      "key",
      `mediaKey must be ${MEDIA_KEY_LENGTH} bytes, got ${mediaKey.length}`,
    );
  }
  const expanded = Buffer.from(
    hkdfSync(
      "sha256",
      mediaKey,
      ZERO_SALT,
      Buffer.from(MEDIA_HKDF_INFO[kind], "ascii"),
      EXPANDED_LENGTH,
    ),
  );
  return {
    iv: expanded.subarray(0, 16),
    cipherKey: expanded.subarray(16, 48),
    macKey: expanded.subarray(48, 80),
    refKey: expanded.subarray(80, 112),
  };
}
