import { BridgeError } from "../../util/errors.js";
import type { StanzaErrorCondition } from "./conditions.js";

/**
 * A stanza, payload or envelope that does not decode. `condition` is the RFC 6120 condition the
 * spec requires in answer (almost always `bad-request`, §15.1 step 2), `appCondition` an optional
 * `urn:interop:errors:0` condition to add (e.g. `phone-invalid`), and `path` locates the bad node as
 * `/message/encrypted/header/@sid` so that logs and bounces can say what was wrong.
 *
 * Every decoder in this folder throws only this error; `tryDecode` turns it into a result value.
 */
export class CodecError extends BridgeError {
  readonly condition: StanzaErrorCondition;
  readonly appCondition: string | undefined;
  readonly path: string;

  constructor(
    message: string,
    options: {
      path: string;
      condition?: StanzaErrorCondition;
      appCondition?: string;
      cause?: unknown;
    },
  ) {
    super("codec-invalid", `${message} at ${options.path}`, { cause: options.cause });
    this.condition = options.condition ?? "bad-request";
    this.appCondition = options.appCondition;
    this.path = options.path;
  }
}

type Decoded<T> = { ok: true; value: T } | { ok: false; error: CodecError };

/** Runs a decoder and returns its value or its CodecError; any other exception propagates (a bug). */
export function tryDecode<T>(decode: () => T): Decoded<T> {
  try {
    return { ok: true, value: decode() };
  } catch (err) {
    if (err instanceof CodecError) return { ok: false, error: err };
    throw err;
  }
}
