import { CodecError } from "./codec-error.js";
import type { InboundMessage } from "./message.js";
import { NS } from "./namespaces.js";
import { elementChildren, nsOf, pathOf } from "./read.js";
import type { XmlElement } from "./xml.js";

/**
 * Well-formedness checks the gatekeeper applies to provider messages (§15.1 step 2, §12.1), and the
 * E2EE check of step 3. Kept apart from `classifyMessage`, which both directions use.
 */

const TYPED_KINDS = new Set(["encrypted", "receipt", "displayed", "chat-state", "retry"]);

/**
 * `type` is `chat` or `groupchat` for encrypted messages, receipts, markers, typing and retries
 * (`groupchat` exactly when `to` is at `groupDomain`); acks carry none; every stanza but chat
 * states and acks carries an `<origin-id>` equal to `@id`; 1:1 receipts and markers name the bare
 * `to` as author (§15.7).
 */
export function checkProviderMessage(message: InboundMessage, groupDomain: string): void {
  const bad = (what: string, path: string): never => {
    throw new CodecError(what, { path });
  };
  const kind = message.payload.kind;
  if (TYPED_KINDS.has(kind)) {
    const expected = message.to?.domain === groupDomain ? "groupchat" : "chat";
    if (message.type !== expected) bad(`${kind} message needs type ${expected}`, "/message/@type");
  } else if (kind === "ack" && message.type !== undefined) {
    bad("ack with a type", "/message/@type");
  }
  if (kind !== "chat-state" && kind !== "ack") {
    if (message.originId === undefined) bad("missing <origin-id>", "/message/origin-id");
    if (message.originId !== message.id) bad("origin-id differs from @id", "/message/@id");
  }
  const p = message.payload;
  const refs = p.kind === "receipt" ? p.receipts : p.kind === "displayed" ? [p.marker] : [];
  if (message.type === "chat") {
    for (const ref of refs) {
      if (ref.author !== message.to?.bare)
        bad("receipt author is not the recipient", "/message/@to");
    }
  }
}

/**
 * Content outside `<encrypted>` (§12.1, E21): a `<body>` in any namespace, or any element in the
 * content or envelope namespace, as a child of the message. Returns the offending element.
 */
export function findUnencryptedContent(message: XmlElement): XmlElement | undefined {
  return elementChildren(message).find((child) => {
    const ns = nsOf(child);
    return child.getName() === "body" || ns === NS.content || ns === NS.envelope;
  });
}

/** The CodecError for §12.1's check: `policy-violation` + `<unencrypted/>`. */
export function unencryptedContentError(element: XmlElement): CodecError {
  return new CodecError("content outside <encrypted>", {
    path: pathOf(element),
    condition: "policy-violation",
    appCondition: "unencrypted",
  });
}
