import type { SendFailure } from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";
import { ConvertError, sendFailureOf } from "../convert/index.js";
import { MediaTooLargeError, MediaTransferError, MediaUrlError } from "../media/errors.js";
import { GatekeeperError, ProviderError } from "../provider/errors.js";

/**
 * A message the connector refused before it reached the outbox. A BridgeError, so that the core
 * shows its message to the user as "Not sent: ..."; `failure` is the same reason in the core's
 * SendFailure terms for callers that branch on it.
 */
export class SendRefusedError extends BridgeError {
  constructor(
    readonly failure: SendFailure,
    cause: unknown,
  ) {
    super(failure.code, failure.message, {
      cause,
      ...(failure.retryAt === undefined ? {} : { retryAt: failure.retryAt }),
    });
  }
}

/** Why a send failed, in the core's terms; undefined for errors that are bugs, not refusals. */
function sendFailureFromError(err: unknown): SendFailure | undefined {
  if (err instanceof ConvertError) return sendFailureOf(err);
  if (err instanceof GatekeeperError) {
    if (err.app?.name === "rate-limited") {
      return {
        code: "rate-limited",
        message: "WhatsApp asks to slow down",
        ...(err.retryAt === undefined ? {} : { retryAt: err.retryAt }),
      };
    }
    if (err.condition === "not-acceptable" || err.app?.name === "refused") {
      return { code: "blocked", message: "the recipient does not accept your messages" };
    }
    return { code: "internal", message: "WhatsApp refused the request" };
  }
  if (err instanceof ProviderError) {
    switch (err.code) {
      case "too-large":
        return { code: "too-large", message: "the message is too large for WhatsApp" };
      case "unsupported":
        return { code: "unsupported", message: "WhatsApp does not support this kind of message" };
      case "no-local-device":
        return { code: "internal", message: "you are not logged in to WhatsApp" };
      case "not-ready":
      case "stopped":
        return { code: "timed-out", message: "the bridge is not connected to WhatsApp right now" };
      case "gatekeeper-error":
        return { code: "internal", message: "WhatsApp refused the request" };
    }
  }
  if (err instanceof MediaTooLargeError) {
    return { code: "too-large", message: "the file is too large for WhatsApp" };
  }
  if (err instanceof MediaTransferError || err instanceof MediaUrlError) {
    return { code: "internal", message: "the file could not be uploaded to WhatsApp" };
  }
  return undefined;
}

/** Rethrows a refusal as SendRefusedError; anything else (a bug) unchanged. */
export function asSendRefusal(err: unknown): unknown {
  if (err instanceof SendRefusedError) return err;
  const failure = sendFailureFromError(err);
  return failure === undefined ? err : new SendRefusedError(failure, err);
}
