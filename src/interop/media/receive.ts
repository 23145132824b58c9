import { assertExpectationShape, type MediaExpectation } from "./cipher.js";
import { decryptMediaToFile, type DecryptedMedia } from "./decrypt.js";
import { blobLengthFor } from "./kinds.js";
import type { MediaTransferClient } from "./transfer.js";

/** The fields of a received `<media>` element that locate and authenticate the blob (§13.2). */
export interface MediaReference extends MediaExpectation {
  readonly url: string;
}

interface ReceiveMediaOptions {
  readonly client: MediaTransferClient;
  /** Where the verified plaintext is written; nothing appears there unless every check passed. */
  readonly plaintextPath: string;
  /** Directory for the temporary blob; defaults to the plaintext's directory. */
  readonly workDir?: string;
}

/**
 * The receiver's side of §14.4, in its order: refuse a URL outside the announced origins, refuse
 * a size whose blob would exceed the kind's limit, GET with a cap at the blob length that `size`
 * implies, then check framing, enc-sha256, MAC, padding, sha256 and size. Any failure throws and
 * leaves no plaintext behind (the caller shows "media unavailable"); only transport failures are
 * retried, at most 3 times.
 */
export async function downloadAndDecrypt(
  ref: MediaReference,
  options: ReceiveMediaOptions,
): Promise<DecryptedMedia> {
  const { client } = options;
  client.checkUrl(ref.url);
  assertExpectationShape(ref);
  const maxLength = blobLengthFor(ref.size);
  client.assertWithinLimit(ref.kind, maxLength);
  return client.download(ref.url, maxLength, (body) =>
    decryptMediaToFile(body, ref, {
      plaintextPath: options.plaintextPath,
      ...(options.workDir === undefined ? {} : { workDir: options.workDir }),
    }),
  );
}
