import { EventEmitter } from "node:events";
import { describeError } from "../../util/errors.js";
import { silentLogger, type Logger } from "../../util/log.js";
import { SerializedStanza, stanzaTo, type XmlElement } from "../codec/xml.js";
import { Backoff } from "./backoff.js";
import { TransportError } from "./errors.js";
import { createXmppComponent, establish, type XmppComponentEntity } from "./xmpp-entity.js";

/**
 * The bridge's XEP-0114 component connection (PROTOCOL.md §8.1).
 *
 * Built on xmpp.js 0.13 `@xmpp/component` for the stream and the handshake, with three of its
 * policies replaced:
 * - Reconnect: `@xmpp/reconnect` retries every 1 s forever, without backoff or jitter, and only
 *   after a connection that once opened; we need exponential backoff with full jitter (§8.2 asks
 *   for the same shape for hello), a reset after a stable connection, and state codes.
 * - IQ caller: `@xmpp/iq/caller` matches responses by `id` alone (any sender can resolve them),
 *   never resends, and keeps nothing that would let it fail requests when the connection drops
 *   (its per-call timeout, 30 s by default in 0.13, is the only way out); `iq.ts` matches by
 *   (id, from), resends unchanged with the same id (§8.4) and fails pending requests on a drop.
 * - IQ callee: the factory's middleware answers every unhandled IQ itself (with
 *   `internal-server-error` of type cancel where §18 says wait), so it is detached.
 */

/** Stable codes of the connection state; `connected` is the only online one. */
export type ConnectionStateCode =
  "connecting" | "connected" | "gatekeeper-unreachable" | "auth-failed" | "stopped";

export interface ConnectionState {
  readonly online: boolean;
  readonly code: ConnectionStateCode;
  /** Human-readable reason, for logs and the bridge status. */
  readonly message: string;
  readonly since: Date;
  /** When the next connection attempt is due; undefined while online, connecting or stopped. */
  readonly retryAt: Date | undefined;
  /** The backoff delay that `retryAt` came from. */
  readonly retryInMs: number | undefined;
  /** Failed attempts since the last stable connection. */
  readonly failedAttempts: number;
}

export interface ComponentConnectionOptions {
  /** Where the XMPP server's component port listens, e.g. `xmpp://127.0.0.1:5347`. */
  service: string;
  /** The component domain, e.g. `matrix.bridge.example`. */
  domain: string;
  secret: string;
  logger?: Logger;
  /** `max-stanza-bytes` (§8.3); adjust with `setMaxStanzaBytes` after each hello. */
  maxStanzaBytes?: number;
  /**
   * The XMPP server's own stanza limit (Prosody's `component_stanza_size_limit`), when known.
   * The inbound cap is never below it (E27): whatever the server lets through is read and handed
   * to the application, which can answer it (a `too-large` bounce) instead of the connection
   * dropping and the peer retrying the same stanza forever.
   */
  serverStanzaLimitBytes?: number;
  /** Upper bound for one connection attempt (TCP connect, stream open, handshake). */
  connectTimeoutMs?: number;
  reconnect?: {
    initialDelayMs?: number;
    maxDelayMs?: number;
    /** Online this long without a drop resets the backoff. */
    stableAfterMs?: number;
    random?: () => number;
  };
}

/**
 * Receives every inbound stanza. It may be async; a throw or rejection is logged and dropped, so
 * one faulty handler never takes the connection or the process down.
 */
type StanzaHandler = (stanza: XmlElement) => void | Promise<void>;

interface ConnectionEvents {
  state: [ConnectionState];
  online: [];
  offline: [ConnectionState];
}

/** Room above a stanza limit for the stream header and the tail of a read chunk. */
export const INBOUND_SLACK_BYTES = 65_536;
const DEFAULT_MAX_STANZA_BYTES = 262144;

/**
 * Bytes read without a complete stanza beyond which the connection is dropped: above both
 * `max-stanza-bytes` and the server's own limit (E27), plus slack for a read chunk.
 */
export function inboundCapBytes(maxStanzaBytes: number, serverStanzaLimitBytes = 0): number {
  return Math.max(maxStanzaBytes, serverStanzaLimitBytes) + INBOUND_SLACK_BYTES;
}

export class ComponentConnection extends EventEmitter<ConnectionEvents> {
  readonly domain: string;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly handlers = new Set<StanzaHandler>();
  private readonly connectTimeoutMs: number;
  private readonly stableAfterMs: number;
  private maxStanzaBytes: number;
  private entity: XmppComponentEntity | undefined;
  private running = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private current: ConnectionState;

  constructor(private readonly options: ComponentConnectionOptions) {
    super();
    this.domain = options.domain;
    this.log = (options.logger ?? silentLogger()).child({
      component: "xmpp-transport",
      domain: options.domain,
    });
    this.backoff = new Backoff({
      initialMs: options.reconnect?.initialDelayMs ?? 1000,
      maxMs: options.reconnect?.maxDelayMs ?? 60_000,
      ...(options.reconnect?.random === undefined ? {} : { random: options.reconnect.random }),
    });
    this.stableAfterMs = options.reconnect?.stableAfterMs ?? 30_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.maxStanzaBytes = options.maxStanzaBytes ?? DEFAULT_MAX_STANZA_BYTES;
    this.current = this.makeState("stopped", "not started");
  }

  get state(): ConnectionState {
    return this.current;
  }

  get isOnline(): boolean {
    return this.current.online;
  }

  /** Starts connecting; reconnects on its own until `stop()`. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.backoff.reset();
    void this.attempt();
  }

  /** Closes the stream gracefully (bounded by a timeout) and stops reconnecting. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.stableTimer);
    const entity = this.entity;
    this.entity = undefined;
    if (entity !== undefined) {
      if (entity.status === "online") {
        try {
          await withTimeout(entity.stop(), 3000, "closing the stream");
        } catch (err) {
          this.log.debug({ err: describeError(err) }, "stream did not close cleanly");
        }
      }
      discard(entity);
    }
    this.setState(this.makeState("stopped", "stopped"));
  }

  /** Resolves once online; rejects with `transport-offline` after `timeoutMs`. */
  waitOnline(timeoutMs = 30_000): Promise<void> {
    if (this.isOnline) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onOnline = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off("online", onOnline);
        reject(
          new TransportError(
            "transport-offline",
            `component ${this.domain} not online after ${timeoutMs} ms: ${this.current.message}`,
          ),
        );
      }, timeoutMs);
      this.once("online", onOnline);
    });
  }

  /** Registers an inbound stanza handler; returns a function that removes it. */
  onStanza(handler: StanzaHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Unparsed inbound bytes beyond which the connection is dropped (see `inboundCapBytes`). */
  get inboundCapBytes(): number {
    return inboundCapBytes(this.maxStanzaBytes, this.options.serverStanzaLimitBytes);
  }

  /** Applies the `max-stanza-bytes` of the latest hello (§8.3). */
  setMaxStanzaBytes(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes <= 0) {
      throw new RangeError(`max-stanza-bytes must be a positive integer, got ${bytes}`);
    }
    this.maxStanzaBytes = bytes;
  }

  /**
   * Writes one stanza. Fails fast, without queueing, with a `TransportError`:
   * `transport-offline` while not connected, `stanza-too-large` above max-stanza-bytes,
   * `send-failed` if the socket write fails. A missing `from` is set to the component domain
   * (on the element itself). Resolves once the bytes are handed to the socket, which is not
   * delivery: only the peer's answer says that.
   */
  async send(stanza: XmlElement): Promise<void> {
    const entity = this.entity;
    if (entity === undefined || !this.isOnline) {
      throw new TransportError(
        "transport-offline",
        `cannot send <${stanza.name}> to ${stanzaTo(stanza)}: component ${this.domain} ` +
          `is offline (${this.current.code}: ${this.current.message})`,
        this.current.retryAt === undefined ? {} : { retryAt: this.current.retryAt },
      );
    }
    // A stored outbox text goes out as it is (it carries its `from`): no parse, no serialisation.
    if (!(stanza instanceof SerializedStanza) && stanza.attrs.from === undefined) {
      stanza.attrs.from = this.domain;
    }
    const text = stanza.toString();
    const to = stanzaTo(stanza);
    const bytes = Buffer.byteLength(text, "utf8");
    if (bytes > this.maxStanzaBytes) {
      throw new TransportError(
        "stanza-too-large",
        `<${stanza.name}> to ${to} is ${bytes} bytes, ` +
          `above max-stanza-bytes ${this.maxStanzaBytes}`,
      );
    }
    try {
      await entity.write(text);
    } catch (err) {
      throw new TransportError("send-failed", `writing <${stanza.name}> to ${to} failed`, {
        cause: err,
      });
    }
  }

  private async attempt(): Promise<void> {
    if (!this.running) return;
    this.setState(this.makeState("connecting", `connecting to ${this.options.service}`));
    const entity = createXmppComponent({
      service: this.options.service,
      domain: this.domain,
      secret: this.options.secret,
    });
    this.entity = entity;
    const errors: unknown[] = [];
    entity.on("error", (err) => {
      errors.push(err);
      this.log.debug({ err: describeError(err) }, "xmpp connection error");
    });
    // xmpp.js parses without any size limit, so a stanza that never ends would grow in memory for
    // as long as the server sends it. Bytes read since the last complete stanza are counted, and
    // beyond the inbound cap (above max-stanza-bytes and the server's own limit, E27) the
    // connection is dropped; it reconnects as after any drop. The XMPP server limits stanzas
    // too, but the bridge does not rely on that.
    let unparsedBytes = 0;
    entity.on("input", (text) => {
      if (this.entity !== entity) return;
      unparsedBytes += Buffer.byteLength(text, "utf8");
      const cap = this.inboundCapBytes;
      if (unparsedBytes > cap) {
        this.log.warn(
          { bytes: unparsedBytes, max: this.maxStanzaBytes, cap },
          "inbound stanza above the transport's cap; dropping the connection",
        );
        unparsedBytes = 0;
        entity.socket?.destroy();
      }
    });
    entity.on("stanza", (stanza) => {
      unparsedBytes = 0;
      if (this.entity === entity) this.dispatch(stanza);
    });
    entity.on("disconnect", () => this.onDisconnect(entity, errors));
    // The server ended its stream (`</stream:stream>`): nothing sent from now on would be read,
    // so treat it as the drop it is about to become rather than wait for the socket to close.
    entity.on("close", () => this.onDisconnect(entity, errors));
    try {
      await withTimeout(
        establish(entity, this.options.service, this.domain),
        this.connectTimeoutMs,
        "connecting",
      );
    } catch (err) {
      if (this.entity !== entity) return; // stopped meanwhile
      this.entity = undefined;
      discard(entity);
      const { code, message } = classifyFailure([...errors, err]);
      this.scheduleReconnect(code, message);
      return;
    }
    if (this.entity !== entity || !this.running) {
      discard(entity);
      return;
    }
    this.log.info({ service: this.options.service }, "component connected");
    this.stableTimer = setTimeout(() => this.backoff.reset(), this.stableAfterMs);
    this.stableTimer.unref();
    this.setState(this.makeState("connected", `connected to ${this.options.service}`));
    this.emit("online");
  }

  private onDisconnect(entity: XmppComponentEntity, errors: unknown[]): void {
    // Only a drop of an established connection is handled here; a failing attempt is
    // handled where `start()` rejects.
    if (this.entity !== entity || !this.isOnline) return;
    this.entity = undefined;
    clearTimeout(this.stableTimer);
    discard(entity);
    const streamError = errors.map(streamCondition).find((c) => c !== undefined);
    const reason =
      streamError === undefined
        ? "connection to the XMPP server lost"
        : `the XMPP server closed the stream (${streamError})`;
    this.log.warn({ reason }, "component disconnected");
    this.scheduleReconnect("gatekeeper-unreachable", reason);
  }

  private scheduleReconnect(code: ConnectionStateCode, message: string): void {
    if (!this.running) return;
    const delay = this.backoff.next();
    const level = code === "auth-failed" ? "error" : "warn";
    this.log[level]({ code, retryInMs: delay, attempt: this.backoff.attempts }, message);
    const wasOnline = this.isOnline;
    const state = this.makeState(code, message, delay);
    this.setState(state);
    if (wasOnline) this.emit("offline", state);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.attempt(), delay);
  }

  private dispatch(stanza: XmlElement): void {
    for (const handler of this.handlers) {
      try {
        const result = handler(stanza);
        if (result instanceof Promise) {
          result.catch((err: unknown) => this.logHandlerFailure(stanza, err));
        }
      } catch (err) {
        this.logHandlerFailure(stanza, err);
      }
    }
  }

  private logHandlerFailure(stanza: XmlElement, err: unknown): void {
    this.log.error(
      {
        err: describeError(err),
        stanza: stanza.name,
        id: stanza.attrs.id,
        from: stanza.attrs.from,
      },
      "inbound stanza handler failed",
    );
  }

  private makeState(
    code: ConnectionStateCode,
    message: string,
    retryInMs?: number,
  ): ConnectionState {
    const since = new Date();
    return {
      online: code === "connected",
      code,
      message,
      since,
      retryAt: retryInMs === undefined ? undefined : new Date(since.getTime() + retryInMs),
      retryInMs,
      failedAttempts: this.backoff?.attempts ?? 0,
    };
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    this.emit("state", state);
  }
}

/** Drops an entity for good: its socket is destroyed and its late errors are swallowed. */
function discard(entity: XmppComponentEntity): void {
  entity.removeAllListeners();
  entity.on("error", () => undefined);
  entity.socket?.destroy();
}

function streamCondition(err: unknown): string | undefined {
  if (err instanceof Error && err.name === "StreamError") {
    const condition = (err as Error & { condition?: unknown }).condition;
    if (typeof condition === "string") return condition;
  }
  return undefined;
}

const AUTH_CONDITIONS = new Set(["not-authorized", "host-unknown", "improper-addressing"]);

function classifyFailure(errors: unknown[]): { code: ConnectionStateCode; message: string } {
  const condition = errors.map(streamCondition).find((c) => c !== undefined);
  if (condition !== undefined && AUTH_CONDITIONS.has(condition)) {
    return {
      code: "auth-failed",
      message: `the XMPP server refused the component (${condition}): check the domain and secret`,
    };
  }
  if (condition !== undefined) {
    return {
      code: "gatekeeper-unreachable",
      message: `the XMPP server closed the stream (${condition})`,
    };
  }
  const last = errors.at(-1);
  return {
    code: "gatekeeper-unreachable",
    message: `cannot connect to the XMPP server: ${describeError(last)}`,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
