import { randomInt } from "node:crypto";
import type { BareJid, MessageId } from "../../util/ids.js";
import { CodecError } from "./codec-error.js";
import {
  DEFAULT_CONTENT_LIMITS,
  decodeContent,
  encodeContentElement,
  type ContentElement,
  type ContentLimits,
} from "./content.js";
import { parseEnvelopeXml, type ParsedNode } from "./envelope-parser.js";
import { DEFAULT_LIMITS } from "./limits.js";
import { NS } from "./namespaces.js";
import { formatTimestamp, parseMessageId, parseTimestamp, parseUserJid } from "./primitives.js";
import { elementChildren, fail, is, requiredParsedAttr } from "./read.js";
import { isElement, xml, type XmlElement } from "./xml.js";

/** The encrypted plaintext envelope (§12.2). */

export interface Envelope {
  content: ContentElement[];
  /** The message id: equals the carrying stanza's origin-id. */
  id: MessageId;
  time: Date;
  /** Recipient bare JID (1:1) or group JID. */
  to: BareJid;
  from: BareJid;
}

interface EnvelopeOptions {
  /** `max-envelope-bytes`. */
  maxEnvelopeBytes?: number;
  content?: ContentLimits;
}

const RPAD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const MAX_RPAD = 200;
const CARDINALITY_ONE = ["content", "id", "time", "to", "from"] as const;

/** 0-200 random base64-alphabet characters of random length (§12.2). */
function randomRpadOf(): string {
  const length = randomInt(MAX_RPAD + 1);
  let out = "";
  for (let i = 0; i < length; i++) out += RPAD_ALPHABET[randomInt(RPAD_ALPHABET.length)];
  return out;
}

/**
 * Where pads come from. A test replaces `next` to choose pad lengths (a size estimate that only
 * holds for some random pads fails one run in five, not every run).
 */
export const rpadSource: { next: () => string } = { next: randomRpadOf };

/** 0-200 random base64-alphabet characters of random length (§12.2). */
export function randomRpad(): string {
  return rpadSource.next();
}

/**
 * Serializes an envelope to the exact string whose UTF-8 bytes are encrypted. `rpad` defaults to
 * a random pad; pass `false` to leave it out. Throws CodecError if the result exceeds
 * `max-envelope-bytes` (the sender must send less, §13.9).
 */
export function encodeEnvelope(
  env: Envelope,
  options: EnvelopeOptions & { rpad?: string | false } = {},
): string {
  const rpad = options.rpad === undefined ? randomRpad() : options.rpad;
  const root = xml(
    "envelope",
    { xmlns: NS.envelope },
    xml("content", {}, env.content.map(encodeContentElement)),
    rpad === false ? undefined : xml("rpad", {}, rpad),
    xml("id", { value: env.id }),
    xml("time", { stamp: formatTimestamp(env.time) }),
    xml("to", { jid: env.to }),
    xml("from", { jid: env.from }),
  );
  const text = serialize(root);
  const max = options.maxEnvelopeBytes ?? DEFAULT_LIMITS["max-envelope-bytes"];
  const size = Buffer.byteLength(text, "utf8");
  if (size > max) {
    throw new CodecError(`envelope of ${size} bytes exceeds max-envelope-bytes ${max}`, {
      path: "/envelope",
      condition: "policy-violation",
    });
  }
  return text;
}

/**
 * Parses decrypted envelope bytes with the strict parser and checks the cardinalities of §12.2.
 * Any failure is a CodecError: the receiver discards the message without a receipt.
 */
export function decodeEnvelope(
  input: string | Uint8Array,
  options: EnvelopeOptions = {},
): Envelope {
  const parsed = parseEnvelopeXml(input, {
    maxBytes: options.maxEnvelopeBytes ?? DEFAULT_LIMITS["max-envelope-bytes"],
  });
  const root = toElement(parsed, undefined);
  if (root === undefined || !is(root, "envelope", NS.envelope)) {
    throw new CodecError("root is not <envelope> in urn:interop:envelope:0", { path: "/envelope" });
  }
  const children = new Map<string, XmlElement>();
  for (const child of elementChildren(root)) {
    const name = child.getName();
    if (!is(child, name, NS.envelope) || ![...CARDINALITY_ONE, "rpad"].includes(name)) continue;
    if (children.has(name)) fail(child, `second <${name}> in envelope`);
    children.set(name, child);
  }
  const get = (name: (typeof CARDINALITY_ONE)[number]): XmlElement => {
    const el = children.get(name);
    if (el === undefined) fail(root, `envelope without <${name}>`);
    return el;
  };
  return {
    content: decodeContent(get("content"), options.content ?? DEFAULT_CONTENT_LIMITS),
    id: requiredParsedAttr(get("id"), "value", parseMessageId),
    time: requiredParsedAttr(get("time"), "stamp", parseTimestamp),
    to: requiredParsedAttr(get("to"), "jid", parseUserJid),
    from: requiredParsedAttr(get("from"), "jid", parseUserJid),
  };
}

/**
 * The checks after decryption (§12.2): `from` is the authenticated sender, `to` the stanza's bare
 * `to` (or the group JID), `id` the stanza's origin-id.
 */
export function checkEnvelopeBinding(
  env: Envelope,
  expected: { from: BareJid; to: BareJid; originId: MessageId },
): void {
  for (const [field, got, want] of [
    ["from", env.from, expected.from],
    ["to", env.to, expected.to],
    ["id", env.id, expected.originId],
  ] as const) {
    if (got !== want) {
      throw new CodecError(`envelope ${field} ${got} does not match ${want}`, {
        path: `/envelope/${field}`,
      });
    }
  }
}

/**
 * The parser's tree as ltx elements, so that the decoders share one reading API. Each element
 * carries its resolved namespace; elements in no namespace cannot be protocol elements and are
 * dropped here, which is what §7.3 asks of unknown children anyway.
 */
function toElement(node: ParsedNode, parentNs: string | undefined): XmlElement | undefined {
  if (node.ns === undefined) return undefined;
  const attrs: Record<string, string> = {};
  for (const [name, value] of node.attrs) {
    if (name !== "xmlns") attrs[name] = value;
  }
  const children = node.children.map((c) => (typeof c === "string" ? c : toElement(c, node.ns)));
  return xml(
    node.name,
    { ...attrs, xmlns: node.ns === parentNs ? undefined : node.ns },
    ...children,
  );
}

// --- exact serialization ------------------------------------------------------------------------

const escapeText = (s: string): string =>
  s.replace(/[&<>\r]/g, (ch) =>
    ch === "\r" ? "&#13;" : ch === "&" ? "&amp;" : ch === "<" ? "&lt;" : "&gt;",
  );

const ATTR_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "'": "&apos;",
  '"': "&quot;",
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;",
};
const escapeAttr = (s: string): string =>
  s.replace(/[&<>'"\t\n\r]/g, (ch) => ATTR_ESCAPES[ch] ?? ch);

/**
 * Deterministic XML: single-quoted attributes in insertion order, empty elements self-closed, and
 * CR, tab and newline in attributes written as character references so that they survive parsing.
 */
function serialize(el: XmlElement): string {
  let out = `<${el.name}`;
  for (const [name, value] of Object.entries(el.attrs)) {
    if (value === undefined || value === null) continue;
    out += ` ${name}='${escapeAttr(String(value))}'`;
  }
  if (el.children.length === 0) return `${out}/>`;
  out += ">";
  for (const child of el.children) {
    out += isElement(child) ? serialize(child) : escapeText(String(child));
  }
  return `${out}</${el.name}>`;
}
