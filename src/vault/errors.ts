import { BridgeError } from "../util/errors.js";

/**
 * Typed errors of the key vault. The bridge refuses to start on a missing or wrong key (it names the
 * setting); a record that fails to open is reported per row, never silently replaced.
 */

/** The vault key is not configured, or the configured source is empty or unreadable. */
export class VaultKeyMissingError extends BridgeError {
  constructor(message: string, cause?: unknown) {
    super("vault-key-missing", message, { cause });
  }
}

/** The vault key does not open the database's check value: another key sealed these rows. */
export class VaultKeyMismatchError extends BridgeError {
  constructor(message: string) {
    super("vault-key-wrong", message);
  }
}

/** A sealed value failed authentication: corrupted, truncated or moved from another row. */
export class VaultRecordError extends BridgeError {
  constructor(message: string, cause?: unknown) {
    super("vault-record-invalid", message, { cause });
  }
}
