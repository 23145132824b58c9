import {
  interopError,
  type AppCondition,
  type StanzaError,
  type StanzaErrorCondition,
  type StanzaErrorType,
} from "../src/interop/codec/errors.js";
import { BridgeError } from "../src/util/errors.js";

/**
 * A request the gatekeeper refuses, carrying the exact stanza error of §18 to answer with.
 * Services throw it; the dispatcher turns it into an IQ error or a bounce.
 */
export class Refusal extends BridgeError {
  constructor(
    readonly error: StanzaError,
    message: string,
  ) {
    super("refused", message);
  }
}

type KnownApp = Exclude<AppCondition, { name: "unknown" }>;

export function refuse(
  app: KnownApp,
  message: string,
  options: { condition?: StanzaErrorCondition } = {},
): Refusal {
  return new Refusal(interopError(app, options), message);
}

export function refuseStandard(
  condition: StanzaErrorCondition,
  type: StanzaErrorType,
  message: string,
): Refusal {
  return new Refusal({ condition, type }, message);
}

/** Whole seconds until `at` (ms), at least 1, for `retry-after` (§16.3). */
export function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}
