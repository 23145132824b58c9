import { BridgeError, describeError } from "../../util/errors.js";
import { silentLogger, type Logger } from "../../util/log.js";
import { xml, type XmlElement } from "../codec/xml.js";
import type { StanzaErrorType } from "./errors.js";
import { attr, childElements, namespaceOf, stanzaErrorElement } from "./stanza-error.js";

const NS_PING = "urn:xmpp:ping";

interface IqRequest {
  readonly iq: XmlElement;
  /** The single child element of the IQ. */
  readonly payload: XmlElement;
  readonly type: "get" | "set";
  readonly id: string;
  readonly from: string;
  readonly to: string;
}

/**
 * Answers one IQ. Returns the result payload, or nothing for an empty result. To answer with a
 * specific error, throw `IqReplyError`; any other throw is answered `internal-server-error`
 * (type wait, §18) and logged.
 */
type IqHandler = (
  request: IqRequest,
) => XmlElement | undefined | void | Promise<XmlElement | undefined | void>;

/** Thrown by an `IqHandler` to answer with this stanza error. */
export class IqReplyError extends BridgeError {
  constructor(
    readonly errorType: StanzaErrorType,
    readonly condition: string,
    readonly options: { appCondition?: XmlElement; text?: string } = {},
  ) {
    super("iq-reply-error", `answering IQ with ${errorType}/${condition}`);
  }
}

export interface IqResponderOptions {
  send: (stanza: XmlElement) => Promise<void>;
  logger?: Logger;
  /** Answer XEP-0199 pings with an empty result (§8.2); default true. */
  answerPings?: boolean;
}

const key = (xmlns: string, name: string): string => `${name} ${xmlns}`;

/**
 * Answers inbound IQ get/set by payload (namespace, name). Every request gets exactly one
 * answer: the handler's result, its `IqReplyError`, `internal-server-error` if it failed,
 * `service-unavailable` for an unknown payload (§7.4), or `bad-request` for an IQ without
 * exactly one payload element (RFC 6120 §8.2.3).
 */
export class IqResponder {
  private readonly handlers = new Map<string, IqHandler>();
  private readonly log: Logger;

  constructor(private readonly options: IqResponderOptions) {
    this.log = (options.logger ?? silentLogger()).child({ component: "iq-responder" });
    if (options.answerPings !== false) this.register(NS_PING, "ping", () => undefined);
  }

  /** Registers the handler for one payload; returns a function that removes it. */
  register(xmlns: string, name: string, handler: IqHandler): () => void {
    const k = key(xmlns, name);
    if (this.handlers.has(k)) {
      throw new Error(`an IQ handler for <${name} xmlns='${xmlns}'> is already registered`);
    }
    this.handlers.set(k, handler);
    return () => {
      if (this.handlers.get(k) === handler) this.handlers.delete(k);
    };
  }

  /**
   * Offers an inbound stanza. Returns true for an IQ get/set, which is then answered
   * asynchronously; false for anything else.
   */
  handleStanza(stanza: XmlElement): boolean {
    if (stanza.name !== "iq") return false;
    const type = attr(stanza, "type");
    if (type !== "get" && type !== "set") return false;
    void this.answer(stanza, type);
    return true;
  }

  private async answer(iq: XmlElement, type: "get" | "set"): Promise<void> {
    const id = attr(iq, "id");
    const from = attr(iq, "from");
    const to = attr(iq, "to");
    if (id === undefined || from === undefined || to === undefined) {
      this.log.warn({ id, from, to }, "IQ without id, from or to dropped: it cannot be answered");
      return;
    }
    const payloads = childElements(iq);
    const payload = payloads[0];
    let reply: XmlElement;
    if (payload === undefined || payloads.length !== 1) {
      reply = errorReply(iq, { type: "modify", condition: "bad-request" });
    } else {
      const handler = this.handlers.get(key(namespaceOf(payload) ?? "", payload.name));
      if (handler === undefined) {
        this.log.debug(
          { id, from, payload: payload.name, xmlns: namespaceOf(payload) },
          "unknown IQ payload",
        );
        reply = errorReply(iq, { type: "cancel", condition: "service-unavailable" });
      } else {
        reply = await this.run(handler, { iq, payload, type, id, from, to });
      }
    }
    try {
      await this.options.send(reply);
    } catch (err) {
      this.log.warn({ id, from, err: describeError(err) }, "could not send the IQ answer");
    }
  }

  private async run(handler: IqHandler, request: IqRequest): Promise<XmlElement> {
    try {
      const result = await handler(request);
      return xml(
        "iq",
        { type: "result", id: request.id, from: request.to, to: request.from },
        result ?? undefined,
      );
    } catch (err) {
      if (err instanceof IqReplyError) {
        return errorReply(request.iq, {
          type: err.errorType,
          condition: err.condition,
          appCondition: err.options.appCondition,
          text: err.options.text,
        });
      }
      this.log.error(
        {
          id: request.id,
          from: request.from,
          payload: request.payload.name,
          err: describeError(err),
        },
        "IQ handler failed",
      );
      return errorReply(request.iq, { type: "wait", condition: "internal-server-error" });
    }
  }
}

function errorReply(iq: XmlElement, error: Parameters<typeof stanzaErrorElement>[0]): XmlElement {
  return xml(
    "iq",
    { type: "error", id: attr(iq, "id"), from: attr(iq, "to"), to: attr(iq, "from") },
    stanzaErrorElement(error),
  );
}
