import { BridgeError } from "../../util/errors.js";
import type { MediaKind } from "./kinds.js";

/**
 * Typed media errors. Callers branch on the class or on `code`:
 * - `media-too-large`: above the kind's limit, refused before any transfer (or a 413 from the store);
 * - `media-invalid`: the blob or plaintext failed a §14.4 check; the data was discarded;
 * - `media-url-refused`: origin, scheme, userinfo or slot header rules of §14.1/§14.2/§14.4;
 * - `media-redirect-refused`, `media-http-status`, `media-transport`, `media-timeout`,
 *   `media-response-too-large`: see {@link MediaTransferError}.
 * Only `media-transport` and `media-timeout` are worth retrying (§14.4).
 */
export class MediaTooLargeError extends BridgeError {
  constructor(
    readonly kind: MediaKind | undefined,
    /** Encrypted blob length that was refused, when known. */
    readonly blobLength: number | undefined,
    /** The kind's limit in bytes, when known (a 413 from the store does not say). */
    readonly limit: number | undefined,
    options: { cause?: unknown; message?: string } = {},
  ) {
    super(
      "media-too-large",
      options.message ??
        `${kind ?? "media"} of ${blobLength ?? "?"} encrypted bytes exceeds the limit of ${limit ?? "?"} bytes`,
      { cause: options.cause },
    );
  }
}

type MediaIntegrityReason =
  | "key" // mediaKey or a hash attribute has the wrong length
  | "length" // blob length breaks §14.4 framing, or more arrived than the announced size allows
  | "enc-sha256" // SHA-256 of the blob differs from enc-sha256
  | "mac" // truncated HMAC differs (wrong key, wrong kind, tampered blob)
  | "padding" // PKCS#7 padding invalid after a valid MAC (sender bug)
  | "sha256" // SHA-256 of the plaintext differs from sha256
  | "size"; // plaintext length differs from size

export class MediaIntegrityError extends BridgeError {
  constructor(
    readonly reason: MediaIntegrityReason,
    message: string,
    cause?: unknown,
  ) {
    super("media-invalid", `media rejected (${reason}): ${message}`, { cause });
  }
}

export type UrlRefusal = "malformed" | "scheme" | "insecure" | "userinfo" | "origin" | "header";

export class MediaUrlError extends BridgeError {
  constructor(
    readonly refusal: UrlRefusal,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super("media-url-refused", message, options);
  }
}

type MediaTransferCode =
  | "media-redirect-refused"
  | "media-http-status"
  | "media-transport"
  | "media-timeout"
  | "media-response-too-large"
  | "media-bad-length"
  | "media-unauthorized"
  | "media-already-uploaded"
  | "media-expired"
  | "media-not-found";

/** An HTTP exchange with the media store failed. `status` is set when the store answered. */
export class MediaTransferError extends BridgeError {
  constructor(
    code: MediaTransferCode,
    message: string,
    readonly status?: number,
    cause?: unknown,
  ) {
    super(code, message, { cause });
  }

  /** Transport failures (no usable answer) are the only ones §14.4 allows to retry. */
  get retryable(): boolean {
    return this.code === "media-transport" || this.code === "media-timeout";
  }
}

export const isRetryableMediaError = (err: unknown): boolean =>
  err instanceof MediaTransferError && err.retryable;
