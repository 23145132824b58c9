import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  timingSafeEqual,
} from "node:crypto";
import {
  assertBlobValid,
  assertExpectationShape,
  assertPlaintextValid,
  type EncryptedMediaInfo,
  type MediaExpectation,
} from "./cipher.js";
import { MediaIntegrityError } from "./errors.js";
import { expandMediaKey, generateMediaKey } from "./keys.js";
import { blobLengthFor, MAC_LENGTH, type MediaKind } from "./kinds.js";

/*
 * In-memory variants for small data (tests, vectors, previews). Media of real size goes through
 * the streaming functions of cipher.ts and decrypt.ts.
 */

interface EncryptedMediaBuffer extends EncryptedMediaInfo {
  readonly blob: Buffer;
}

export function encryptMediaBuffer(
  plaintext: Uint8Array,
  kind: MediaKind,
  mediaKey: Uint8Array = generateMediaKey(),
): EncryptedMediaBuffer {
  const keys = expandMediaKey(mediaKey, kind);
  const cipher = createCipheriv("aes-256-cbc", keys.cipherKey, keys.iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const mac = createHmac("sha256", keys.macKey)
    .update(keys.iv)
    .update(ciphertext)
    .digest()
    .subarray(0, MAC_LENGTH);
  const blob = Buffer.concat([ciphertext, mac]);
  return {
    kind,
    mediaKey: Buffer.from(mediaKey),
    size: plaintext.length,
    blobLength: blob.length,
    sha256: sha256(plaintext),
    encSha256: sha256(blob),
    blob,
  };
}

/** Applies every check of §14.4 in order and returns the plaintext only if all passed. */
export function decryptMediaBuffer(blob: Uint8Array, expected: MediaExpectation): Buffer {
  assertExpectationShape(expected);
  if (blob.length > blobLengthFor(expected.size)) {
    throw new MediaIntegrityError(
      "length",
      `blob of ${blob.length} bytes is longer than its size allows`,
    );
  }
  const keys = expandMediaKey(expected.mediaKey, expected.kind);
  const macStart = Math.max(0, blob.length - MAC_LENGTH);
  const ciphertext = blob.subarray(0, macStart);
  const mac = createHmac("sha256", keys.macKey)
    .update(keys.iv)
    .update(ciphertext)
    .digest()
    .subarray(0, MAC_LENGTH);
  const received = blob.subarray(macStart);
  assertBlobValid(
    {
      length: blob.length,
      encSha256: sha256(blob),
      macValid: received.length === MAC_LENGTH && timingSafeEqual(mac, received),
    },
    expected,
  );
  const decipher = createDecipheriv("aes-256-cbc", keys.cipherKey, keys.iv);
  let plaintext: Buffer;
  try {
    plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (err) {
    throw new MediaIntegrityError("padding", "invalid PKCS#7 padding", err);
  }
  assertPlaintextValid({ size: plaintext.length, sha256: sha256(plaintext) }, expected);
  return plaintext;
}

const sha256 = (data: Uint8Array): Buffer => createHash("sha256").update(data).digest();
