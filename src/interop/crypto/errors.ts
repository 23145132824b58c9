import { BridgeError } from "../../util/errors.js";
import type { DeviceAddress } from "./types.js";

/**
 * Typed errors of the Signal layer. Callers branch on the class (or `code`): a duplicate is
 * acknowledged and dropped, an invalid message leads to a retry request (PROTOCOL.md §12.5), an
 * identity change is shown as a notice.
 */

/** The message was already decrypted (libsignal's DuplicatedMessage, or a Kyber replay, §11.6). */
export class DuplicateMessageError extends BridgeError {
  constructor(message: string, cause?: unknown) {
    super("duplicate-message", message, { cause });
  }
}

/**
 * Sending is refused because the contact's identity changed and, in `hold` mode, the change has
 * not been confirmed; or libsignal found an identity it does not trust. `previousKey` is the key
 * before the change (null when none was recorded), `currentKey` the key now recorded or offered.
 */
export class UntrustedIdentityError extends BridgeError {
  constructor(
    readonly remoteJid: string,
    readonly previousKey: Uint8Array | null,
    readonly currentKey: Uint8Array | null,
    message: string,
    cause?: unknown,
  ) {
    super("untrusted-identity", message, { cause });
  }
}

/** No usable session with the device: the caller fetches its bundle (§12.3) or asks for a retry. */
export class NoSessionError extends BridgeError {
  constructor(
    readonly missing: readonly DeviceAddress[],
    message: string,
    cause?: unknown,
  ) {
    super("no-session", message, { cause });
  }
}

/** A ciphertext that cannot be decrypted for another reason: answered with a retry request. */
export class InvalidMessageError extends BridgeError {
  constructor(message: string, cause?: unknown) {
    super("invalid-message", message, { cause });
  }
}

/** A PreKeySignalMessage older than version 4 (PQXDH), which §5.2 requires to reject (P27). */
export class LegacyMessageError extends BridgeError {
  constructor(
    readonly version: number,
    message: string,
  ) {
    super("legacy-message", message);
  }
}

/** No sender key for a group message (§17.4): the receiver waits for an SKDM or asks for a retry. */
export class NoSenderKeyError extends BridgeError {
  constructor(message: string, cause?: unknown) {
    super("no-sender-key", message, { cause });
  }
}

/** A sender key distribution id already bound to another group (§13.3). */
export class SenderKeyGroupMismatchError extends BridgeError {
  constructor(message: string) {
    super("sender-key-group-mismatch", message);
  }
}

/** A bundle whose keys or signatures do not verify, or that libsignal refuses. */
export class InvalidBundleError extends BridgeError {
  constructor(message: string, cause?: unknown) {
    super("invalid-bundle", message, { cause });
  }
}

/** The local device has no keys (never created, or deleted on logout). */
export class UnknownLocalDeviceError extends BridgeError {
  constructor(message: string) {
    super("unknown-local-device", message);
  }
}
