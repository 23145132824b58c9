import { xml, type XmlElement } from "../codec/xml.js";
import type { RawStanzaError, StanzaErrorType } from "./errors.js";

const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

const ERROR_TYPES: readonly StanzaErrorType[] = ["auth", "cancel", "continue", "modify", "wait"];

/** Child elements of `el`, skipping text nodes. */
export function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== "string");
}

/** The namespace declared on the element itself, else inherited from its parents. */
export function namespaceOf(el: XmlElement): string | undefined {
  const own = el.attrs.xmlns;
  return typeof own === "string" ? own : el.getNS();
}

export function attr(el: XmlElement, name: string): string | undefined {
  const value = el.attrs[name];
  return typeof value === "string" ? value : undefined;
}

/** The domain part of a JID (`local@domain/resource`), lowercased. */
export function domainOf(jid: string): string {
  const at = jid.indexOf("@");
  const slash = jid.indexOf("/", at + 1);
  const domain = jid.slice(at + 1, slash === -1 ? undefined : slash);
  return domain.toLowerCase();
}

/**
 * Reads the `<error>` child of an error stanza (RFC 6120 §8.3). Lenient by design: whatever the
 * peer sent, the caller gets a value, with `undefined-condition` standing in for a missing one.
 */
export function decodeStanzaError(stanza: XmlElement): RawStanzaError {
  const element = childElements(stanza).find((c) => c.name === "error");
  if (element === undefined) {
    return {
      type: "cancel",
      condition: "undefined-condition",
      appCondition: undefined,
      text: undefined,
      element,
    };
  }
  const declared = attr(element, "type");
  const type = ERROR_TYPES.find((t) => t === declared) ?? "cancel";
  let condition: string | undefined;
  let text: string | undefined;
  let appCondition: XmlElement | undefined;
  for (const child of childElements(element)) {
    if (namespaceOf(child) === NS_STANZAS) {
      if (child.name === "text") text ??= child.getText();
      else condition ??= child.name;
    } else {
      appCondition ??= child;
    }
  }
  return { type, condition: condition ?? "undefined-condition", appCondition, text, element };
}

/** Builds `<error type>` with a standard condition, an optional app condition and text. */
export function stanzaErrorElement(error: {
  type: StanzaErrorType;
  condition: string;
  appCondition?: XmlElement | undefined;
  text?: string | undefined;
}): XmlElement {
  return xml(
    "error",
    { type: error.type },
    xml(error.condition, { xmlns: NS_STANZAS }),
    error.text === undefined ? undefined : xml("text", { xmlns: NS_STANZAS }, error.text),
    error.appCondition,
  );
}
