import {
  buildBounce,
  buildBounceFor,
  CodecError,
  type StanzaError,
  type XmlElement,
} from "../../src/interop/codec/index.js";

/**
 * The bounce for any provider stanza (§15.2), even one whose `<origin-id>` cannot be read (a
 * second one, say): then only the id and addresses are echoed.
 */
export function bounceFor(stanza: XmlElement, error: StanzaError): XmlElement {
  try {
    return buildBounceFor(stanza, error);
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    const attr = (name: string): string | undefined =>
      typeof stanza.attrs[name] === "string" ? stanza.attrs[name] : undefined;
    return buildBounce({ id: attr("id"), from: attr("from"), to: attr("to") }, error);
  }
}
