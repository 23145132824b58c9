import {
  createCipheriv,
  createDecipheriv,
  createHash,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import type { EncryptedFile } from "../convert/types.js";
import { BridgeError } from "../../util/errors.js";

/**
 * Encrypted attachments (Matrix spec "Sending encrypted attachments", v2): AES-256-CTR with a
 * random key and a random 64-bit IV prefix whose counter half starts at zero, and the SHA-256 of
 * the ciphertext. Both directions stream: a chunk is transformed and passed on as it arrives, so
 * a 100 MB file is never held whole in memory.
 */

/** The `file` object without `url`: known once the ciphertext has been streamed out. */
type EncryptedFileInfo = Omit<EncryptedFile, "url">;

interface EncryptingStream {
  /** The ciphertext, chunk by chunk, as `source` yields the plaintext. */
  readonly chunks: AsyncIterable<Uint8Array>;
  /** The key, IV and hash; call after `chunks` was consumed to the end. */
  info(): EncryptedFileInfo;
}

export function encryptAttachment(source: AsyncIterable<Uint8Array>): EncryptingStream {
  const key = randomBytes(32);
  const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
  const cipher = createCipheriv("aes-256-ctr", key, iv);
  const hash = createHash("sha256");
  let done = false;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      const out = cipher.update(chunk);
      hash.update(out);
      if (out.byteLength > 0) yield out;
    }
    const last = cipher.final();
    if (last.byteLength > 0) {
      hash.update(last);
      yield last;
    }
    done = true;
  }
  return {
    chunks: chunks(),
    info() {
      if (!done) throw new BridgeError("media-encrypt", "the attachment was not fully encrypted");
      return {
        key: {
          kty: "oct",
          key_ops: ["encrypt", "decrypt"],
          alg: "A256CTR",
          k: key.toString("base64url"),
          ext: true,
        },
        iv: unpadded(iv.toString("base64")),
        hashes: { sha256: unpadded(hash.digest("base64")) },
        v: "v2",
      };
    },
  };
}

/**
 * The plaintext of an encrypted attachment, chunk by chunk. The hash covers the whole
 * ciphertext, so a tampered file is detected only at its end: the stream then fails with
 * `media-hash-mismatch` (the consumer must not treat what it got so far as complete).
 */
export async function* decryptAttachment(
  source: AsyncIterable<Uint8Array>,
  encryption: { key: string; iv: string; sha256: string },
): AsyncGenerator<Uint8Array> {
  const key = Buffer.from(encryption.key, "base64url");
  const iv = Buffer.from(encryption.iv, "base64");
  if (key.length !== 32 || iv.length !== 16) {
    throw new BridgeError(
      "media-encrypted-invalid",
      "the attachment's key or IV has a wrong length",
    );
  }
  const decipher = createDecipheriv("aes-256-ctr", key, iv);
  const hash = createHash("sha256");
  for await (const chunk of source) {
    hash.update(chunk);
    const out = decipher.update(chunk);
    if (out.byteLength > 0) yield out;
  }
  const last = decipher.final();
  const expected = Buffer.from(encryption.sha256, "base64");
  const actual = hash.digest();
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new BridgeError("media-hash-mismatch", "the attachment does not match its SHA-256");
  }
  if (last.byteLength > 0) yield last;
}

function unpadded(base64: string): string {
  return base64.replace(/=+$/, "");
}
