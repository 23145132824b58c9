import { EventEmitter } from "node:events";
import { describeError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import {
  decodeHelloResult,
  effectiveLimits,
  encodeHelloRequest,
  encodePing,
  majorOf,
  negotiatedFeatures,
  type Limits,
} from "../codec/core.js";
import { tryDecode } from "../codec/codec-error.js";
import { classifyBounce, decodeStanzaError, type StanzaError } from "../codec/errors.js";
import { PROTOCOL_VERSION } from "../codec/namespaces.js";
import { stanzaTo, xml, type XmlElement } from "../codec/xml.js";
import type { ComponentConnection, ConnectionState } from "../transport/component.js";
import { IqError, IqTimeoutError, TransportError } from "../transport/errors.js";
import type { IqCaller } from "../transport/iq.js";
import { ProviderError } from "./errors.js";
import type { EngineState, EngineStateCode, EngineTiming } from "./types.js";

/** What the latest successful hello established (§8.3). */
interface HelloInfo {
  readonly version: string;
  readonly session: string | undefined;
  readonly features: ReadonlySet<string>;
  readonly limits: Limits;
  readonly mediaOrigins: readonly string[];
}

interface HelloSessionOptions {
  readonly connection: ComponentConnection;
  /** Caller for hello only: it must bypass the ready gate, which hello itself opens. */
  readonly helloIq: IqCaller;
  /** Caller for every other IQ (pings included). */
  readonly iq: IqCaller;
  readonly providerId: string;
  readonly domain: string;
  readonly gatekeeperDomain: string;
  readonly groupDomain: string;
  /** Optional features we offer (§8.3). */
  readonly features: readonly string[];
  readonly timing: EngineTiming;
  readonly logger: Logger;
  readonly now: () => number;
}

interface SessionEvents {
  state: [EngineState];
  ready: [HelloInfo];
}

const FATAL: ReadonlySet<EngineStateCode> = new Set(["not-enlisted", "version-mismatch"]);

/**
 * The hello state of the provider domain (§8.2, §8.3, P1, P2). Gates every outbound stanza: until
 * a hello succeeded after the latest (re)connection, `send` refuses with `not-ready`, so hello is
 * always the first stanza. Re-runs hello on `<hello-request/>`, on `hello-required`, and with
 * backoff (1 s doubling to 60 s) while the gatekeeper is offline; pings after 60 s of silence.
 */
export class HelloSession extends EventEmitter<SessionEvents> {
  private readonly log: Logger;
  private current: EngineState;
  private hello: HelloInfo | undefined;
  private isReady = false;
  private inFlight = false;
  private again = false;
  private helloFailures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private lastSentToGatekeeper = 0;
  private pinging = false;
  private running = false;
  private readonly offConnection: (() => void)[] = [];

  constructor(private readonly options: HelloSessionOptions) {
    super();
    this.log = options.logger.child({ component: "hello-session" });
    this.current = this.makeState("stopped", "not started");
  }

  get state(): EngineState {
    return this.current;
  }

  get ready(): boolean {
    return this.isReady;
  }

  /** The latest successful hello; kept while offline, since its limits still apply (§8.3). */
  get info(): HelloInfo | undefined {
    return this.hello;
  }

  get limits(): Limits {
    return this.hello?.limits ?? effectiveLimits({ announcedLimits: {} });
  }

  hasFeature(feature: string): boolean {
    return this.hello?.features.has(feature) ?? false;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const { connection } = this.options;
    const onState = (state: ConnectionState): void => this.onConnectionState(state);
    const onOnline = (): void => {
      this.helloFailures = 0;
      void this.runHello("connected");
    };
    connection.on("state", onState);
    connection.on("online", onOnline);
    this.offConnection.push(
      () => connection.off("state", onState),
      () => connection.off("online", onOnline),
    );
    const check = Math.max(50, Math.min(5000, Math.floor(this.options.timing.pingIdleMs / 4)));
    this.pingTimer = setInterval(() => void this.pingIfIdle(), check);
    this.pingTimer.unref();
    if (connection.isOnline) void this.runHello("connected");
  }

  stop(): void {
    this.running = false;
    this.isReady = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    for (const off of this.offConnection.splice(0)) off();
    this.setState("stopped", "stopped");
  }

  /** Resolves once ready; rejects with `not-ready` after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<void> {
    if (this.isReady) return Promise.resolve();
    if (FATAL.has(this.current.code) || !this.running) {
      return Promise.reject(this.notReady());
    }
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off("ready", onReady);
        reject(this.notReady());
      }, timeoutMs);
      this.once("ready", onReady);
    });
  }

  /**
   * Sends a stanza once hello succeeded; `not-ready` otherwise (the caller keeps it, e.g. in the
   * outbox, and sends it after the next hello). Transport failures pass through.
   */
  async send(stanza: XmlElement): Promise<void> {
    if (!this.isReady) throw this.notReady();
    await this.options.connection.send(stanza);
    if (this.isGatekeeperAddress(stanzaTo(stanza))) {
      this.lastSentToGatekeeper = this.options.now();
    }
  }

  /** `<hello-request/>` or `hello-required` (§8.2 provider rule 1). */
  requestHello(reason: string): void {
    if (!this.running || FATAL.has(this.current.code)) return;
    this.isReady = false;
    void this.runHello(reason);
  }

  /**
   * A bounce showed the gatekeeper's component offline (§8.2): traffic stops and hello is retried
   * with backoff; the outbox keeps its stanzas for after the next hello.
   */
  peerOffline(reason: string): void {
    if (!this.running || FATAL.has(this.current.code)) return;
    if (!this.options.connection.isOnline) return;
    this.isReady = false;
    if (this.inFlight || this.retryTimer !== undefined) return;
    this.scheduleHello(reason);
  }

  /** Whether `jid` is the gatekeeper's service or a JID at one of its domains (§15.9). */
  isGatekeeperAddress(jid: string): boolean {
    const at = jid.indexOf("@");
    const slash = jid.indexOf("/", at + 1);
    const domain = jid.slice(at + 1, slash === -1 ? undefined : slash);
    return domain === this.options.gatekeeperDomain || domain === this.options.groupDomain;
  }

  /** Whether the bare `jid` is a group at the gatekeeper's group domain (§17). */
  isGroupAddress(jid: string): boolean {
    return jid.includes("@") && jid.slice(jid.indexOf("@") + 1) === this.options.groupDomain;
  }

  private async runHello(reason: string): Promise<void> {
    if (!this.running) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.inFlight = true;
    this.isReady = false;
    if (this.current.code !== "gatekeeper-offline") {
      this.setState("hello-pending", `sending hello (${reason})`);
    }
    try {
      await this.exchangeHello();
    } catch (err) {
      this.onHelloFailure(err);
    } finally {
      this.inFlight = false;
    }
    if (this.again && this.running && !FATAL.has(this.current.code)) {
      this.again = false;
      void this.runHello("hello requested while one was in flight");
    }
  }

  private async exchangeHello(): Promise<void> {
    const { domain, gatekeeperDomain, providerId, features } = this.options;
    const request = xml(
      "iq",
      { type: "get", from: domain, to: gatekeeperDomain },
      encodeHelloRequest({
        version: PROTOCOL_VERSION,
        provider: providerId,
        features: [...features],
      }),
    );
    const response = await this.options.helloIq.request(request, {
      timeoutMs: this.options.timing.iqTimeoutMs,
    });
    const payload = response.children.find((c): c is XmlElement => typeof c !== "string");
    if (payload === undefined) throw new Error("hello result without payload");
    const result = decodeHelloResult(payload);
    if (majorOf(result.version) !== majorOf(PROTOCOL_VERSION)) {
      this.fatal(
        "version-mismatch",
        `the gatekeeper speaks version ${result.version}, we speak ${PROTOCOL_VERSION}`,
      );
      return;
    }
    const limits = effectiveLimits(result);
    this.hello = {
      version: result.version,
      session: result.session,
      features: negotiatedFeatures(features, result.features),
      limits,
      mediaOrigins: result.mediaOrigins,
    };
    this.options.connection.setMaxStanzaBytes(limits["max-stanza-bytes"]);
    this.helloFailures = 0;
    this.isReady = true;
    this.lastSentToGatekeeper = this.options.now();
    this.log.info({ session: result.session, version: result.version }, "hello succeeded");
    this.setState("ready", `hello succeeded (session ${result.session ?? "-"})`);
    this.emit("ready", this.hello);
  }

  private onHelloFailure(err: unknown): void {
    if (err instanceof TransportError) {
      // The connection dropped: hello runs again when it is back online.
      this.log.debug({ err: describeError(err) }, "hello interrupted by the transport");
      return;
    }
    if (err instanceof IqError) {
      const error = stanzaErrorOf(err);
      if (error?.app?.name === "not-enlisted") {
        this.fatal(
          "not-enlisted",
          `the gatekeeper does not know provider ${this.options.providerId}`,
        );
        return;
      }
      if (error?.app?.name === "unsupported-version") {
        this.fatal(
          "version-mismatch",
          `the gatekeeper supports version ${error.app.supported}, not ${PROTOCOL_VERSION}`,
        );
        return;
      }
    }
    if (err instanceof IqError || err instanceof IqTimeoutError) {
      this.scheduleHello(`hello failed: ${describeError(err)}`);
      return;
    }
    this.log.error({ err: describeError(err) }, "hello result unusable");
    this.scheduleHello(`hello result unusable: ${describeError(err)}`);
  }

  private scheduleHello(reason: string): void {
    if (!this.running) return;
    const { helloInitialMs, helloMaxMs } = this.options.timing;
    const delay = Math.min(helloMaxMs, helloInitialMs * 2 ** Math.min(this.helloFailures, 30));
    this.helloFailures += 1;
    this.log.warn({ retryInMs: delay, reason }, "gatekeeper offline; hello retried later");
    this.setState("gatekeeper-offline", reason, new Date(this.options.now() + delay));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.runHello("retry while the gatekeeper was offline");
    }, delay);
    this.retryTimer.unref();
  }

  private async pingIfIdle(): Promise<void> {
    if (!this.isReady || this.pinging) return;
    if (this.options.now() - this.lastSentToGatekeeper < this.options.timing.pingIdleMs) return;
    this.pinging = true;
    try {
      const ping = xml(
        "iq",
        { type: "get", from: this.options.domain, to: this.options.gatekeeperDomain },
        encodePing(),
      );
      // `send` records the time, so a ping counts as traffic and is not repeated at once.
      await this.options.iq.request(ping, { timeoutMs: this.options.timing.iqTimeoutMs });
    } catch (err) {
      this.onPingFailure(err);
    } finally {
      this.pinging = false;
    }
  }

  private onPingFailure(err: unknown): void {
    if (err instanceof IqError) {
      const error = stanzaErrorOf(err);
      if (error === undefined) return;
      const outcome = classifyBounce(
        error,
        String(err.response.attrs.from ?? ""),
        this.options.gatekeeperDomain,
      );
      if (outcome.kind === "hello-required") this.requestHello("ping answered hello-required");
      else if (outcome.kind === "peer-offline")
        this.peerOffline("ping bounced: gatekeeper offline");
      return;
    }
    if (err instanceof IqTimeoutError) this.peerOffline("ping unanswered");
  }

  private onConnectionState(state: ConnectionState): void {
    if (state.online) return;
    this.isReady = false;
    if (FATAL.has(this.current.code) || !this.running) return;
    const code: EngineStateCode =
      state.code === "auth-failed"
        ? "auth-failed"
        : state.code === "connecting"
          ? "connecting"
          : state.code === "stopped"
            ? "stopped"
            : "gatekeeper-unreachable";
    this.setState(code, state.message, state.retryAt);
  }

  private fatal(code: EngineStateCode, message: string): void {
    this.isReady = false;
    this.log.error({ code }, message);
    this.setState(code, message);
    clearTimeout(this.retryTimer);
    // §8.3: a provider MUST NOT continue after a major-version mismatch; nor can it when not
    // enlisted. The operator has to act, so the connection is closed rather than retried.
    void this.options.connection.stop();
  }

  private notReady(): ProviderError {
    return new ProviderError(
      "not-ready",
      `no hello with the gatekeeper (${this.current.code}: ${this.current.message})`,
      this.current.retryAt === undefined ? {} : { retryAt: this.current.retryAt },
    );
  }

  private makeState(code: EngineStateCode, message: string, retryAt?: Date): EngineState {
    return { code, message, since: new Date(this.options.now()), retryAt };
  }

  private setState(code: EngineStateCode, message: string, retryAt?: Date): void {
    this.current = this.makeState(code, message, retryAt);
    this.emit("state", this.current);
  }
}

/** The codec's reading of an IQ error, or undefined if the `<error>` is malformed. */
export function stanzaErrorOf(err: IqError): StanzaError | undefined {
  const element = err.error.element;
  if (element === undefined) return undefined;
  const decoded = tryDecode(() => decodeStanzaError(element));
  return decoded.ok ? decoded.value : undefined;
}
