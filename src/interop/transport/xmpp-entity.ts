import { createRequire } from "node:module";
import type { Socket } from "node:net";
import type { XmlElement } from "../codec/xml.js";

/**
 * Typed access to the parts of xmpp.js 0.13 `@xmpp/component` that the transport uses. The
 * package ships no type declarations; a local interface (instead of an ambient `declare module`)
 * cannot collide with declarations elsewhere in the project, as in `codec/xml.ts`.
 */
export interface XmppComponentEntity {
  status: string;
  socket: Socket | null;
  readonly reconnect: { stop(): void };
  connect(service: string): Promise<unknown>;
  open(options: { domain: string }): Promise<unknown>;
  stop(): Promise<unknown>;
  write(text: string): Promise<void>;
  on(event: "stanza", listener: (stanza: XmlElement) => void): this;
  /** Every chunk read from the socket, as text, before parsing. */
  on(event: "input", listener: (text: string) => void): this;
  on(event: "error", listener: (err: unknown) => void): this;
  on(event: "disconnect" | "close" | "online", listener: (...args: unknown[]) => void): this;
  once(event: "online", listener: () => void): this;
  once(event: "error", listener: (err: unknown) => void): this;
  on(event: "status", listener: (status: string) => void): this;
  removeAllListeners(event?: string): this;
}

interface XmppComponentModule {
  component(options: { service: string; domain: string; password: string }): XmppComponentEntity;
}

const require = createRequire(import.meta.url);
const xmppComponent = require("@xmpp/component") as XmppComponentModule;

/**
 * An xmpp.js component entity with its own policies switched off; see the comment on
 * `ComponentConnection` for why each is replaced.
 */
export function createXmppComponent(options: {
  service: string;
  domain: string;
  secret: string;
}): XmppComponentEntity {
  const entity = xmppComponent.component({
    service: options.service,
    domain: options.domain,
    password: options.secret,
  });
  entity.reconnect.stop();
  // The factory's middleware listens on "element" and auto-answers every IQ get/set (bad-request
  // for several children, internal-server-error of type cancel, service-unavailable), which
  // would race with our responder; stanzas reach us through the "stanza" event instead.
  entity.removeAllListeners("element");
  return entity;
}

/**
 * Opens the socket, the stream and the handshake. Unlike xmpp.js `start()`, it never leaves a
 * rejected promise unobserved when the socket fails before the stream header arrives, which
 * would be an unhandled rejection.
 */
export async function establish(entity: XmppComponentEntity, service: string, domain: string) {
  await entity.connect(service);
  // A silently vanished peer (a partition, a suspended VM) otherwise goes unnoticed until a write
  // fails; keepalive probes turn it into a disconnect.
  entity.socket?.setKeepAlive(true, 30_000);
  const online = new Promise<void>((resolve, reject) => {
    entity.once("online", () => resolve());
    entity.once("error", reject);
  });
  online.catch(() => undefined);
  await entity.open({ domain });
  await online;
}
