import type { MessageId } from "../../util/ids.js";
import { tryDecode } from "./codec-error.js";
import { encodeHelloRequestNotice } from "./core.js";
import {
  decodeOriginId,
  encodeAccepted,
  encodeAck,
  encodeChatState,
  encodeDisplayed,
  encodeMeta,
  encodeOriginId,
  encodeReceived,
  encodeStanzaId,
  type Accepted,
  type ChatState,
  type MessageRef,
  type Meta,
  type StanzaIdElement,
} from "./delivery.js";
import { encodeEncrypted, encodeRetryRequest, type Encrypted, type RetryRequest } from "./e2ee.js";
import { encodeStanzaError, type StanzaError } from "./errors.js";
import { encodeGroupSender, type GroupSender } from "./group-sender.js";
import { NS } from "./namespaces.js";
import { optionalAttr, optionalChild } from "./read.js";
import { xml, type XmlChild, type XmlElement } from "./xml.js";

/** Whole `<message>` stanzas, as each side sends them (§12, §15). */

type MessageType = "chat" | "groupchat";

interface Addressing {
  from: string;
  to: string;
}

/**
 * A provider stanza that carries an origin-id: `@id` equals it (§12.1), `type` is chat or
 * groupchat.
 */
interface Originated extends Addressing {
  type: MessageType;
  originId: MessageId;
}

export function encodeMessage(
  attrs: { id?: string; type?: string; from?: string; to?: string },
  ...children: XmlChild[]
): XmlElement {
  return xml(
    "message",
    { type: attrs.type, id: attrs.id, from: attrs.from, to: attrs.to },
    ...children,
  );
}

const originated = (m: Originated, payload: XmlChild): XmlElement =>
  encodeMessage(
    { type: m.type, id: m.originId, from: m.from, to: m.to },
    payload,
    encodeOriginId(m.originId),
  );

export const buildEncryptedMessage = (m: Originated & { encrypted: Encrypted }): XmlElement =>
  originated(m, encodeEncrypted(m.encrypted));

export const buildReceipt = (m: Originated & { receipts: readonly MessageRef[] }): XmlElement =>
  originated(m, m.receipts.map(encodeReceived));

export const buildDisplayed = (m: Originated & { marker: MessageRef }): XmlElement =>
  originated(m, encodeDisplayed(m.marker));

export const buildRetryRequest = (m: Originated & { retry: RetryRequest }): XmlElement =>
  originated(m, encodeRetryRequest(m.retry));

/** Typing carries no origin-id and no id (§15.8). */
export const buildChatState = (
  m: Addressing & { type: MessageType; state: ChatState },
): XmlElement => encodeMessage({ type: m.type, from: m.from, to: m.to }, encodeChatState(m.state));

/** From the provider domain JID to the `by` of the acknowledged stanza-ids; no type (§15.5). */
export const buildAck = (
  m: Addressing & { id: string; items: Parameters<typeof encodeAck>[0] },
): XmlElement => encodeMessage({ id: m.id, from: m.from, to: m.to }, encodeAck(m.items));

// --- gatekeeper side ----------------------------------------------------------------------------

export const buildAccepted = (m: Addressing & { id: string; accepted: Accepted }): XmlElement =>
  encodeMessage({ id: m.id, from: m.from, to: m.to }, encodeAccepted(m.accepted));

/**
 * A bounce of `original`: addresses swapped, same id, and of the payload only the origin-id
 * echoed (§15.2).
 */
export function buildBounce(
  original: {
    id?: string | undefined;
    from?: string | undefined;
    to?: string | undefined;
    originId?: MessageId | undefined;
  },
  error: StanzaError,
): XmlElement {
  return encodeMessage(
    { type: "error", id: original.id, from: original.to, to: original.from },
    original.originId === undefined ? undefined : encodeOriginId(original.originId),
    encodeStanzaError(error),
  );
}

/**
 * A queued delivery: the payload (an `<encrypted>`, a transport element or a notification), the
 * origin-id where there is one, the gatekeeper's stanza-id, and `<meta>`/`<sender>` where they
 * apply (§15.5, §15.6, §17.4).
 */
export function buildDelivery(
  m: Addressing & {
    id: string;
    type?: MessageType | undefined;
    payload: XmlChild;
    originId?: MessageId | undefined;
    stanzaId: StanzaIdElement;
    meta?: Meta | undefined;
    sender?: GroupSender | undefined;
  },
): XmlElement {
  return encodeMessage(
    { id: m.id, type: m.type, from: m.from, to: m.to },
    m.sender === undefined ? undefined : encodeGroupSender(m.sender),
    m.payload,
    m.originId === undefined ? undefined : encodeOriginId(m.originId),
    encodeStanzaId(m.stanzaId),
    m.meta === undefined ? undefined : encodeMeta(m.meta),
  );
}

/**
 * The bounce for a raw stanza that may not even decode (§15.1 step 2): its id and addresses as
 * they were, and its origin-id only if that one is valid.
 */
export function buildBounceFor(stanza: XmlElement, error: StanzaError): XmlElement {
  const originEl = optionalChild(stanza, "origin-id", NS.sid);
  const origin = originEl === undefined ? undefined : tryDecode(() => decodeOriginId(originEl));
  return buildBounce(
    {
      id: optionalAttr(stanza, "id"),
      from: optionalAttr(stanza, "from"),
      to: optionalAttr(stanza, "to"),
      originId: origin?.ok === true ? origin.value : undefined,
    },
    error,
  );
}

/** `<hello-request/>`: no stanza-id, not queued, not acknowledged (§8.2). */
export const buildHelloRequest = (m: Addressing & { id: string }): XmlElement =>
  encodeMessage({ id: m.id, from: m.from, to: m.to }, encodeHelloRequestNotice());
