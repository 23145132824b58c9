/**
 * Base of the project's typed errors. Callers branch on `code` (stable, machine-readable), never
 * on the message text. `retryAt` is set when the operation may succeed later (rate limits,
 * gatekeeper offline).
 */
export class BridgeError extends Error {
  readonly code: string;
  readonly retryAt: Date | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; retryAt?: Date } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryAt = options.retryAt;
  }
}

/** A problem in what the operator configured: shown as one clear line, never as a stack trace. */
export class ConfigError extends BridgeError {
  constructor(
    message: string,
    readonly problems: readonly string[] = [message],
  ) {
    super("config-invalid", message);
  }
}

/** A start-up precondition failed (database unreachable, port in use, key missing). */
export class StartupError extends BridgeError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** Human-readable one-line description of any thrown value, with its causes. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof Error) {
      parts.push(current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(": ");
}
