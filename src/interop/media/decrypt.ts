import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import {
  assertBlobValid,
  assertExpectationShape,
  assertPlaintextValid,
  BlobCheckStream,
  MediaDecryptStream,
  type MediaExpectation,
} from "./cipher.js";
import { expandMediaKey } from "./keys.js";
import { blobLengthFor, MAC_LENGTH } from "./kinds.js";

export interface DecryptedMedia {
  /** The verified plaintext; the caller owns the file from now on. */
  readonly path: string;
  readonly size: number;
  readonly sha256: Buffer;
}

interface DecryptToFileOptions {
  /** Where the verified plaintext ends up. Nothing appears there unless every check passed. */
  readonly plaintextPath: string;
  /** Directory for the temporary blob; defaults to the plaintext's directory. */
  readonly workDir?: string;
}

/**
 * Receives a blob stream and produces a verified plaintext file, never holding the media in memory.
 *
 * Why two passes over a temporary file: the MAC covers the whole ciphertext, so plaintext cannot
 * be trusted before the last byte arrived, and §14.4 forbids using it before the MAC check.
 * Buffering a 100 MB blob in memory (or decrypting on the fly into memory) would hold it once or
 * twice; instead pass 1 streams the blob to a temp file while hashing it and computing the MAC,
 * and only after enc-sha256 and the MAC matched does pass 2 decrypt that file into a second temp
 * file next to the destination, which is renamed into place once sha256 and size matched too.
 * On any failure both temp files are removed, so the caller never sees unverified plaintext.
 */
export async function decryptMediaToFile(
  source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  expected: MediaExpectation,
  options: DecryptToFileOptions,
): Promise<DecryptedMedia> {
  assertExpectationShape(expected);
  const keys = expandMediaKey(expected.mediaKey, expected.kind);
  const tag = randomBytes(8).toString("hex");
  const blobPath = join(options.workDir ?? dirname(options.plaintextPath), `.media-${tag}.blob`);
  const partPath = `${options.plaintextPath}.part-${tag}`;
  try {
    const checker = new BlobCheckStream(keys, blobLengthFor(expected.size));
    await pipeline(source, checker, createWriteStream(blobPath, { flags: "wx", mode: 0o600 }));
    assertBlobValid(checker.check, expected);

    const decryptor = new MediaDecryptStream(keys, expected.size);
    await pipeline(
      createReadStream(blobPath, { start: 0, end: checker.check.length - MAC_LENGTH - 1 }),
      decryptor,
      createWriteStream(partPath, { flags: "wx", mode: 0o600 }),
    );
    assertPlaintextValid(decryptor.plaintext, expected);
    await rename(partPath, options.plaintextPath);
    return { path: options.plaintextPath, ...decryptor.plaintext };
  } catch (err) {
    await rm(partPath, { force: true });
    throw err;
  } finally {
    await rm(blobPath, { force: true });
  }
}
