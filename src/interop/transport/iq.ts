import { randomBytes } from "node:crypto";
import { silentLogger, type Logger } from "../../util/log.js";
import type { XmlElement } from "../codec/xml.js";
import type { ComponentConnection } from "./component.js";
import { IqError, IqTimeoutError, TransportError } from "./errors.js";
import { IqResponder, type IqResponderOptions } from "./iq-responder.js";
import { attr, childElements, decodeStanzaError, domainOf, namespaceOf } from "./stanza-error.js";

export { IqReplyError, IqResponder } from "./iq-responder.js";

/** `iq-timeout-seconds` default (§8.3, §8.4). */
const DEFAULT_IQ_TIMEOUT_MS = 30_000;

/** Sends one stanza; the component connection's `send` or a test double. */
type SendStanza = (stanza: XmlElement) => Promise<void>;

/**
 * A fresh IQ id: 96 random bits, base64url (16 characters). Random ids stay unique per sending
 * JID far beyond the 24 h that §8.4 requires, across restarts, without any stored counter.
 */
export function newIqId(): string {
  return randomBytes(12).toString("base64url");
}

interface IqCallerOptions {
  send: SendStanza;
  logger?: Logger;
  /** Per attempt; default `iq-timeout-seconds` = 30 s. */
  timeoutMs?: number;
  /** Resends after a timeout, unchanged and with the same id (§8.4); default 0. */
  retries?: number;
}

interface IqRequestOptions {
  timeoutMs?: number;
  retries?: number;
}

interface Pending {
  iq: XmlElement;
  to: string;
  request: { id: string; to: string; payload: string };
  attempts: number;
  timeoutMs: number;
  retries: number;
  timer: NodeJS.Timeout | undefined;
  resolve: (response: XmlElement) => void;
  reject: (err: unknown) => void;
}

/**
 * Sends IQ requests and matches their responses by (id, from), so that no other sender can
 * answer in the peer's name. Every request ends: with the result, an `IqError`, an
 * `IqTimeoutError`, or the `TransportError` of a failed send or lost connection.
 */
export class IqCaller {
  private readonly pending = new Map<string, Pending>();
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly retries: number;

  constructor(private readonly options: IqCallerOptions) {
    this.log = (options.logger ?? silentLogger()).child({ component: "iq-caller" });
    this.timeoutMs = options.timeoutMs ?? DEFAULT_IQ_TIMEOUT_MS;
    this.retries = options.retries ?? 0;
  }

  /** Requests still waiting for a response. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Sends `<iq type='get'|'set'>` and resolves with the whole `type='result'` response. An `id`
   * already on the element is kept (so a caller can repeat a request after a restart, §8.4);
   * otherwise a fresh one is set on it. `to` is required.
   */
  request(iq: XmlElement, options: IqRequestOptions = {}): Promise<XmlElement> {
    const type = attr(iq, "type");
    const to = attr(iq, "to");
    if (iq.name !== "iq" || (type !== "get" && type !== "set") || to === undefined) {
      return Promise.reject(
        new TransportError(
          "stanza-invalid",
          `an IQ request needs name iq, type get or set and a to address (got <${iq.name}` +
            ` type=${String(type)} to=${String(to)}>)`,
        ),
      );
    }
    const id = attr(iq, "id") ?? newIqId();
    iq.attrs.id = id;
    if (this.pending.has(id)) {
      return Promise.reject(
        new TransportError("stanza-invalid", `an IQ with id ${id} is already pending`),
      );
    }
    const payload = childElements(iq)[0];
    const request = {
      id,
      to,
      payload: payload === undefined ? "(empty)" : `${payload.name}/${namespaceOf(payload) ?? ""}`,
    };
    return new Promise<XmlElement>((resolve, reject) => {
      const entry: Pending = {
        iq,
        to,
        request,
        attempts: 0,
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        retries: options.retries ?? this.retries,
        timer: undefined,
        resolve,
        reject,
      };
      this.pending.set(id, entry);
      this.transmit(entry);
    });
  }

  /**
   * Offers an inbound stanza. Returns true if it was the response to a pending request (and
   * settled it). A response with a known id from another address is ignored and logged.
   */
  handleStanza(stanza: XmlElement): boolean {
    if (stanza.name !== "iq") return false;
    const type = attr(stanza, "type");
    if (type !== "result" && type !== "error") return false;
    const id = attr(stanza, "id");
    const entry = id === undefined ? undefined : this.pending.get(id);
    if (entry === undefined) return false;
    const from = attr(stanza, "from") ?? "";
    // A server bounce for an offline peer may come from the addressed JID's domain (§8.2).
    const fromMatches =
      from === entry.to || (type === "error" && from === domainOf(entry.to) && !from.includes("@"));
    if (!fromMatches) {
      this.log.warn(
        { id, from, expected: entry.to },
        "IQ response from an unexpected address ignored",
      );
      return false;
    }
    this.settle(entry);
    if (type === "result") entry.resolve(stanza);
    else entry.reject(new IqError(entry.request, stanza, decodeStanzaError(stanza)));
    return true;
  }

  /** Rejects every pending request, e.g. when the connection dropped and no answer can come. */
  failAll(reason: Error): void {
    for (const entry of [...this.pending.values()]) {
      this.settle(entry);
      entry.reject(reason);
    }
  }

  private transmit(entry: Pending): void {
    entry.attempts += 1;
    entry.timer = setTimeout(() => this.onTimeout(entry), entry.timeoutMs);
    this.options.send(entry.iq).catch((err: unknown) => {
      if (this.pending.get(entry.request.id) !== entry) return;
      this.settle(entry);
      entry.reject(err);
    });
  }

  private onTimeout(entry: Pending): void {
    if (this.pending.get(entry.request.id) !== entry) return;
    if (entry.attempts <= entry.retries) {
      this.log.debug({ ...entry.request, attempt: entry.attempts }, "IQ timed out, resending");
      this.transmit(entry);
      return;
    }
    this.settle(entry);
    entry.reject(new IqTimeoutError(entry.request, entry.attempts, entry.timeoutMs));
  }

  private settle(entry: Pending): void {
    clearTimeout(entry.timer);
    this.pending.delete(entry.request.id);
  }
}

export interface IqService {
  caller: IqCaller;
  responder: IqResponder;
  /** Unhooks both from the connection and fails pending requests. */
  detach(): void;
}

/**
 * Wires an IQ caller and responder to a component connection: responses settle requests, get
 * and set are answered, unmatched results and errors are dropped (RFC 6120 §8.2.3: never
 * answered), and pending requests fail with `transport-offline` when the connection drops.
 */
export function attachIq(
  connection: ComponentConnection,
  options: {
    logger?: Logger;
    timeoutMs?: number;
    retries?: number;
    responder?: Omit<IqResponderOptions, "send" | "logger">;
  } = {},
): IqService {
  const logger = options.logger ?? silentLogger();
  const send: SendStanza = (stanza) => connection.send(stanza);
  const caller = new IqCaller({
    send,
    logger,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.retries === undefined ? {} : { retries: options.retries }),
  });
  const responder = new IqResponder({ ...options.responder, send, logger });
  const log = logger.child({ component: "iq" });
  const offStanza = connection.onStanza((stanza) => {
    if (stanza.name !== "iq") return;
    if (caller.handleStanza(stanza) || responder.handleStanza(stanza)) return;
    log.debug(
      { id: stanza.attrs.id, from: stanza.attrs.from, type: stanza.attrs.type },
      "unmatched IQ response dropped",
    );
  });
  const onOffline = (): void => {
    caller.failAll(
      new TransportError(
        "transport-offline",
        `the connection of ${connection.domain} dropped before the IQ response arrived`,
      ),
    );
  };
  connection.on("offline", onOffline);
  return {
    caller,
    responder,
    detach() {
      offStanza();
      connection.off("offline", onOffline);
      caller.failAll(new TransportError("transport-stopped", "the IQ service was detached"));
    },
  };
}
