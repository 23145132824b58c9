import { randomBytes } from "node:crypto";
import { canonicalJson } from "./e2ee/signing.js";
import { MatrixError } from "./errors.js";
import type { JsonObject, RoomEvent } from "./types.js";

/** The spec's size limit of an event (client-server "Size limits"), in bytes of canonical JSON. */
export const MAX_EVENT_BYTES = 65_536;
/** What a signed PDU adds to a stored event: hashes, signatures, prev and auth events. */
const PDU_OVERHEAD_BYTES = 1024;

/**
 * THE one check of an event's size (and of its identifier fields' lengths), applied by `HomeserverCore.persist` to every event a client
 * sends (send, state, redaction, membership): above 65,536 bytes Synapse refuses it with 413
 * M_TOO_LARGE. A real PDU also carries hashes, signatures and auth/prev events (a few hundred
 * bytes), so Synapse refuses slightly smaller contents than this server does.
 */
export function assertEventSize(event: RoomEvent): void {
  // The spec also caps these keys at 255 bytes each; Synapse answers the same 413.
  for (const key of ["type", "state_key", "sender", "room_id", "event_id"] as const) {
    const value = event[key];
    if (value !== undefined && Buffer.byteLength(value, "utf8") > 255) {
      throw new MatrixError(413, "M_TOO_LARGE", `The event's ${key} is longer than 255 bytes`);
    }
  }
  // The limit is on the signed PDU, which adds hashes, signatures, prev and auth events to the
  // event as stored here: a fixed allowance stands for them, so a bridge that fits its events
  // only to the bare JSON fails here as it would on Synapse.
  const size = Buffer.byteLength(canonicalJson(event), "utf8") + PDU_OVERHEAD_BYTES;
  if (size > MAX_EVENT_BYTES) {
    throw new MatrixError(
      413,
      "M_TOO_LARGE",
      `Event is ${size} bytes, more than the limit of ${MAX_EVENT_BYTES}`,
    );
  }
}

/** Event ids in room versions 4+ are `$` followed by 43 unpadded URL-safe base64 characters. */
export function newEventId(): string {
  return `$${randomBytes(32).toString("base64url")}`;
}

export function newOpaqueId(length = 18): string {
  return randomBytes(length).toString("base64url").replace(/[-_]/g, "x").slice(0, length);
}

const KEPT_TOP_LEVEL_V11 = [
  "event_id",
  "type",
  "room_id",
  "sender",
  "state_key",
  "content",
  "hashes",
  "signatures",
  "depth",
  "prev_events",
  "auth_events",
  "origin_server_ts",
];
const KEPT_TOP_LEVEL_OLD = [...KEPT_TOP_LEVEL_V11, "origin", "membership", "prev_state"];

/**
 * The spec's redaction algorithm (room versions 1-11, rooms section "Redactions"): which content keys
 * survive, per event type. Returns undefined for "keep all content".
 */
function keptContentKeys(type: string, roomVersion: number): string[] | undefined {
  const v11 = roomVersion >= 11;
  switch (type) {
    case "m.room.member":
      if (v11) return ["membership", "join_authorised_via_users_server", "third_party_invite"];
      return roomVersion >= 9 ? ["membership", "join_authorised_via_users_server"] : ["membership"];
    case "m.room.create":
      return v11 ? undefined : ["creator"];
    case "m.room.join_rules":
      return roomVersion >= 8 ? ["join_rule", "allow"] : ["join_rule"];
    case "m.room.power_levels": {
      const keys = [
        "ban",
        "events",
        "events_default",
        "kick",
        "redact",
        "state_default",
        "users",
        "users_default",
      ];
      return v11 ? [...keys, "invite"] : keys;
    }
    case "m.room.history_visibility":
      return ["history_visibility"];
    case "m.room.aliases":
      return roomVersion <= 5 ? ["aliases"] : [];
    case "m.room.redaction":
      return v11 ? ["redacts"] : [];
    default:
      return [];
  }
}

/** Applies the redaction algorithm and returns a new event; `unsigned` is rebuilt by the caller. */
export function redactEvent(event: RoomEvent, roomVersion: number): RoomEvent {
  const keptTop = roomVersion >= 11 ? KEPT_TOP_LEVEL_V11 : KEPT_TOP_LEVEL_OLD;
  const source = event as unknown as JsonObject;
  const out: JsonObject = {};
  for (const key of keptTop) if (key in source) out[key] = source[key];
  const keys = keptContentKeys(event.type, roomVersion);
  if (keys === undefined) {
    out["content"] = { ...event.content };
  } else {
    const content: JsonObject = {};
    for (const key of keys) if (key in event.content) content[key] = event.content[key];
    // In v11 only the `signed` part of a member event's third_party_invite survives.
    if (event.type === "m.room.member" && roomVersion >= 11) {
      const invite = content["third_party_invite"];
      if (invite !== undefined) {
        const signed = (invite as JsonObject)["signed"];
        if (signed === undefined) delete content["third_party_invite"];
        else content["third_party_invite"] = { signed };
      }
    }
    out["content"] = content;
  }
  return out as unknown as RoomEvent;
}

/** Sync and the appservice push omit nothing; sync's room-scoped sections omit `room_id`. */
export function withoutRoomId(event: RoomEvent): Omit<RoomEvent, "room_id"> {
  const { room_id: _roomId, ...rest } = event;
  return rest;
}

/** Stripped state (invite_state) keeps only type, state_key, sender and content. */
export function strippedState(event: RoomEvent): JsonObject {
  return {
    type: event.type,
    state_key: event.state_key,
    sender: event.sender,
    content: event.content,
  };
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
