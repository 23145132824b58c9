import type { BareJid, MessageId, StanzaId } from "../../util/ids.js";
import { NS } from "./namespaces.js";
import {
  formatTimestamp,
  parseBareJid,
  parseInteger,
  parseMessageId,
  parseStanzaId,
  parseTimestamp,
  parseUserJid,
} from "./primitives.js";
import { childrenNamed, expect, fail, parsedAttr, requiredParsedAttr } from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/** XEP-0359 ids and the delivery elements of §15. */

export const encodeOriginId = (id: MessageId): XmlElement =>
  xml("origin-id", { xmlns: NS.sid, id });

export function decodeOriginId(el: XmlElement): MessageId {
  expect(el, "origin-id", NS.sid);
  return requiredParsedAttr(el, "id", parseMessageId);
}

export interface StanzaIdElement {
  id: StanzaId;
  /** `wa.example` or `g.wa.example`: where the ack goes (§15.5). */
  by: BareJid;
}

export const encodeStanzaId = (s: StanzaIdElement): XmlElement =>
  xml("stanza-id", { xmlns: NS.sid, id: s.id, by: s.by });

export function decodeStanzaIdElement(el: XmlElement): StanzaIdElement {
  expect(el, "stanza-id", NS.sid);
  return {
    id: requiredParsedAttr(el, "id", parseStanzaId),
    by: requiredParsedAttr(el, "by", parseBareJid),
  };
}

export interface Accepted {
  originId: MessageId;
  stanzaId: StanzaId;
  stamp: Date;
  /** Absent for stanzas without `<encrypted>` (§15.1). */
  seq: number | undefined;
  /** The peer's bare JID (1:1) or the group JID. */
  conversation: BareJid;
}

export function encodeAccepted(a: Accepted): XmlElement {
  return xml("accepted", {
    xmlns: NS.delivery,
    "origin-id": a.originId,
    "stanza-id": a.stanzaId,
    stamp: formatTimestamp(a.stamp),
    seq: a.seq,
    conversation: a.conversation,
  });
}

export function decodeAccepted(el: XmlElement): Accepted {
  expect(el, "accepted", NS.delivery);
  return {
    originId: requiredParsedAttr(el, "origin-id", parseMessageId),
    stanzaId: requiredParsedAttr(el, "stanza-id", parseStanzaId),
    stamp: requiredParsedAttr(el, "stamp", parseTimestamp),
    seq: parsedAttr(el, "seq", parseInteger),
    conversation: requiredParsedAttr(el, "conversation", parseUserJid),
  };
}

export interface Meta {
  stamp: Date;
  seq: number | undefined;
}

export const encodeMeta = (m: Meta): XmlElement =>
  xml("meta", { xmlns: NS.delivery, stamp: formatTimestamp(m.stamp), seq: m.seq });

export function decodeMeta(el: XmlElement): Meta {
  expect(el, "meta", NS.delivery);
  return {
    stamp: requiredParsedAttr(el, "stamp", parseTimestamp),
    seq: parsedAttr(el, "seq", parseInteger),
  };
}

/** `<ack>` with 1 to `max-ack-items` items (§15.5). */
export function encodeAck(stanzaIds: readonly StanzaId[]): XmlElement {
  return xml(
    "ack",
    { xmlns: NS.delivery },
    stanzaIds.map((id) => xml("item", { "stanza-id": id })),
  );
}

export function decodeAck(el: XmlElement, maxItems?: number): StanzaId[] {
  expect(el, "ack", NS.delivery);
  const items = childrenNamed(el, "item", NS.delivery).map((i) =>
    requiredParsedAttr(i, "stanza-id", parseStanzaId),
  );
  if (items.length === 0) fail(el, "ack without items");
  if (maxItems !== undefined && items.length > maxItems) {
    fail(el, `ack with ${items.length} items exceeds max-ack-items ${maxItems}`);
  }
  return items;
}

/** A reference to a message: its authenticated id and its author's bare JID (§13, §15.7). */
export interface MessageRef {
  id: MessageId;
  author: BareJid;
}

export const encodeReceived = (r: MessageRef): XmlElement =>
  xml("received", { xmlns: NS.delivery, id: r.id, author: r.author });

export const encodeDisplayed = (r: MessageRef): XmlElement =>
  xml("displayed", { xmlns: NS.delivery, id: r.id, author: r.author });

export function decodeMessageRef(el: XmlElement, name: "received" | "displayed"): MessageRef {
  expect(el, name, NS.delivery);
  return {
    id: requiredParsedAttr(el, "id", parseMessageId),
    author: requiredParsedAttr(el, "author", parseUserJid),
  };
}

/**
 * All `<received>` of a stanza: 1 to `max-receipt-items`, all for messages of the same author
 * (§15.7).
 */
export function decodeReceipts(message: XmlElement, maxItems?: number): MessageRef[] {
  const els = childrenNamed(message, "received", NS.delivery);
  const refs = els.map((r) => decodeMessageRef(r, "received"));
  const first = refs[0];
  if (first === undefined) fail(message, "no <received>");
  if (maxItems !== undefined && refs.length > maxItems) {
    fail(message, `${refs.length} receipts exceed max-receipt-items ${maxItems}`);
  }
  refs.forEach((r, i) => {
    if (r.author !== first.author)
      fail(els[i] as XmlElement, "receipts for different authors", "author");
  });
  return refs;
}

export const encodeRequestAccepted = (jid: BareJid): XmlElement =>
  xml("request-accepted", { xmlns: NS.delivery, jid });

export function decodeRequestAccepted(el: XmlElement): BareJid {
  expect(el, "request-accepted", NS.delivery);
  return requiredParsedAttr(el, "jid", parseUserJid);
}

// --- chat states (§15.8) -------------------------------------------------------------------------

export type ChatState = "composing" | "paused";

export const encodeChatState = (state: ChatState): XmlElement =>
  xml(state, { xmlns: NS.chatstates });
