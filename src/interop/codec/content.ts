import type { BareJid, MessageId } from "../../util/ids.js";
import { CodecError } from "./codec-error.js";
import { decodeMedia, encodeMedia, type MediaContent } from "./content-media.js";
import { DEFAULT_LIMITS } from "./limits.js";
import { NS } from "./namespaces.js";
import {
  encodeBase64,
  formatDecimal,
  parseBase64,
  parseDecimal,
  parseGroupJid,
  parseInteger,
  parseMessageId,
  parseUserJid,
} from "./primitives.js";
import {
  childrenNamed,
  elementChildren,
  nsOf,
  optionalChild,
  parsedAttr,
  pathOf,
  requiredAttr,
  requiredEnumAttr,
  requiredParsedAttr,
  textOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

export { sanitizeFilename, type MediaContent } from "./content-media.js";

/** Content elements of §13. Anything not understood is kept as `unknown` (§7.5), never thrown. */

export const CALL_MEDIA = ["audio", "video"] as const;
export const CALL_OUTCOMES = ["missed", "declined", "ended", "no-answer"] as const;
export const DISAPPEARING_TIMERS = [0, 86400, 604800, 7776000] as const;

export type ContentElement =
  | { kind: "body"; text: string }
  | { kind: "media"; media: MediaContent }
  | { kind: "sender-key"; group: BareJid; skdm: Uint8Array }
  | { kind: "reply"; id: MessageId; author: BareJid; quote: string | undefined }
  | { kind: "reactions"; id: MessageId; author: BareJid; reactions: string[] }
  | { kind: "replace"; id: MessageId }
  | { kind: "retract"; id: MessageId; author: BareJid | undefined }
  | {
      kind: "location";
      lat: number;
      lon: number;
      accuracy: number | undefined;
      name: string | undefined;
      address: string | undefined;
    }
  | { kind: "contact"; vcards: string[] }
  | { kind: "disappearing"; timer: number }
  | { kind: "expire"; timer: number }
  | { kind: "nick"; nick: string }
  | {
      kind: "call";
      callId: string;
      media: (typeof CALL_MEDIA)[number];
      outcome: (typeof CALL_OUTCOMES)[number];
      duration: number | undefined;
      initiator: BareJid | undefined;
    }
  | { kind: "fallback"; text: string }
  /** Not understood: unknown name or namespace, unknown enumerated value, or a broken rule. */
  | {
      kind: "unknown";
      name: string;
      ns: string | undefined;
      reason: string;
      /** Where a broken rule was found (the CodecError's path), e.g. `.../@url`. */
      path?: string;
    };

export interface ContentLimits {
  maxBodyBytes: number;
  maxThumbnailBytes: number;
  maxReactions: number;
}

export const DEFAULT_CONTENT_LIMITS: ContentLimits = {
  maxBodyBytes: DEFAULT_LIMITS["max-body-bytes"],
  maxThumbnailBytes: DEFAULT_LIMITS["max-thumbnail-bytes"],
  maxReactions: DEFAULT_LIMITS["max-reactions"],
};

const MAX_QUOTE_CHARS = 256;
const MAX_NICK_CHARS = 64;
const MAX_REACTION_BYTES = 32;
const MAX_VCARDS = 10;
const MAX_VCARD_BYTES = 8192;

const chars = (s: string): number => [...s].length;
const bytes = (s: string): number => Buffer.byteLength(s, "utf8");
const uint = (v: string, p: string): number => parseInteger(v, p);

function broken(el: XmlElement, message: string): never {
  throw new CodecError(message, { path: pathOf(el) });
}

/** Decodes the children of `<content>`, each on its own: one broken element never sinks the rest. */
export function decodeContent(
  content: XmlElement,
  limits: ContentLimits = DEFAULT_CONTENT_LIMITS,
): ContentElement[] {
  return elementChildren(content).map((el) => {
    const ns = nsOf(el);
    if (ns !== NS.content) return { kind: "unknown", name: el.getName(), ns, reason: "namespace" };
    try {
      return decodeContentElement(el, limits);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      return { kind: "unknown", name: el.getName(), ns, reason: err.message, path: err.path };
    }
  });
}

function decodeContentElement(el: XmlElement, limits: ContentLimits): ContentElement {
  const name = el.getName();
  switch (name) {
    case "body": {
      const text = textOf(el);
      if (bytes(text) > limits.maxBodyBytes) broken(el, "body above max-body-bytes");
      return { kind: "body", text };
    }
    case "media":
      return { kind: "media", media: decodeMedia(el, limits.maxThumbnailBytes) };
    case "sender-key":
      return {
        kind: "sender-key",
        group: requiredParsedAttr(el, "group", (v, p) => parseGroupJid(v, p)),
        skdm: parseBase64(textOf(el), `${pathOf(el)}/text()`),
      };
    case "reply": {
      const quote = optionalChild(el, "quote", NS.content);
      const quoteText = quote === undefined ? undefined : textOf(quote);
      if (quoteText !== undefined && chars(quoteText) > MAX_QUOTE_CHARS)
        broken(el, "quote too long");
      return { kind: "reply", ...ref(el), quote: quoteText };
    }
    case "reactions": {
      const reactions = childrenNamed(el, "reaction", NS.content).map(textOf);
      if (reactions.length > limits.maxReactions) broken(el, "more than max-reactions");
      if (reactions.some((r) => r.length === 0 || bytes(r) > MAX_REACTION_BYTES)) {
        broken(el, "reaction empty or above 32 bytes");
      }
      return { kind: "reactions", ...ref(el), reactions };
    }
    case "replace":
      return { kind: "replace", id: requiredParsedAttr(el, "id", parseMessageId) };
    case "retract":
      return {
        kind: "retract",
        id: requiredParsedAttr(el, "id", parseMessageId),
        author: parsedAttr(el, "author", parseUserJid),
      };
    case "location":
      return decodeLocation(el);
    case "contact": {
      const vcards = childrenNamed(el, "vcard", NS.content).map(textOf);
      if (vcards.length < 1 || vcards.length > MAX_VCARDS) broken(el, "contact needs 1-10 vCards");
      if (vcards.some((v) => bytes(v) > MAX_VCARD_BYTES)) broken(el, "vCard above 8192 bytes");
      return { kind: "contact", vcards };
    }
    case "disappearing":
    case "expire": {
      const timer = requiredParsedAttr(el, "timer", uint);
      if (!(DISAPPEARING_TIMERS as readonly number[]).includes(timer)) broken(el, "unknown timer");
      return { kind: name, timer };
    }
    case "nick": {
      const nick = textOf(el);
      if (chars(nick) > MAX_NICK_CHARS) broken(el, "nick above 64 characters");
      return { kind: "nick", nick };
    }
    case "call":
      return decodeCall(el);
    case "fallback":
      return { kind: "fallback", text: textOf(el) };
    default:
      return { kind: "unknown", name, ns: NS.content, reason: "element" };
  }
}

function ref(el: XmlElement): { id: MessageId; author: BareJid } {
  return {
    id: requiredParsedAttr(el, "id", parseMessageId),
    author: requiredParsedAttr(el, "author", parseUserJid),
  };
}

function decodeLocation(el: XmlElement): ContentElement {
  const lat = requiredParsedAttr(el, "lat", parseDecimal);
  const lon = requiredParsedAttr(el, "lon", parseDecimal);
  if (lat < -90 || lat > 90 || lon < -180 || lon > 180) broken(el, "coordinates out of range");
  const name = optionalChild(el, "name", NS.content);
  const address = optionalChild(el, "address", NS.content);
  return {
    kind: "location",
    lat,
    lon,
    accuracy: parsedAttr(el, "accuracy", uint),
    name: name === undefined ? undefined : textOf(name),
    address: address === undefined ? undefined : textOf(address),
  };
}

function decodeCall(el: XmlElement): ContentElement {
  const callId = requiredAttr(el, "call-id");
  if (callId.length === 0 || callId.length > 128) broken(el, "invalid call-id");
  const outcome = requiredEnumAttr(el, "outcome", CALL_OUTCOMES);
  const duration = parsedAttr(el, "duration", uint);
  if (outcome === "ended" && duration === undefined) broken(el, "ended call without duration");
  return {
    kind: "call",
    callId,
    media: requiredEnumAttr(el, "media", CALL_MEDIA),
    outcome,
    duration,
    initiator: parsedAttr(el, "initiator", parseUserJid),
  };
}

const c = (
  name: string,
  attrs: Record<string, string | number | undefined> = {},
  ...children: (XmlElement | string | undefined)[]
): XmlElement => xml(name, { xmlns: NS.content, ...attrs }, ...children);

/** Encodes one content element; `unknown` entries cannot be encoded and are skipped (undefined). */
export function encodeContentElement(e: ContentElement): XmlElement | undefined {
  switch (e.kind) {
    case "body":
      return c("body", {}, e.text);
    case "media":
      return encodeMedia(e.media);
    case "sender-key":
      return c("sender-key", { group: e.group }, encodeBase64(e.skdm));
    case "reply":
      return c(
        "reply",
        { id: e.id, author: e.author },
        e.quote === undefined ? undefined : xml("quote", {}, e.quote),
      );
    case "reactions":
      return xml(
        "reactions",
        { xmlns: NS.content, id: e.id, author: e.author },
        e.reactions.map((r) => xml("reaction", {}, r)),
      );
    case "replace":
      return c("replace", { id: e.id });
    case "retract":
      return c("retract", { id: e.id, author: e.author });
    case "location":
      return c(
        "location",
        { lat: formatDecimal(e.lat), lon: formatDecimal(e.lon), accuracy: e.accuracy },
        e.name === undefined ? undefined : xml("name", {}, e.name),
        e.address === undefined ? undefined : xml("address", {}, e.address),
      );
    case "contact":
      return xml(
        "contact",
        { xmlns: NS.content },
        e.vcards.map((v) => xml("vcard", {}, v)),
      );
    case "disappearing":
    case "expire":
      return c(e.kind, { timer: e.timer });
    case "nick":
      return c("nick", {}, e.nick);
    case "call":
      return c("call", {
        "call-id": e.callId,
        media: e.media,
        outcome: e.outcome,
        duration: e.duration,
        initiator: e.initiator,
      });
    case "fallback":
      return c("fallback", {}, e.text);
    case "unknown":
      return undefined;
  }
}
