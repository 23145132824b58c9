import type { BareJid, DeviceId, MessageId, PhoneNumber, StanzaId } from "../../util/ids.js";
import type { ReportReason } from "../codec/abuse.js";
import type { ChatState, MessageRef } from "../codec/delivery.js";
import type { Envelope } from "../codec/envelope.js";
import type { GroupEventType, GroupRole } from "../codec/groups.js";

/** A participant as stored and as handed to the core (JSON-safe). */
export interface StoredParticipant {
  jid: string;
  role: GroupRole;
}

/** A group as stored in pending `inbox` rows and `interop_groups` (JSON-safe). */
export interface GroupSnapshot {
  jid: string;
  subject: string;
  version: number;
  participants: StoredParticipant[];
}

/** Why an outgoing message failed for good; mirrors core/network.ts `SendFailure` codes. */
export type SendFailureCode =
  | "blocked"
  | "not-reachable"
  | "rate-limited"
  | "too-large"
  | "request-pending"
  | "timed-out"
  | "unsupported"
  | "internal";

/**
 * What the engine hands to the outside (the connector's adapter to the core). Events that came in
 * a queued delivery are acknowledged to the gatekeeper only after the handler's promise resolved
 * (P13); a rejection leaves the delivery unacknowledged, so it is handed over again later.
 * `local` is the provider user the event concerns.
 */
export type ProviderEvent =
  | {
      kind: "message";
      local: BareJid;
      from: BareJid;
      device: DeviceId;
      originId: MessageId;
      stanzaId: StanzaId;
      /** Conversation order (§15.6); undefined if the gatekeeper sent no `<meta seq>`. */
      seq: number | undefined;
      /** The gatekeeper's acceptance time, when given. */
      stamp: Date | undefined;
      envelope: Envelope;
      /** The decrypted envelope exactly as received, for reports (§16.2). */
      envelopeXml: string;
      /** Set for a group message (§17.4); `from` is the member who sent it. */
      group?: BareJid;
      /**
       * Set only on the first hand-over in this process of a message the receiver has just
       * decrypted and recorded as new (its stanza-id and its origin-id both first seen): never on
       * a replay from `inbox`, a retry after a failed hand-over, a redelivery or a
       * deferred message handed over again. The core's `firstHandOver` (core/network.ts).
       */
      firstHandOver?: true;
    }
  | { kind: "delivered"; local: BareJid; from: BareJid; refs: MessageRef[]; group?: BareJid }
  | { kind: "displayed"; local: BareJid; from: BareJid; ref: MessageRef; group?: BareJid }
  /** Not queued and not acknowledged (§15.8): handed over best-effort. */
  | { kind: "typing"; local: BareJid; from: BareJid; state: ChatState; group?: BareJid }
  | {
      kind: "undecryptable";
      local: BareJid;
      from: BareJid;
      originId: MessageId;
      stamp: Date | undefined;
      group?: BareJid;
    }
  /** A group as it is now (§17.1, §17.2: created, or fetched after a version gap). */
  | {
      kind: "group-info";
      local: BareJid;
      group: BareJid;
      info: GroupSnapshot;
      addedBy: BareJid | undefined;
    }
  /** One membership notification in version order (§17.2). */
  | {
      kind: "group-event";
      local: BareJid;
      group: BareJid;
      type: GroupEventType;
      version: number;
      by: BareJid;
      participants: StoredParticipant[];
      subject: string | undefined;
    }
  | { kind: "request-accepted"; local: BareJid; contact: BareJid }
  | { kind: "unbound"; local: BareJid; phone: PhoneNumber; reason: string }
  | { kind: "report-received"; reported: BareJid; reason: ReportReason; stamp: Date }
  /**
   * A contact's identity key changed (§12.6); `changeId` is the same each time this change is
   * handed over (a retry after the handler failed), so that it is shown once.
   */
  | {
      kind: "identity-changed";
      local: BareJid;
      contact: BareJid;
      wasVerified: boolean;
      changeId: string;
    }
  /** The gatekeeper accepted one of our messages (§15.1). */
  | {
      kind: "accepted";
      local: BareJid;
      to: BareJid;
      originId: MessageId;
      stanzaId: StanzaId;
      seq: number | undefined;
      stamp: Date;
      eventId: string | undefined;
    }
  | {
      kind: "send-failed";
      local: BareJid;
      to: BareJid;
      originId: MessageId;
      reason: SendFailureCode;
      message: string;
      eventId: string | undefined;
    }
  /**
   * A message the gatekeeper told to wait (rate limit, §16.3): still in the outbox and sent again
   * by itself at `retryAt`. Emitted once per message, when the first such bounce arrives.
   */
  | {
      kind: "send-delayed";
      local: BareJid;
      to: BareJid;
      originId: MessageId;
      reason: "rate-limited";
      retryAt: Date;
      eventId: string | undefined;
    }
  | { kind: "state"; state: EngineState };

export type ProviderEventHandler = (event: ProviderEvent) => Promise<void>;

/**
 * The events that travel the durable path: recorded pending in `inbox` in the transaction that
 * records their delivery (or, for an identity change, the new identity), handed over after its
 * commit and removed only once the core took them (P13). The rest (`typing`, the outbox's
 * outcomes, `state`) are handed over as they come.
 */
export type DurableEvent = Extract<
  ProviderEvent,
  {
    kind:
      | "message"
      | "delivered"
      | "displayed"
      | "undecryptable"
      | "group-info"
      | "group-event"
      | "request-accepted"
      | "identity-changed"
      | "unbound"
      | "report-received";
  }
>;

/**
 * A durable event as it is stored (inbox.ts): the same event, but a message without its decoded
 * `envelope`, which is kept as the bytes that were decrypted and checked (`envelopeXml`). The
 * envelope decoded at decrypt time travels beside it in memory (PendingEntry.envelope).
 */
export type StoredEvent = WithoutEnvelope<DurableEvent>;
/** Without `firstHandOver` too: it is true of one hand-over, never of what is stored. */
type WithoutEnvelope<E> = E extends { kind: "message" } ? Omit<E, "envelope" | "firstHandOver"> : E;

/**
 * Stable codes of the engine's health, after the transport's own codes:
 * `ready` is the only state in which protocol traffic flows.
 */
export type EngineStateCode =
  | "stopped"
  | "connecting"
  | "hello-pending"
  | "ready"
  | "gatekeeper-offline"
  | "gatekeeper-unreachable"
  | "auth-failed"
  | "not-enlisted"
  | "version-mismatch";

export interface EngineState {
  readonly code: EngineStateCode;
  readonly message: string;
  readonly since: Date;
  /** When the next hello attempt is due (gatekeeper offline). */
  readonly retryAt: Date | undefined;
}

/** Times of the engine, all overridable so that tests need not wait for real time (§20). */
export interface EngineTiming {
  /** How long a later seq waits for the gap before it (P15, E23; reorder.ts). */
  readonly reorderHoldMs: number;
  /** Ping `wa.example` after this long without sending to it (§8.2: 60 s). */
  readonly pingIdleMs: number;
  /** Hello retry backoff while the gatekeeper is offline (§8.2: 1 s doubling to 60 s). */
  readonly helloInitialMs: number;
  readonly helloMaxMs: number;
  /** Retransmission without outcome (§15.3: 60 s doubling to 600 s). */
  readonly retransmitInitialMs: number;
  readonly retransmitMaxMs: number;
  /** Give up on an unconfirmed stanza this long after its first send (§15.3). */
  readonly outboxDeadlineMs: number;
  /** Collect acks at most this long (§15.5: at most 5 s). */
  readonly ackDelayMs: number;
  /** Period of the outbox and maintenance timer. */
  readonly tickMs: number;
  /** How often events the core deferred (held message requests) are offered to it again. */
  readonly pendingReplayMs: number;
  /** How long a group message without its sender key waits for a distribution (§17.4: 60 s). */
  readonly senderKeyWaitMs: number;
  /** `iq-timeout-seconds` (§8.4). */
  readonly iqTimeoutMs: number;
  /** Offering the connection state again after the core's handler failed: doubling to the max. */
  readonly stateRetryInitialMs: number;
  readonly stateRetryMaxMs: number;
  /** Rotate signed and last-resort prekeys after this long (§11.6: SHOULD 7 days). */
  readonly rotateAfterMs: number;
}

export const DEFAULT_TIMING: EngineTiming = {
  reorderHoldMs: 2000,
  pingIdleMs: 60_000,
  helloInitialMs: 1000,
  helloMaxMs: 60_000,
  retransmitInitialMs: 60_000,
  retransmitMaxMs: 600_000,
  outboxDeadlineMs: 601_200_000,
  ackDelayMs: 1000,
  tickMs: 1000,
  pendingReplayMs: 60_000,
  senderKeyWaitMs: 60_000,
  iqTimeoutMs: 30_000,
  stateRetryInitialMs: 1000,
  stateRetryMaxMs: 60_000,
  rotateAfterMs: 7 * 86_400_000,
};

/** The engine's times from the `interop` section of the bridge configuration. */
export function timingFromConfig(interop: {
  readonly outbox_deadline_seconds: number;
  readonly iq_timeout_seconds: number;
}): Partial<EngineTiming> {
  return {
    outboxDeadlineMs: interop.outbox_deadline_seconds * 1000,
    iqTimeoutMs: interop.iq_timeout_seconds * 1000,
  };
}
