import type { BareJid, PhoneNumber } from "../../util/ids.js";
import { CodecError } from "./codec-error.js";
import { NS } from "./namespaces.js";
import {
  formatTimestamp,
  parseInteger,
  parsePhone,
  parseTimestamp,
  parseUserJid,
} from "./primitives.js";
import {
  attrPath,
  expect,
  fail,
  optionalAttr,
  optionalChild,
  optionalEnumAttr,
  requiredAttr,
  requiredParsedAttr,
  textOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/** Identity: phone verification, binding and handle (§9). */

const CHANNELS = ["sms", "voice"] as const;
export type VerificationChannel = (typeof CHANNELS)[number];
export type UnboundReason = "rebound" | "revoked" | "unbind";

export interface RequestCode {
  phone: PhoneNumber;
  channel: VerificationChannel;
  lang: string | undefined;
}
export interface CodeSent {
  phone: PhoneNumber;
  length: number;
  expires: Date;
  resendAfter: number;
}
export interface ConfirmCode {
  phone: PhoneNumber;
  code: string;
}
export interface Bound {
  phone: PhoneNumber;
  jid: BareJid;
}
export interface Unbound {
  phone: PhoneNumber;
  /** Unknown reasons of later versions are kept as sent. */
  reason: UnboundReason | (string & {});
}

/** A malformed number in a verification request is `bad-request` + `<phone-invalid/>` (§9.1 r5). */
function verificationPhone(el: XmlElement): PhoneNumber {
  const value = requiredAttr(el, "phone");
  try {
    return parsePhone(value, attrPath(el, "phone"));
  } catch (err) {
    throw new CodecError(`invalid phone number ${JSON.stringify(value.slice(0, 40))}`, {
      path: attrPath(el, "phone"),
      appCondition: "phone-invalid",
      cause: err,
    });
  }
}

const phoneAttr = (el: XmlElement): PhoneNumber => requiredParsedAttr(el, "phone", parsePhone);

export function encodeRequestCode(r: RequestCode): XmlElement {
  return xml("request-code", {
    xmlns: NS.identity,
    phone: r.phone,
    channel: r.channel,
    lang: r.lang,
  });
}

export function decodeRequestCode(el: XmlElement): RequestCode {
  expect(el, "request-code", NS.identity);
  const lang = optionalAttr(el, "lang");
  if (lang !== undefined && !/^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/.test(lang)) {
    fail(el, "invalid BCP 47 tag", "lang");
  }
  return {
    phone: verificationPhone(el),
    channel: optionalEnumAttr(el, "channel", CHANNELS) ?? "sms",
    lang,
  };
}

export function encodeCodeSent(c: CodeSent): XmlElement {
  return xml("code-sent", {
    xmlns: NS.identity,
    phone: c.phone,
    length: c.length,
    expires: formatTimestamp(c.expires),
    "resend-after": c.resendAfter,
  });
}

export function decodeCodeSent(el: XmlElement): CodeSent {
  expect(el, "code-sent", NS.identity);
  return {
    phone: phoneAttr(el),
    length: requiredParsedAttr(el, "length", (v, p) => parseInteger(v, p, { min: 1, max: 32 })),
    expires: requiredParsedAttr(el, "expires", parseTimestamp),
    resendAfter: requiredParsedAttr(el, "resend-after", parseInteger),
  };
}

export function encodeConfirmCode(c: ConfirmCode): XmlElement {
  return xml("confirm-code", { xmlns: NS.identity, phone: c.phone, code: c.code });
}

export function decodeConfirmCode(el: XmlElement): ConfirmCode {
  expect(el, "confirm-code", NS.identity);
  const code = requiredAttr(el, "code");
  if (!/^[0-9]{1,32}$/.test(code)) fail(el, "code is not decimal digits", "code");
  return { phone: verificationPhone(el), code };
}

export function encodeBound(b: Bound): XmlElement {
  return xml("bound", { xmlns: NS.identity, phone: b.phone, jid: b.jid });
}

export function decodeBound(el: XmlElement): Bound {
  expect(el, "bound", NS.identity);
  return { phone: phoneAttr(el), jid: requiredParsedAttr(el, "jid", parseUserJid) };
}

/** `<binding/>` query, and its result: `phone` absent when the JID has no binding. */
export function encodeBinding(phone?: PhoneNumber): XmlElement {
  return xml("binding", { xmlns: NS.identity, phone });
}

export function decodeBinding(el: XmlElement): { phone: PhoneNumber | undefined } {
  expect(el, "binding", NS.identity);
  const phone = optionalAttr(el, "phone");
  return { phone: phone === undefined ? undefined : phoneAttr(el) };
}

export const encodeUnbind = (): XmlElement => xml("unbind", { xmlns: NS.identity });

export function decodeUnbind(el: XmlElement): true {
  expect(el, "unbind", NS.identity);
  return true;
}

export function encodeUnbound(u: Unbound): XmlElement {
  return xml("unbound", { xmlns: NS.identity, phone: u.phone, reason: u.reason });
}

export function decodeUnbound(el: XmlElement): Unbound {
  expect(el, "unbound", NS.identity);
  return { phone: phoneAttr(el), reason: requiredAttr(el, "reason") };
}

const HANDLE_FORBIDDEN = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;
const DECIMAL_DIGIT = /\p{Nd}/gu;

/**
 * Why a handle must be refused with `handle-invalid` (§9.2), or undefined if its text is
 * acceptable. Uniqueness within the provider is the caller's check, on `handleKey`.
 */
export function handleProblem(handle: string): string | undefined {
  const chars = [...handle];
  if (chars.length === 0) return "empty";
  if (chars.length > 64) return "longer than 64 characters";
  if (HANDLE_FORBIDDEN.test(handle)) return "forbidden character";
  if (handle.startsWith("+")) return "starts with +";
  const digits = handle.match(DECIMAL_DIGIT)?.length ?? 0;
  if (digits > 4 || digits * 2 > chars.length) return "too many digits";
  return undefined;
}

/** Comparison key for handle uniqueness: NFKC case folding, approximated by lowercasing. */
export const handleKey = (handle: string): string =>
  handle.normalize("NFKC").toLowerCase().normalize("NFKC");

/** `<profile><handle>` (§9.2); the gatekeeper judges the handle's content, the codec only reads it. */
export function encodeProfile(p: { handle: string | undefined }): XmlElement {
  return xml(
    "profile",
    { xmlns: NS.identity },
    p.handle === undefined ? undefined : xml("handle", {}, p.handle),
  );
}

export function decodeProfile(el: XmlElement): { handle: string | undefined } {
  expect(el, "profile", NS.identity);
  const handle = optionalChild(el, "handle", NS.identity);
  return { handle: handle === undefined ? undefined : textOf(handle) };
}
