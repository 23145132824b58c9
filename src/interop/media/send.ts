import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { encryptMedia, type EncryptedMediaInfo } from "./cipher.js";
import { blobLengthFor, type MediaKind } from "./kinds.js";
import type { UploadSlot } from "./origin.js";
import type { MediaTransferClient } from "./transfer.js";

interface SendMediaOptions {
  readonly kind: MediaKind;
  readonly client: MediaTransferClient;
  /** Asks the gatekeeper for a slot of exactly `blobLength` bytes (§14.1), e.g. through the IQ layer. */
  readonly requestSlot: (kind: MediaKind, blobLength: number) => Promise<UploadSlot>;
  /** Directory for the temporary blob. */
  readonly workDir: string;
  /** Plaintext size when known beforehand, so that oversize media is refused before it is read. */
  readonly knownSize?: number;
}

/** Everything the `<media>` element needs except `type`, the filename and kind-specific extras. */
export interface UploadedMedia extends EncryptedMediaInfo {
  /** The slot's GET URL, the `url` attribute (§13.2). */
  readonly url: string;
}

/**
 * The sender's side of §14.2, in its required order: encrypt with a fresh key, obtain a slot, PUT,
 * and only then return the reference. The blob goes through a temporary file because the slot
 * request needs its exact length before the upload starts; the limit is enforced before reading
 * (when the size is known), while encrypting and again before the slot request.
 */
export async function encryptAndUpload(
  source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  options: SendMediaOptions,
): Promise<UploadedMedia> {
  const { kind, client } = options;
  if (options.knownSize !== undefined)
    client.assertWithinLimit(kind, blobLengthFor(options.knownSize));
  const blobPath = join(options.workDir, `.upload-${randomBytes(8).toString("hex")}.blob`);
  try {
    const info = await encryptMedia(
      source,
      createWriteStream(blobPath, { flags: "wx", mode: 0o600 }),
      {
        kind,
        maxBlobLength: client.limitFor(kind),
      },
    );
    client.assertWithinLimit(kind, info.blobLength);
    const slot = await options.requestSlot(kind, info.blobLength);
    await client.upload(slot, kind, info.blobLength, () => createReadStream(blobPath));
    return { ...info, url: slot.getUrl };
  } finally {
    await rm(blobPath, { force: true });
  }
}
