/**
 * Total readers for Matrix event content, which is arbitrary JSON chosen by the sending client.
 * Nothing here throws: each reader answers `undefined` for "absent" and `INVALID` for "present
 * but unusable", so callers can tell a missing optional field from a malformed one.
 */
export const INVALID: unique symbol = Symbol("invalid");
export type Invalid = typeof INVALID;

export type JsonRecord = Readonly<Record<string, unknown>>;

export function isRecord(v: unknown): v is JsonRecord {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A field of a record; inherited and prototype keys never count. */
export function field(obj: JsonRecord, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

export function optString(
  obj: JsonRecord,
  key: string,
  maxLength = 65536,
): string | undefined | Invalid {
  const v = field(obj, key);
  if (v === undefined) return undefined;
  return typeof v === "string" && v.length <= maxLength ? v : INVALID;
}

export function optRecord(obj: JsonRecord, key: string): JsonRecord | undefined | Invalid {
  const v = field(obj, key);
  if (v === undefined) return undefined;
  return isRecord(v) ? v : INVALID;
}

/**
 * A finite number in [min, max], rounded to an integer: clients disagree on whether durations
 * and dimensions may be fractional, and nothing downstream wants fractions.
 */
export function optInteger(
  obj: JsonRecord,
  key: string,
  min: number,
  max: number,
): number | undefined | Invalid {
  const v = field(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) return INVALID;
  const n = Math.round(v);
  return n >= min && n <= max ? n : INVALID;
}

export const isInvalid = (v: unknown): v is Invalid => v === INVALID;

/** `$opaque` with no whitespace, the same rule as util/ids.ts `eventId`, without throwing. */
const EVENT_ID = /^\$[^\s]{1,254}$/;
export const isEventIdString = (v: unknown): v is string =>
  typeof v === "string" && EVENT_ID.test(v);

/** `mxc://<server-name>/<media-id>` (client-server spec, Matrix Content URIs). */
const MXC = /^mxc:\/\/[A-Za-z0-9.:\-[\]]{1,255}\/[A-Za-z0-9_-]{1,255}$/;
export const isMxcUri = (v: unknown): v is string => typeof v === "string" && MXC.test(v);
