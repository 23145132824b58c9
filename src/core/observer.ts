import type { MessageContent } from "./network.js";

/** Which way a message crossed the bridge. */
export type Direction = "to-network" | "to-matrix";

/**
 * What the core tells an observer about its work (implemented by src/metrics/ for Prometheus).
 * Calls are synchronous and must not throw; the core never waits for an observer.
 */
export interface CoreObserver {
  /** A message was handed to the other side: the network's outbox, or the homeserver. */
  messageBridged(direction: Direction, type: MessageContent["type"], seconds: number): void;
  /** A message was not bridged; `reason` is a stable code (SendFailure codes, `rate-limited`, ...). */
  messageFailed(direction: Direction, reason: string): void;
  /** A message from the network could not be decrypted. */
  undecryptable(): void;
}

export const NO_OBSERVER: CoreObserver = {
  messageBridged: () => undefined,
  messageFailed: () => undefined,
  undecryptable: () => undefined,
};
