import { EventEmitter } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { parseXml, xml, type XmlElement } from "../../src/interop/codec/xml.js";
import { BridgeError, describeError } from "../../src/util/errors.js";
import { silentLogger, type Logger } from "../../src/util/log.js";
import { ComponentSession, type SessionHost } from "./component-session.js";

/**
 * A minimal XMPP server for components only (XEP-0114), so that the simulator and the tests need
 * no Prosody: it authenticates component connections and routes stanzas between them by the
 * domain of `to`, bouncing like a real server when the addressed component is not connected
 * (that is what "peer offline" looks like, PROTOCOL.md §8.2). In-process components can attach
 * without TCP (`attachLocal`).
 */

export const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

/** `max-stanza-bytes` + 16 KiB, as Appendix A configures Prosody. */
export const DEFAULT_SERVER_STANZA_LIMIT = 262144 + 16384;

export interface ComponentServerOptions {
  /** Component domain -> handshake secret; only these domains may connect over TCP. */
  secrets: Readonly<Record<string, string>>;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  maxStanzaBytes?: number;
  handshakeTimeoutMs?: number;
  /**
   * How a stanza to a known domain without a connected component is answered: `cancel` is
   * `service-unavailable` of type cancel (the default); `prosody` imitates Prosody 0.12,
   * `remote-server-timeout` of type wait with `<not-connected xmlns='xmpp:prosody.im/protocol/
   * component'/>`. Both are "peer offline" for PROTOCOL.md §8.2.
   */
  peerOfflineBounce?: "cancel" | "prosody";
  logger?: Logger;
}

/** Receives stanzas routed to an in-process component; throws and rejections are logged. */
export type LocalStanzaHandler = (stanza: XmlElement) => void | Promise<void>;

export interface LocalComponent {
  readonly domain: string;
  /**
   * Routes a stanza from this component, exactly as if it came over a component stream. A
   * missing `from` becomes the domain; a `from` outside the domain or a stanza above the size
   * limit throws.
   */
  send(stanza: XmlElement): void;
  /** Disconnects the component; stanzas to its domain bounce from then on. */
  detach(): void;
}

interface Endpoint {
  readonly kind: "tcp" | "local";
  deliver(serialized: string): void;
}

interface ServerEvents {
  "component-online": [domain: string];
  "component-offline": [domain: string];
}

export class ComponentServer extends EventEmitter<ServerEvents> implements SessionHost {
  private readonly endpoints = new Map<string, Endpoint>();
  /** The TCP session behind each TCP endpoint, so a stale session cannot unregister another. */
  private readonly owners = new WeakMap<Endpoint, ComponentSession>();
  private readonly sessions = new Set<{ socket: Socket; session: ComponentSession }>();
  /** Domains that exist on this server: configured secrets and every locally attached domain. */
  private readonly knownDomains: Set<string>;
  private readonly maxStanzaBytes: number;
  private readonly log: Logger;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    private readonly options: ComponentServerOptions,
  ) {
    super();
    this.knownDomains = new Set(Object.keys(options.secrets).map((d) => d.toLowerCase()));
    this.maxStanzaBytes = options.maxStanzaBytes ?? DEFAULT_SERVER_STANZA_LIMIT;
    this.log = (options.logger ?? silentLogger()).child({ component: "component-server" });
    server.on("connection", (socket) => this.accept(socket));
  }

  /** Listens (on 127.0.0.1 and a free port unless told otherwise) and resolves when ready. */
  static async start(options: ComponentServerOptions): Promise<ComponentServer> {
    const server = createServer();
    const instance = new ComponentServer(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err) => instance.log.error({ err: err.message }, "listener error"));
    instance.log.info({ port: instance.port }, "component server listening");
    return instance;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get host(): string {
    return (this.server.address() as AddressInfo).address;
  }

  /** The xmpp.js service URI of this server, e.g. `xmpp://127.0.0.1:40123`. */
  get service(): string {
    return `xmpp://${this.host}:${this.port}`;
  }

  isConnected(domain: string): boolean {
    return this.endpoints.has(domain.toLowerCase());
  }

  attachLocal(domain: string, handler: LocalStanzaHandler): LocalComponent {
    const name = domain.toLowerCase();
    if (this.stopped) throw new BridgeError("server-stopped", "the component server is stopped");
    let attached = true;
    const endpoint: Endpoint = {
      kind: "local",
      deliver: (serialized) => {
        // Deliver on a later turn, as a socket would: a handler that answers at once must not
        // re-enter the router while the sender's `send` is still running.
        setImmediate(() => {
          if (!attached) return;
          try {
            const result = handler(parseXml(serialized));
            if (result instanceof Promise) {
              result.catch((err: unknown) => this.logHandlerFailure(name, err));
            }
          } catch (err) {
            this.logHandlerFailure(name, err);
          }
        });
      },
    };
    if (!this.claim(name, endpoint)) {
      throw new BridgeError("conflict", `component ${name} is already connected`);
    }
    this.knownDomains.add(name);
    return {
      domain: name,
      send: (stanza) => {
        if (!attached) {
          throw new BridgeError("server-stopped", `local component ${name} is detached`);
        }
        const bytes = Buffer.byteLength(stanza.toString(), "utf8");
        if (bytes > this.maxStanzaBytes) {
          throw new BridgeError(
            "stanza-too-large",
            `stanza of ${bytes} bytes from ${name} is above the server limit ${this.maxStanzaBytes}`,
          );
        }
        this.routeFrom(stanza, name, endpoint, (reason) => {
          throw new BridgeError("invalid-from", reason);
        });
      },
      detach: () => {
        if (!attached) return;
        attached = false;
        this.release(name, endpoint);
      },
    };
  }

  /**
   * Stops listening and ends every component stream: with `</stream:stream>` and a
   * `system-shutdown` stream error, or, with `abrupt`, by dropping the sockets as a crashed
   * server would.
   */
  async stop(options: { abrupt?: boolean } = {}): Promise<void> {
    this.stopped = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const { socket, session } of this.sessions) {
      if (options.abrupt === true) session.destroy();
      else session.closeWithError("system-shutdown");
      // A peer that never answers the closing handshake must not hold the shutdown up.
      setTimeout(() => socket.destroy(), 2000).unref();
    }
    for (const [domain, endpoint] of [...this.endpoints]) this.release(domain, endpoint);
    await closed;
  }

  secretFor(domain: string): string | undefined {
    return this.options.secrets[domain] ?? this.options.secrets[domain.toLowerCase()];
  }

  register(domain: string, session: ComponentSession): boolean {
    return this.claim(domain, { kind: "tcp", deliver: (s) => session.deliver(s) }, session);
  }

  unregister(domain: string, session: ComponentSession): void {
    const endpoint = this.endpoints.get(domain);
    if (endpoint !== undefined && this.owners.get(endpoint) === session) {
      this.release(domain, endpoint);
    }
  }

  route(stanza: XmlElement, from: ComponentSession): void {
    const domain = from.componentDomain;
    const endpoint = domain === undefined ? undefined : this.endpoints.get(domain);
    if (domain === undefined || endpoint === undefined) return;
    this.routeFrom(stanza, domain, endpoint, (reason) =>
      from.closeWithError("invalid-from", reason),
    );
  }

  private claim(domain: string, endpoint: Endpoint, session?: ComponentSession): boolean {
    if (this.stopped || this.endpoints.has(domain)) return false;
    this.endpoints.set(domain, endpoint);
    if (session !== undefined) this.owners.set(endpoint, session);
    this.log.info({ domain, kind: endpoint.kind }, "component online");
    this.emit("component-online", domain);
    return true;
  }

  private release(domain: string, endpoint: Endpoint): void {
    if (this.endpoints.get(domain) !== endpoint) return;
    this.endpoints.delete(domain);
    this.log.info({ domain, kind: endpoint.kind }, "component offline");
    this.emit("component-offline", domain);
  }

  private accept(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    const session = new ComponentSession(
      socket,
      this,
      this.maxStanzaBytes,
      this.log.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` }),
      this.options.handshakeTimeoutMs ?? 10_000,
    );
    const entry = { socket, session };
    this.sessions.add(entry);
    socket.on("close", () => this.sessions.delete(entry));
  }

  /**
   * The routing rules of mod_component: `from` must lie in the sender's domain (a missing one
   * is set to it), `to` is required, and a stanza to a domain without a connected component is
   * answered from the original `to`, except errors and IQ results, which are never answered.
   */
  private routeFrom(
    stanza: XmlElement,
    sourceDomain: string,
    source: Endpoint,
    invalidFrom: (reason: string) => void,
  ): void {
    const from = typeof stanza.attrs.from === "string" ? stanza.attrs.from : undefined;
    if (from === undefined) stanza.attrs.from = sourceDomain;
    else if (domainOf(from) !== sourceDomain) {
      invalidFrom(`component ${sourceDomain} tried to send from ${from}`);
      return;
    }
    const to = typeof stanza.attrs.to === "string" ? stanza.attrs.to : undefined;
    const type = typeof stanza.attrs.type === "string" ? stanza.attrs.type : undefined;
    const answerable = type !== "error" && type !== "result";
    if (to === undefined) {
      if (answerable) source.deliver(bounce(stanza, "modify", "bad-request").toString());
      return;
    }
    const targetDomain = domainOf(to);
    const target = this.endpoints.get(targetDomain);
    if (target !== undefined) {
      target.deliver(stanza.toString());
      return;
    }
    this.log.debug({ to, from: stanza.attrs.from, name: stanza.name }, "no component for domain");
    if (!answerable) return;
    let answer: XmlElement;
    if (!this.knownDomains.has(targetDomain)) {
      answer = bounce(stanza, "cancel", "remote-server-not-found");
    } else if (this.options.peerOfflineBounce === "prosody") {
      answer = bounce(stanza, "wait", "remote-server-timeout", [
        xml("text", { xmlns: NS_STANZAS }, "Component unavailable"),
        xml("not-connected", { xmlns: "xmpp:prosody.im/protocol/component" }),
      ]);
    } else {
      answer = bounce(stanza, "cancel", "service-unavailable");
    }
    source.deliver(answer.toString());
  }

  private logHandlerFailure(domain: string, err: unknown): void {
    this.log.error({ domain, err: describeError(err) }, "local component handler failed");
  }
}

/** The server's error answer to a stanza: from its `to`, to its `from`, same id, no payload. */
function bounce(
  stanza: XmlElement,
  type: string,
  condition: string,
  extra: XmlElement[] = [],
): XmlElement {
  return xml(
    stanza.name,
    {
      type: "error",
      id: typeof stanza.attrs.id === "string" ? stanza.attrs.id : undefined,
      from: typeof stanza.attrs.to === "string" ? stanza.attrs.to : undefined,
      to: typeof stanza.attrs.from === "string" ? stanza.attrs.from : undefined,
    },
    xml("error", { type }, xml(condition, { xmlns: NS_STANZAS }), ...extra),
  );
}

function domainOf(jid: string): string {
  const at = jid.indexOf("@");
  const slash = jid.indexOf("/", at + 1);
  return jid.slice(at + 1, slash === -1 ? undefined : slash).toLowerCase();
}
