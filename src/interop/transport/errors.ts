import { BridgeError } from "../../util/errors.js";
import type { XmlElement } from "../codec/xml.js";

/**
 * Stable codes of transport failures. Callers (the outbox, the hello loop) branch on these:
 * `transport-offline` and `send-failed` mean "keep the stanza and retry after reconnecting";
 * `stanza-too-large` is final for that stanza.
 */
type TransportErrorCode =
  "transport-offline" | "transport-stopped" | "stanza-too-large" | "send-failed" | "stanza-invalid";

export class TransportError extends BridgeError {
  declare readonly code: TransportErrorCode;

  constructor(
    code: TransportErrorCode,
    message: string,
    options: { cause?: unknown; retryAt?: Date } = {},
  ) {
    super(code, message, options);
  }
}

/** RFC 6120 §8.3.2 error types. */
export type StanzaErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

/**
 * The `<error>` of an IQ response, decoded only as far as the transport needs it. The full
 * interpretation of application conditions belongs to `interop/codec/errors.ts`, which can take
 * `appCondition` (or the whole `element`) from here.
 */
export interface RawStanzaError {
  type: StanzaErrorType;
  /** The RFC 6120 defined condition, e.g. `service-unavailable`; `undefined-condition` if absent. */
  condition: string;
  /** The first child outside the stanzas namespace (e.g. `urn:interop:errors:0` conditions). */
  appCondition: XmlElement | undefined;
  text: string | undefined;
  /** The `<error>` element itself, or undefined when the error stanza carried none. */
  element: XmlElement | undefined;
}

/** An IQ was answered with `type='error'`. */
export class IqError extends BridgeError {
  readonly error: RawStanzaError;

  constructor(
    readonly request: { id: string; to: string; payload: string },
    readonly response: XmlElement,
    error: RawStanzaError,
  ) {
    super(
      "iq-error",
      `IQ ${request.payload} to ${request.to} (id ${request.id}) failed: ` +
        `${error.type}/${error.condition}` +
        (error.appCondition === undefined ? "" : ` + ${error.appCondition.name}`) +
        (error.text === undefined ? "" : ` (${error.text})`),
    );
    this.error = error;
  }
}

/** No response arrived within the IQ timeout (after all allowed resends). */
export class IqTimeoutError extends BridgeError {
  constructor(
    readonly request: { id: string; to: string; payload: string },
    readonly attempts: number,
    timeoutMs: number,
  ) {
    super(
      "iq-timeout",
      `IQ ${request.payload} to ${request.to} (id ${request.id}) got no response ` +
        `in ${attempts} attempt(s) of ${timeoutMs} ms`,
    );
  }
}
