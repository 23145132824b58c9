/**
 * Shared types of the in-process test homeserver. Everything here is wire-shaped (plain JSON as the
 * Matrix client-server and application service APIs define it), because the server's only job is to
 * be observed through HTTP by the bridge and by matrix-js-sdk.
 */

/** Which real-world homeserver to imitate where they differ (see /work/shared/HOMESERVERS.md). */
export type HomeserverProfile = "synapse-1.67" | "synapse-1.92" | "synapse-current" | "spec";

export interface NamespaceEntry {
  exclusive: boolean;
  regex: string;
}

/** An appservice registration as parsed from registration.yaml. */
export interface AppserviceRegistration {
  id: string;
  /** `null` means the appservice receives no pushes (allowed by the spec). */
  url?: string | null;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  namespaces: {
    users?: NamespaceEntry[];
    aliases?: NamespaceEntry[];
    rooms?: NamespaceEntry[];
  };
  rate_limited?: boolean;
  /** Stable flag (spec v1.13); honoured by the `spec` profile. */
  receive_ephemeral?: boolean;
  /** MSC2409 flag; honoured by the Synapse profiles. */
  "de.sorunome.msc2409.push_ephemeral"?: boolean;
  /** Older MSC2409 spelling Synapse also reads; asks for to-device events like the above. */
  push_ephemeral?: boolean;
  /** MSC3202: device lists, one-time-key counts and unused fallback key types in transactions. */
  "org.matrix.msc3202"?: boolean;
  /** MSC4190: the appservice manages its users' devices without user-interactive auth. */
  "io.element.msc4190"?: boolean;
}

export type JsonObject = Record<string, unknown>;

/** A stored room event (PDU as a client sees it, with room_id). */
export interface RoomEvent {
  event_id: string;
  type: string;
  room_id: string;
  sender: string;
  origin_server_ts: number;
  content: JsonObject;
  state_key?: string;
  /** Pre-v11 rooms carry the redacted event id at the top level of m.room.redaction. */
  redacts?: string;
  unsigned?: JsonObject;
}

/** A room-scoped ephemeral event as pushed to appservices (carries room_id) or shown in sync. */
export interface EphemeralEvent {
  type: string;
  room_id?: string;
  content: JsonObject;
}

/** The outcome a fault injector forces on one appservice push attempt. */
export interface PushFault {
  /** Answer this HTTP status (500, 429, ...) instead of the appservice's own answer. */
  status?: number;
  /** Body of the forced answer; for 429 `retry_after_ms` is honoured. */
  body?: JsonObject;
  /** Hang until the push timeout elapses, then count the attempt as failed. */
  timeout?: boolean;
  /**
   * When true the request still reaches the appservice and only its answer is replaced (a lost
   * acknowledgement: the appservice then sees the same transaction twice). Default: not delivered.
   */
  deliver?: boolean;
}

export interface PushAttempt {
  appserviceId: string;
  txnId: string;
  /** 1 for the first try of a transaction, then 2, 3, ... */
  attempt: number;
  events: readonly RoomEvent[];
  ephemeral: readonly EphemeralEvent[];
  /** MSC2409 to-device events (with `to_user_id`, `to_device_id`). */
  toDevice: readonly JsonObject[];
  /** The whole transaction body, extensions included. */
  body: JsonObject;
}

/** Returns a fault to force for this attempt, or undefined to push normally. */
export type PushFaultInjector = (attempt: PushAttempt) => PushFault | undefined;

/**
 * A homeserver outage: every request (clients and appservices alike) is answered `status` (500 by
 * default), or with `unreachable` the connection is dropped unanswered; pushes to appservices
 * stop and are retried with backoff once it ends.
 */
export type Outage = { status?: number } | { unreachable: true };

/** A client-server request as a client fault injector sees it. */
export interface ClientRequest {
  method: string;
  path: string;
  /** The appservice whose as_token made the request, if one did. */
  appserviceId: string | undefined;
}

/**
 * The answer a client fault injector forces instead of handling the request: `500` answers
 * `M_UNKNOWN` (as does `400`, a final refusal); `429` answers `M_LIMIT_EXCEEDED` with `retry_after_ms` in the body and, rounded up
 * to seconds, a `Retry-After` header (client-server API "Rate limiting", v1.10+).
 */
export interface ClientFault {
  status: 400 | 500 | 502 | 503 | 429;
  /** For 429: how long the client should wait; default 1000 ms. */
  retryAfterMs?: number;
}

/** Returns a fault to answer this request with, or undefined to handle it normally. */
export type ClientFaultInjector = (request: ClientRequest) => ClientFault | undefined;
