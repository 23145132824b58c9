import { ErrorCode, LibSignalErrorBase } from "@signalapp/libsignal-client";
import type { DeviceAddress } from "./types.js";
import {
  DuplicateMessageError,
  InvalidMessageError,
  NoSessionError,
  UntrustedIdentityError,
} from "./errors.js";
import type { WriteBatch } from "./write-batch.js";
import type { BridgeError } from "../../util/errors.js";

/**
 * Turns what libsignal threw while decrypting into the layer's typed errors (§12.4): duplicates
 * are acknowledged without effect, a missing session and every other failure lead to a retry
 * request (§12.5). Errors thrown by our own store callbacks reach us wrapped as Generic errors,
 * which is why a Kyber replay is signalled through the batch rather than by error type.
 */
export function mapDecryptError(err: unknown, batch: WriteBatch, sender: DeviceAddress): Error {
  const from = `${sender.jid}/${sender.device}`;
  if (err instanceof Error && isBridgeError(err)) return err;
  const failure = storeFailureOf(batch);
  if (failure !== undefined) return failure;
  if (batch.replayDetected) {
    return new DuplicateMessageError(`replayed PreKeySignalMessage from ${from}`, err);
  }
  if (err instanceof LibSignalErrorBase) {
    switch (err.code) {
      case ErrorCode.DuplicatedMessage:
        return new DuplicateMessageError(`message from ${from} was already decrypted`, err);
      case ErrorCode.UntrustedIdentity:
        return new UntrustedIdentityError(
          sender.jid,
          null,
          null,
          `untrusted identity of ${from}`,
          err,
        );
      default:
        if (isSessionNotFound(err)) {
          return new NoSessionError([sender], `no session with ${from} to decrypt with`, err);
        }
    }
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new InvalidMessageError(`cannot decrypt the message from ${from}: ${reason}`, err);
}

export function isSessionNotFound(err: unknown): boolean {
  return (
    err instanceof LibSignalErrorBase &&
    (err.code === ErrorCode.InvalidSession || /session with .* not found/.test(err.message))
  );
}

function isBridgeError(err: Error): err is BridgeError {
  return "code" in err && typeof (err as { code: unknown }).code === "string";
}

/**
 * The failure of a store read during the operation (the database, not the message): returned
 * instead of what libsignal made of it, so that the caller can tell and retry.
 */
export function storeFailureOf(batch: WriteBatch): Error | undefined {
  const failure = batch.storeFailure;
  if (failure === undefined) return undefined;
  return failure instanceof Error ? failure : new Error(String(failure));
}
