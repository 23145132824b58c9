import type { BareJid, MessageId, StanzaId } from "../../util/ids.js";
import { decodeReportReceived, type ReportReceived } from "./abuse.js";
import { CodecError } from "./codec-error.js";
import { decodeHelloRequestNotice } from "./core.js";
import {
  decodeAccepted,
  decodeAck,
  decodeMessageRef,
  decodeMeta,
  decodeOriginId,
  decodeReceipts,
  decodeRequestAccepted,
  decodeStanzaIdElement,
  type Accepted,
  type ChatState,
  type MessageRef,
  type Meta,
  type StanzaIdElement,
} from "./delivery.js";
import { decodeEncrypted, decodeRetryRequest, type Encrypted, type RetryRequest } from "./e2ee.js";
import { decodeStanzaError, type StanzaError } from "./errors.js";
import { decodeGroupSender, type GroupSender } from "./group-sender.js";
import { decodeGroupEvent, type GroupEvent } from "./groups.js";
import { decodeUnbound, type Unbound } from "./identity.js";
import {
  decodeDevicesChanged,
  decodePreKeysLow,
  type DevicesChanged,
  type PreKeysLow,
} from "./key-notifications.js";
import { NS } from "./namespaces.js";
import { parseJid, type ParsedJid } from "./primitives.js";
import { attrPath, elementChildren, fail, nsOf, optionalAttr, optionalChild } from "./read.js";
import type { XmlElement } from "./xml.js";

/** Classification of an inbound `<message>` into one typed payload (§8.2, §11.7, §12, §15, §16). */

export type Notification =
  | { type: "unbound"; unbound: Unbound }
  | { type: "prekeys-low"; prekeysLow: PreKeysLow }
  | { type: "devices-changed"; devicesChanged: DevicesChanged }
  | { type: "request-accepted"; jid: BareJid }
  | { type: "report-received"; report: ReportReceived }
  | { type: "group-event"; event: GroupEvent };

type MessagePayload =
  | { kind: "encrypted"; encrypted: Encrypted }
  | { kind: "receipt"; receipts: MessageRef[] }
  | { kind: "displayed"; marker: MessageRef }
  | { kind: "chat-state"; state: ChatState }
  | { kind: "retry"; retry: RetryRequest }
  | { kind: "notification"; notification: Notification }
  | { kind: "accepted"; accepted: Accepted }
  | { kind: "bounce"; error: StanzaError }
  | { kind: "hello-request" }
  | { kind: "ack"; items: StanzaId[] }
  /** Only unknown payload: still acknowledged if it carries a stanza-id (§7.3). */
  | { kind: "unknown"; elements: string[] };

export interface InboundMessage {
  id: string | undefined;
  type: string | undefined;
  from: ParsedJid | undefined;
  to: ParsedJid | undefined;
  originId: MessageId | undefined;
  /**
   * Gatekeeper-set metadata. Honour it only when `from` is at a gatekeeper domain (§15.9); the
   * codec reports what the stanza carries.
   */
  stanzaId: StanzaIdElement | undefined;
  meta: Meta | undefined;
  sender: GroupSender | undefined;
  payload: MessagePayload;
}

interface ClassifyOptions {
  maxReceiptItems?: number;
  maxAckItems?: number;
}

type Detected = { key: string; decode: () => MessagePayload };

function detect(
  el: XmlElement,
  message: XmlElement,
  options: ClassifyOptions,
): Detected | undefined {
  const ns = nsOf(el);
  const name = el.getName();
  const one = (kind: string, decode: () => MessagePayload): Detected => ({ key: kind, decode });
  const notification = (decode: () => Notification): Detected =>
    one(`notification:${name}`, () => ({ kind: "notification", notification: decode() }));
  switch (`{${ns ?? ""}}${name}`) {
    case `{${NS.e2ee}}encrypted`:
      return one("encrypted", () => ({ kind: "encrypted", encrypted: decodeEncrypted(el) }));
    case `{${NS.e2ee}}retry`:
      return one("retry", () => ({ kind: "retry", retry: decodeRetryRequest(el) }));
    case `{${NS.delivery}}received`:
      return one("receipt", () => ({
        kind: "receipt",
        receipts: decodeReceipts(message, options.maxReceiptItems),
      }));
    case `{${NS.delivery}}displayed`:
      return one("displayed", () => ({
        kind: "displayed",
        marker: decodeMessageRef(el, "displayed"),
      }));
    case `{${NS.delivery}}accepted`:
      return one("accepted", () => ({ kind: "accepted", accepted: decodeAccepted(el) }));
    case `{${NS.delivery}}ack`:
      return one("ack", () => ({ kind: "ack", items: decodeAck(el, options.maxAckItems) }));
    case `{${NS.delivery}}request-accepted`:
      return notification(() => ({ type: "request-accepted", jid: decodeRequestAccepted(el) }));
    case `{${NS.chatstates}}composing`:
    case `{${NS.chatstates}}paused`:
      return one("chat-state", () => ({ kind: "chat-state", state: name as ChatState }));
    case `{${NS.core}}hello-request`:
      return one("hello-request", () => {
        decodeHelloRequestNotice(el);
        return { kind: "hello-request" };
      });
    case `{${NS.identity}}unbound`:
      return notification(() => ({ type: "unbound", unbound: decodeUnbound(el) }));
    case `{${NS.keys}}prekeys-low`:
      return notification(() => ({ type: "prekeys-low", prekeysLow: decodePreKeysLow(el) }));
    case `{${NS.keys}}devices-changed`:
      return notification(() => ({
        type: "devices-changed",
        devicesChanged: decodeDevicesChanged(el),
      }));
    case `{${NS.abuse}}report-received`:
      return notification(() => ({ type: "report-received", report: decodeReportReceived(el) }));
    case `{${NS.groups}}event`:
      return notification(() => ({ type: "group-event", event: decodeGroupEvent(el) }));
    default:
      return undefined;
  }
}

const METADATA = new Set([
  `{${NS.sid}}origin-id`,
  `{${NS.sid}}stanza-id`,
  `{${NS.delivery}}meta`,
  `{${NS.groups}}sender`,
]);

const jidAttr = (el: XmlElement, name: string): ParsedJid | undefined => {
  const value = optionalAttr(el, name);
  return value === undefined ? undefined : parseJid(value, attrPath(el, name));
};

/**
 * Decodes a `<message>` into its single payload. Two different payload kinds in one stanza are
 * `bad-request`; so is an `<encrypted>` whose `header/@sid` is not the sending device (§12.1).
 */
export function classifyMessage(el: XmlElement, options: ClassifyOptions = {}): InboundMessage {
  if (el.getName() !== "message") fail(el, `expected <message>, got <${el.getName()}>`);
  const originEl = optionalChild(el, "origin-id", NS.sid);
  const stanzaIdEl = optionalChild(el, "stanza-id", NS.sid);
  const metaEl = optionalChild(el, "meta", NS.delivery);
  const senderEl = optionalChild(el, "sender", NS.groups);
  const base = {
    id: optionalAttr(el, "id"),
    type: optionalAttr(el, "type"),
    from: jidAttr(el, "from"),
    to: jidAttr(el, "to"),
    originId: originEl === undefined ? undefined : decodeOriginId(originEl),
    stanzaId: stanzaIdEl === undefined ? undefined : decodeStanzaIdElement(stanzaIdEl),
    meta: metaEl === undefined ? undefined : decodeMeta(metaEl),
    sender: senderEl === undefined ? undefined : decodeGroupSender(senderEl),
  };
  if (base.type === "error") {
    const errorEl = elementChildren(el).find(
      (c) => c.getName() === "error" && nsOf(c) === nsOf(el),
    );
    if (errorEl === undefined) fail(el, "error message without <error>");
    return { ...base, payload: { kind: "bounce", error: decodeStanzaError(errorEl) } };
  }
  const found = new Map<string, Detected>();
  const unknown: string[] = [];
  for (const child of elementChildren(el)) {
    const detected = detect(child, el, options);
    if (detected !== undefined) {
      if (!found.has(detected.key)) found.set(detected.key, detected);
      else if (detected.key !== "receipt") fail(child, `second <${child.getName()}> payload`);
    } else if (!METADATA.has(`{${nsOf(child) ?? ""}}${child.getName()}`)) {
      unknown.push(`{${nsOf(child) ?? ""}}${child.getName()}`);
    }
  }
  if (found.size > 1) fail(el, `message with several payloads: ${[...found.keys()].join(", ")}`);
  const only = [...found.values()][0];
  const payload: MessagePayload =
    only === undefined ? { kind: "unknown", elements: unknown } : only.decode();
  const message = { ...base, payload };
  if (payload.kind === "encrypted") checkSendingDevice(el, message, payload.encrypted);
  return message;
}

function checkSendingDevice(
  el: XmlElement,
  message: Omit<InboundMessage, "payload">,
  e: Encrypted,
): void {
  const expected = message.sender?.device ?? deviceOfFrom(el, message.from);
  if (expected !== e.sid) {
    throw new CodecError(`header sid ${e.sid} is not the sending device ${expected}`, {
      path: "/message/encrypted/header/@sid",
    });
  }
}

function deviceOfFrom(el: XmlElement, from: ParsedJid | undefined): number {
  const resource = from?.resource;
  if (resource === undefined || !/^[1-9][0-9]{0,9}$/.test(resource)) {
    fail(el, "encrypted message not sent from a device JID", "from");
  }
  return Number(resource);
}
