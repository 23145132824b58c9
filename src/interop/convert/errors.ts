import type { SendFailure } from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";

/** Why a neutral message cannot be expressed as interop content. Callers branch on `code`. */
type ConvertErrorCode =
  /** §7.6: the element's feature was not negotiated and nothing can stand in for it. */
  | "feature-not-negotiated"
  /** The body (text or caption) is above `max-body-bytes` (§13.1); it is never split. */
  | "body-too-large"
  /** The whole envelope would exceed `max-envelope-bytes` (§12.2) even after dropping vCards. */
  | "envelope-too-large"
  /** More reactions than `max-reactions`, or one that is not a single emoji of <= 32 bytes (§13.5). */
  | "invalid-reactions"
  /** A reference whose author is not a JID or whose id is not an origin-id (§2, §13). */
  | "invalid-reference"
  /** The content cannot be sent at all (unsupported content, a media descriptor of another kind). */
  | "unsupported-content";

export class ConvertError extends BridgeError {
  declare readonly code: ConvertErrorCode;

  constructor(
    code: ConvertErrorCode,
    message: string,
    readonly details: { feature?: string; limit?: number; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? {} : { cause: details.cause });
  }
}

/** The failure the core shows the Matrix user when a conversion refused a message. */
export function sendFailureOf(err: ConvertError): SendFailure {
  switch (err.code) {
    case "body-too-large":
    case "envelope-too-large":
      return { code: "too-large", message: err.message };
    case "feature-not-negotiated":
    case "invalid-reactions":
    case "invalid-reference":
    case "unsupported-content":
      return { code: "unsupported", message: err.message };
  }
}
