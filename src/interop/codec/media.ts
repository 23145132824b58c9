import { CodecError } from "./codec-error.js";
import { NS } from "./namespaces.js";
import { formatTimestamp, parseInteger, parseTimestamp } from "./primitives.js";
import {
  attrPath,
  childrenNamed,
  expect,
  fail,
  requiredAttr,
  requiredChild,
  requiredEnumAttr,
  requiredParsedAttr,
  textOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/** Upload slots (§14.1). */

export const MEDIA_KINDS = ["image", "video", "audio", "document"] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];
const SLOT_HEADER_NAMES = ["Authorization", "Cookie", "Expires"] as const;
type SlotHeaderName = (typeof SLOT_HEADER_NAMES)[number];

export interface SlotRequest {
  kind: MediaKind;
  /** Exact byte length of the encrypted blob. */
  size: number;
}

interface Slot {
  expires: Date;
  put: { url: string; headers: { name: SlotHeaderName; value: string }[] };
  get: { url: string };
}

export function encodeSlotRequest(r: SlotRequest): XmlElement {
  return xml("request", { xmlns: NS.media, kind: r.kind, size: r.size });
}

/** Unknown kind or size 0 is `bad-request` (§14.1). */
export function decodeSlotRequest(el: XmlElement): SlotRequest {
  expect(el, "request", NS.media);
  return {
    kind: requiredEnumAttr(el, "kind", MEDIA_KINDS),
    size: requiredParsedAttr(el, "size", (v, p) => parseInteger(v, p, { min: 1 })),
  };
}

export function encodeSlot(s: Slot): XmlElement {
  return xml(
    "slot",
    { xmlns: NS.media, expires: formatTimestamp(s.expires) },
    xml(
      "put",
      { url: s.put.url },
      s.put.headers.map((h) => xml("header", { name: h.name }, h.value)),
    ),
    xml("get", { url: s.get.url }),
  );
}

export function decodeSlot(el: XmlElement): Slot {
  expect(el, "slot", NS.media);
  const put = requiredChild(el, "put", NS.media);
  const get = requiredChild(el, "get", NS.media);
  const names = new Set<string>();
  const headers = childrenNamed(put, "header", NS.media).map((h) => {
    const name = requiredEnumAttr(h, "name", SLOT_HEADER_NAMES);
    if (names.has(name)) fail(h, `header ${name} twice`, "name");
    names.add(name);
    const value = textOf(h);
    if (/[\r\n\0]/.test(value)) fail(h, "header value with a line break");
    return { name, value };
  });
  return {
    expires: requiredParsedAttr(el, "expires", parseTimestamp),
    put: { url: httpUrl(put), headers },
    get: { url: httpUrl(get) },
  };
}

/**
 * An absolute http(s) URL without userinfo (§14.2). Whether its origin is announced is checked
 * by the caller against the hello's `media-origin` list, with `originOf`.
 */
function httpUrl(el: XmlElement): string {
  const text = requiredAttr(el, "url");
  const url = parseUrl(text);
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new CodecError("invalid media URL", { path: attrPath(el, "url") });
  }
  if (url.username !== "" || url.password !== "") {
    throw new CodecError("media URL with userinfo", { path: attrPath(el, "url") });
  }
  return text;
}

function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** `scheme://host[:port]` of a URL as WHATWG serializes it, or undefined if it does not parse. */
export function originOf(url: string): string | undefined {
  return parseUrl(url)?.origin;
}
