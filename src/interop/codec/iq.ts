import { decodeStanzaError, encodeStanzaError, type StanzaError } from "./errors.js";
import {
  fail,
  nsOf,
  optionalAttr,
  requiredAttr,
  requiredEnumAttr,
  elementChildren,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

const IQ_TYPES = ["get", "set", "result", "error"] as const;
type IqType = (typeof IQ_TYPES)[number];

export interface IqHeader {
  type: IqType;
  id: string;
  from?: string | undefined;
  to?: string | undefined;
}

/** An IQ split into header, payload (first child other than `<error>`) and decoded error. */
export interface DecodedIq {
  header: IqHeader;
  payload: XmlElement | undefined;
  error: StanzaError | undefined;
}

export function encodeIq(header: IqHeader, payload?: XmlElement): XmlElement {
  return xml("iq", { type: header.type, id: header.id, from: header.from, to: header.to }, payload);
}

/** An error answer to `request`: addresses swapped, same id (RFC 6120 §8.3.1). */
export function encodeIqError(request: IqHeader, error: StanzaError): XmlElement {
  return xml(
    "iq",
    { type: "error", id: request.id, from: request.to, to: request.from },
    encodeStanzaError(error),
  );
}

/** The result for `request`, with the addresses swapped. */
export function encodeIqResult(request: IqHeader, payload?: XmlElement): XmlElement {
  return encodeIq({ type: "result", id: request.id, from: request.to, to: request.from }, payload);
}

/**
 * Splits an `<iq>`. get/set carry exactly one payload (RFC 6120 §8.2.3); a result carries zero or
 * one; an error must carry `<error>`.
 */
export function decodeIq(el: XmlElement): DecodedIq {
  if (el.getName() !== "iq") fail(el, `expected <iq>, got <${el.getName()}>`);
  const type = requiredEnumAttr(el, "type", IQ_TYPES);
  const id = requiredAttr(el, "id");
  if (id.length === 0) fail(el, "empty IQ id", "id");
  const header: IqHeader = { type, id, from: optionalAttr(el, "from"), to: optionalAttr(el, "to") };
  const errorEls = elementChildren(el).filter(
    (c) => c.getName() === "error" && nsOf(c) === nsOf(el),
  );
  const payloads = elementChildren(el).filter((c) => !errorEls.includes(c));
  if (type === "error") {
    const errorEl = errorEls[0];
    if (errorEl === undefined) fail(el, "IQ error without <error>");
    return { header, payload: payloads[0], error: decodeStanzaError(errorEl) };
  }
  if ((type === "get" || type === "set") && payloads.length !== 1) {
    fail(el, `IQ ${type} must carry exactly one payload, got ${payloads.length}`);
  }
  if (type === "result" && payloads.length > 1) fail(el, "IQ result with more than one payload");
  return { header, payload: payloads[0], error: undefined };
}

/** The payload's `{namespace}name`, for dispatch tables. */
export function payloadKey(payload: XmlElement): string {
  return `{${nsOf(payload) ?? ""}}${payload.getName()}`;
}
