import {
  isMessageId,
  isPhoneNumber,
  type MessageId,
  type PhoneNumber,
  type StanzaId,
  type DeviceId,
} from "../../util/ids.js";
import { CodecError } from "./codec-error.js";

/**
 * The value encodings of PROTOCOL.md §2. Every parser takes the raw text and the path of the node
 * it came from, and throws CodecError (condition `bad-request`) on anything outside the grammar.
 */

export { CodecError, tryDecode } from "./codec-error.js";
export * from "./jid.js";

const bad = (what: string, value: string, path: string): CodecError =>
  new CodecError(`invalid ${what} ${JSON.stringify(value.slice(0, 80))}`, { path });

// --- base64 -------------------------------------------------------------------------------------

const XML_WHITESPACE = /[ \t\r\n]+/g;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * RFC 4648 §4 base64 with padding. XML whitespace is ignored (§2); anything else outside the
 * alphabet, wrong padding, or non-zero padding bits (a second spelling of the same bytes) is
 * malformed.
 */
export function parseBase64(text: string, path: string): Uint8Array {
  const compact = text.replace(XML_WHITESPACE, "");
  if (!BASE64.test(compact)) throw bad("base64", text, path);
  const bytes = Buffer.from(compact, "base64");
  if (bytes.toString("base64") !== compact) throw bad("base64 (non-zero padding bits)", text, path);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** base64 of exactly `length` bytes (keys, hashes). */
export function parseBase64Length(text: string, length: number, path: string): Uint8Array {
  const bytes = parseBase64(text, path);
  if (bytes.length !== length) {
    throw new CodecError(`expected ${length} bytes of base64, got ${bytes.length}`, { path });
  }
  return bytes;
}

// --- timestamps ---------------------------------------------------------------------------------

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/** XEP-0082 DateTime in UTC; the fraction is optional on input (§2) and truncated to milliseconds. */
export function parseTimestamp(text: string, path: string): Date {
  const m = DATETIME.exec(text);
  if (m === null) throw bad("timestamp", text, path);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Number((m[7] ?? "0").padEnd(3, "0").slice(0, 3));
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
  // Date.UTC rolls over out-of-range fields (Feb 30 -> Mar 2); a round trip exposes them.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  ) {
    throw bad("timestamp", text, path);
  }
  return date;
}

/** `YYYY-MM-DDTHH:MM:SS.sssZ`, the form senders must emit (§2). */
export function formatTimestamp(date: Date): string {
  const year = date.getUTCFullYear();
  if (!Number.isFinite(date.getTime()) || year < 0 || year > 9999) {
    throw new CodecError(`timestamp out of range: ${String(date)}`, { path: "(encode)" });
  }
  return date.toISOString();
}

// --- numbers and booleans -----------------------------------------------------------------------

const INTEGER = /^(?:0|[1-9][0-9]*)$/;

/** Decimal ASCII without sign or leading zeros, within [min, max] (default: any safe integer). */
export function parseInteger(
  text: string,
  path: string,
  range: { min?: number; max?: number } = {},
): number {
  if (!INTEGER.test(text) || text.length > 16) throw bad("integer", text, path);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw bad("integer", text, path);
  if (value < (range.min ?? 0) || value > (range.max ?? Number.MAX_SAFE_INTEGER)) {
    throw new CodecError(
      `integer ${text} outside ${range.min ?? 0}..${range.max ?? Number.MAX_SAFE_INTEGER}`,
      { path },
    );
  }
  return value;
}

const DECIMAL = /^-?[0-9]+(?:\.[0-9]{1,7})?$/;

/** Optional `-`, digits, optionally `.` and 1-7 digits (§2). */
export function parseDecimal(text: string, path: string): number {
  if (!DECIMAL.test(text) || text.length > 32) throw bad("decimal", text, path);
  return Number(text);
}

/** Shortest decimal form with at most 7 fraction digits. */
export function formatDecimal(value: number): string {
  if (!Number.isFinite(value)) {
    throw new CodecError(`not a finite decimal: ${value}`, { path: "(encode)" });
  }
  const fixed = value.toFixed(7).replace(/\.?0+$/, "");
  return fixed === "-0" ? "0" : fixed;
}

export function parseBoolean(text: string, path: string): boolean {
  switch (text) {
    case "true":
    case "1":
      return true;
    case "false":
    case "0":
      return false;
    default:
      throw bad("boolean", text, path);
  }
}

export const formatBoolean = (value: boolean): string => (value ? "true" : "false");

// --- identifiers --------------------------------------------------------------------------------

export function parsePhone(text: string, path: string): PhoneNumber {
  if (!isPhoneNumber(text)) throw bad("phone number", text, path);
  return text;
}

/** origin-id / message id syntax (§2). */
export function parseMessageId(text: string, path: string): MessageId {
  if (!isMessageId(text)) throw bad("message id", text, path);
  return text;
}

/** stanza-id syntax (§2); the same grammar as message ids. */
export function parseStanzaId(text: string, path: string): StanzaId {
  if (!isMessageId(text)) throw bad("stanza id", text, path);
  return text as string as StanzaId;
}

/**
 * Device ids in attributes. The syntax allows up to 2147483647, but devices are allocated in 1..127
 * (§5.2) and libsignal addresses accept nothing else, so the codec refuses larger ids at the edge.
 */
export function parseDeviceId(text: string, path: string): DeviceId {
  const value = parseInteger(text, path, { min: 1, max: 2147483647 });
  if (value > 127) {
    throw new CodecError(`device id ${value} outside 1..127 (§5.2)`, { path });
  }
  return value as DeviceId;
}
