/**
 * Branded identifier types. A brand makes a room id impossible to pass where a JID is expected,
 * at no run-time cost. Constructors validate; `as` casts are reserved for values that were
 * validated elsewhere (database rows we wrote ourselves).
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type MatrixUserId = Brand<string, "MatrixUserId">;
export type RoomId = Brand<string, "RoomId">;
export type EventId = Brand<string, "EventId">;
export type Jid = Brand<string, "Jid">;
export type BareJid = Brand<string, "BareJid">;
export type DeviceId = Brand<number, "DeviceId">;
export type MessageId = Brand<string, "MessageId">;
export type StanzaId = Brand<string, "StanzaId">;
/**
 * A contact as users type and read it on the network (interop: an E.164 phone number; another
 * network: a handle such as `alice@loop`). The network's IdentifierKind (core/network.ts) parses
 * and formats it. Opaque to the core and to db/.
 */
export type ContactAddress = string & { readonly __contactAddress: true };
/** A phone number is the address of the phone-numbered networks, so it is one. */
export type PhoneNumber = Brand<string, "PhoneNumber"> & ContactAddress;
/**
 * A contact on the remote network, as the connector names it (interop: a bare JID). Opaque to the
 * core and to db/; defined here, not in core/network.ts, so db/ need not import the core.
 */
export type RemoteUserId = string & { readonly __remoteUser: true };
/**
 * A group conversation on the remote network (interop: the group's bare JID at `g.wa.example`).
 * Opaque to the core and to db/, like RemoteUserId.
 */
export type RemoteGroupId = string & { readonly __remoteGroup: true };
/** Where a message goes or comes from: a contact (1:1) or a group. */
export type RemoteChatId = RemoteUserId | RemoteGroupId;
/** A message on the remote network, unique per author (interop: the origin-id). */
export type RemoteMessageId = string & { readonly __remoteMessage: true };

const MATRIX_USER_ID = /^@[^:\s]+:[^\s]+$/;
const ROOM_ID = /^![^\s]+$/;
const EVENT_ID = /^\$[^\s]+$/;
/** E.164 with leading `+`: 8-15 digits, first digit not 0 (PROTOCOL.md §2). */
const E164 = /^\+[1-9][0-9]{7,14}$/;
/** origin-id and stanza-id syntax (PROTOCOL.md §2). */
const MESSAGE_ID = /^[A-Za-z0-9._-]{1,64}$/;

export class InvalidIdentifierError extends Error {
  constructor(
    readonly kind: string,
    readonly value: unknown,
  ) {
    super(`invalid ${kind}: ${JSON.stringify(value)}`);
    this.name = "InvalidIdentifierError";
  }
}

function check<T>(kind: string, re: RegExp, value: string): T {
  if (!re.test(value)) throw new InvalidIdentifierError(kind, value);
  return value as T;
}

export const matrixUserId = (v: string): MatrixUserId => check("Matrix user id", MATRIX_USER_ID, v);
export const roomId = (v: string): RoomId => check("room id", ROOM_ID, v);
export const eventId = (v: string): EventId => check("event id", EVENT_ID, v);
export const phoneNumber = (v: string): PhoneNumber => check("phone number", E164, v);
export const messageId = (v: string): MessageId => check("message id", MESSAGE_ID, v);

export function deviceId(v: number): DeviceId {
  // PROTOCOL.md §5.2: devices are allocated in 1..127 in this version.
  if (!Number.isInteger(v) || v < 1 || v > 127) throw new InvalidIdentifierError("device id", v);
  return v as DeviceId;
}

export const isPhoneNumber = (v: string): v is PhoneNumber => E164.test(v);
export const isMessageId = (v: string): v is MessageId => MESSAGE_ID.test(v);
export const isMatrixUserId = (v: string): v is MatrixUserId => MATRIX_USER_ID.test(v);
