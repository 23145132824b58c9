import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  timingSafeEqual,
  type Cipheriv,
  type Decipheriv,
  type Hash,
  type Hmac,
} from "node:crypto";
import { Transform, type TransformCallback, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MediaIntegrityError, MediaTooLargeError } from "./errors.js";
import { expandMediaKey, generateMediaKey, MEDIA_KEY_LENGTH, type MediaKeys } from "./keys.js";
import { blobLengthFor, isWellFormedBlobLength, MAC_LENGTH, type MediaKind } from "./kinds.js";

export { expandMediaKey, generateMediaKey } from "./keys.js";

/** What a sender puts in the `<media>` element besides url, type and kind-specific extras (§13.2). */
export interface EncryptedMediaInfo {
  readonly kind: MediaKind;
  readonly mediaKey: Buffer;
  /** Plaintext length in bytes (`size`). */
  readonly size: number;
  /** Encrypted blob length, the `size` of the slot request (§14.1). */
  readonly blobLength: number;
  readonly sha256: Buffer;
  readonly encSha256: Buffer;
}

/** What a receiver was told about a blob (§13.2), checked in the order of §14.4. */
export interface MediaExpectation {
  readonly kind: MediaKind;
  readonly mediaKey: Uint8Array;
  readonly size: number;
  readonly sha256: Uint8Array;
  readonly encSha256: Uint8Array;
}

interface EncryptOptions {
  readonly kind: MediaKind;
  /** Defaults to a fresh random key; pass one only for test vectors or re-encryption tests. */
  readonly mediaKey?: Uint8Array;
  /** Fail with `media-too-large` as soon as the blob would exceed this many bytes. */
  readonly maxBlobLength?: number;
}

/**
 * Plaintext in, blob (ciphertext ‖ truncated MAC) out. `info` is available once the stream ended.
 * Memory use is one chunk at a time whatever the media size.
 */
export class MediaEncryptStream extends Transform {
  private readonly cipher: Cipheriv;
  private readonly mac: Hmac;
  private readonly plainHash: Hash = createHash("sha256");
  private readonly blobHash: Hash = createHash("sha256");
  private readonly mediaKey: Buffer;
  private size = 0;
  private result: EncryptedMediaInfo | undefined;

  constructor(private readonly options: EncryptOptions) {
    super();
    this.mediaKey = Buffer.from(options.mediaKey ?? generateMediaKey());
    const keys = expandMediaKey(this.mediaKey, options.kind);
    this.cipher = createCipheriv("aes-256-cbc", keys.cipherKey, keys.iv);
    this.mac = createHmac("sha256", keys.macKey).update(keys.iv);
  }

  get info(): EncryptedMediaInfo {
    if (this.result === undefined) throw new Error("media encryption has not finished");
    return this.result;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    const max = this.options.maxBlobLength;
    if (max !== undefined && blobLengthFor(this.size) > max) {
      callback(new MediaTooLargeError(this.options.kind, blobLengthFor(this.size), max));
      return;
    }
    this.plainHash.update(chunk);
    this.emitCiphertext(this.cipher.update(chunk));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.emitCiphertext(this.cipher.final());
    const tag = this.mac.digest().subarray(0, MAC_LENGTH);
    this.blobHash.update(tag);
    this.push(tag);
    this.result = {
      kind: this.options.kind,
      mediaKey: this.mediaKey,
      size: this.size,
      blobLength: blobLengthFor(this.size),
      sha256: this.plainHash.digest(),
      encSha256: this.blobHash.digest(),
    };
    callback();
  }

  private emitCiphertext(ciphertext: Buffer): void {
    if (ciphertext.length === 0) return;
    this.mac.update(ciphertext);
    this.blobHash.update(ciphertext);
    this.push(ciphertext);
  }
}

/** Encrypts `source` into `sink` (a file, an HTTP body…) and resolves with the `<media>` values. */
export async function encryptMedia(
  source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  sink: Writable,
  options: EncryptOptions,
): Promise<EncryptedMediaInfo> {
  const encryptor = new MediaEncryptStream(options);
  await pipeline(source, encryptor, sink);
  return encryptor.info;
}

/** Result of reading a blob once: its length, SHA-256 and whether the MAC matched. */
interface BlobCheck {
  readonly length: number;
  readonly encSha256: Buffer;
  readonly macValid: boolean;
}

/**
 * Passes a blob through unchanged while computing SHA-256 of the blob and the HMAC over
 * iv ‖ ciphertext. The last 10 bytes seen are held back from the HMAC because they are the MAC
 * itself; only those 10 bytes are kept, never the blob. Fails with `length` as soon as more than
 * `maxLength` bytes arrived (§14.4 download cap).
 */
export class BlobCheckStream extends Transform {
  private readonly mac: Hmac;
  private readonly blobHash: Hash = createHash("sha256");
  private tail: Buffer = Buffer.alloc(0);
  private length = 0;
  private result: BlobCheck | undefined;

  constructor(
    keys: MediaKeys,
    private readonly maxLength: number,
  ) {
    super();
    this.mac = createHmac("sha256", keys.macKey).update(keys.iv);
  }

  get check(): BlobCheck {
    if (this.result === undefined) throw new Error("blob check has not finished");
    return this.result;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.length += chunk.length;
    if (this.length > this.maxLength) {
      callback(
        new MediaIntegrityError(
          "length",
          `blob exceeds the ${this.maxLength} bytes its size allows`,
        ),
      );
      return;
    }
    this.blobHash.update(chunk);
    if (chunk.length >= MAC_LENGTH) {
      this.mac.update(this.tail);
      this.mac.update(chunk.subarray(0, chunk.length - MAC_LENGTH));
      // A copy, so that the held-back bytes do not pin the whole chunk in memory.
      this.tail = Buffer.from(chunk.subarray(chunk.length - MAC_LENGTH));
    } else {
      const joined = Buffer.concat([this.tail, chunk]);
      const macEnd = Math.max(0, joined.length - MAC_LENGTH);
      this.mac.update(joined.subarray(0, macEnd));
      this.tail = joined.subarray(macEnd);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const expected = this.mac.digest().subarray(0, MAC_LENGTH);
    this.result = {
      length: this.length,
      encSha256: this.blobHash.digest(),
      macValid: this.tail.length === MAC_LENGTH && timingSafeEqual(expected, this.tail),
    };
    callback();
  }
}

/**
 * Decrypts the ciphertext part of a blob that already passed {@link BlobCheckStream}, hashing and
 * counting the plaintext. Fails with `size` as soon as more plaintext than announced appears and
 * with `padding` when PKCS#7 is broken.
 */
export class MediaDecryptStream extends Transform {
  private readonly decipher: Decipheriv;
  private readonly plainHash: Hash = createHash("sha256");
  private size = 0;
  private digestValue: Buffer | undefined;

  constructor(
    keys: MediaKeys,
    private readonly expectedSize: number,
  ) {
    super();
    this.decipher = createDecipheriv("aes-256-cbc", keys.cipherKey, keys.iv);
  }

  get plaintext(): { size: number; sha256: Buffer } {
    if (this.digestValue === undefined) throw new Error("media decryption has not finished");
    return { size: this.size, sha256: this.digestValue };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(this.release(this.decipher.update(chunk)));
  }

  override _flush(callback: TransformCallback): void {
    let last: Buffer;
    try {
      last = this.decipher.final();
    } catch (err) {
      callback(new MediaIntegrityError("padding", "invalid PKCS#7 padding", err));
      return;
    }
    const failure = this.release(last);
    if (failure === null) this.digestValue = this.plainHash.digest();
    callback(failure);
  }

  private release(plain: Buffer): Error | null {
    this.size += plain.length;
    if (this.size > this.expectedSize) {
      return new MediaIntegrityError(
        "size",
        `plaintext exceeds the announced ${this.expectedSize} bytes`,
      );
    }
    this.plainHash.update(plain);
    if (plain.length > 0) this.push(plain);
    return null;
  }
}

/** Throws unless the blob check satisfies §14.4 in its order: framing, enc-sha256, MAC. */
export function assertBlobValid(check: BlobCheck, expected: MediaExpectation): void {
  const { length } = check;
  if (!isWellFormedBlobLength(length)) {
    throw new MediaIntegrityError("length", `blob length ${length} is not 16·n + 10 with n ≥ 1`);
  }
  if (!sameDigest(check.encSha256, expected.encSha256)) {
    throw new MediaIntegrityError("enc-sha256", "SHA-256 of the blob differs from enc-sha256");
  }
  if (!check.macValid) throw new MediaIntegrityError("mac", "MAC mismatch");
}

/** Throws unless the decrypted plaintext matches `size` and `sha256` (§14.4, last step). */
export function assertPlaintextValid(
  plain: { size: number; sha256: Buffer },
  expected: MediaExpectation,
): void {
  if (!sameDigest(plain.sha256, expected.sha256)) {
    throw new MediaIntegrityError("sha256", "SHA-256 of the plaintext differs from sha256");
  }
  if (plain.size !== expected.size) {
    throw new MediaIntegrityError(
      "size",
      `plaintext is ${plain.size} bytes, announced ${expected.size}`,
    );
  }
}

/** Validates the lengths of the key and hashes before any work is done. */
export function assertExpectationShape(expected: MediaExpectation): void {
  if (expected.mediaKey.length !== MEDIA_KEY_LENGTH) {
    throw new MediaIntegrityError("key", `mediaKey must be ${MEDIA_KEY_LENGTH} bytes`);
  }
  if (expected.sha256.length !== 32 || expected.encSha256.length !== 32) {
    throw new MediaIntegrityError("key", "sha256 and enc-sha256 must be 32 bytes");
  }
  if (!Number.isSafeInteger(expected.size) || expected.size < 0) {
    throw new MediaIntegrityError("size", `invalid size ${String(expected.size)}`);
  }
}

function sameDigest(actual: Uint8Array, expected: Uint8Array): boolean {
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
