import type { XmlElement } from "../src/interop/codec/index.js";
import { ComponentConnection } from "../src/interop/transport/component.js";
import { describeError } from "../src/util/errors.js";
import type { Logger } from "../src/util/log.js";
import type { ComponentServer, LocalComponent } from "./xmpp/component-server.js";

/** How the gatekeeper's two domains reach the XMPP server. */
export interface Wire {
  send(stanza: XmlElement): void;
  close(): Promise<void>;
}

function pick<T>(stanza: XmlElement, groupDomain: string, main: T, group: T): T {
  const from = typeof stanza.attrs.from === "string" ? stanza.attrs.from : "";
  const domain = from.slice(from.indexOf("@") + 1).split("/")[0];
  return domain === groupDomain ? group : main;
}

/** Embedded mode: both domains attach in-process to the simulator's own component server. */
export function localWire(
  server: ComponentServer,
  domains: { main: string; group: string },
  receive: (stanza: XmlElement) => void,
): Wire {
  const main: LocalComponent = server.attachLocal(domains.main, receive);
  const group: LocalComponent = server.attachLocal(domains.group, receive);
  return {
    send: (stanza) => pick(stanza, domains.group, main, group).send(stanza),
    close: async () => {
      main.detach();
      group.detach();
    },
  };
}

/** External mode: two XEP-0114 connections to a real XMPP server (e.g. Prosody). */
export async function componentWire(
  options: {
    service: string;
    secret: string;
    domains: { main: string; group: string };
    maxStanzaBytes: number;
    /** The XMPP server's stanza limit: the transport reads up to it, so G2 can bounce (E27). */
    serverStanzaLimitBytes: number;
    logger: Logger;
  },
  receive: (stanza: XmlElement) => void,
): Promise<Wire> {
  const connect = (domain: string): ComponentConnection => {
    const connection = new ComponentConnection({
      service: options.service,
      domain,
      secret: options.secret,
      logger: options.logger,
      maxStanzaBytes: options.maxStanzaBytes + 16384,
      serverStanzaLimitBytes: options.serverStanzaLimitBytes,
    });
    connection.onStanza(receive);
    connection.start();
    return connection;
  };
  const main = connect(options.domains.main);
  const group = connect(options.domains.group);
  await Promise.all([main.waitOnline(), group.waitOnline()]);
  return {
    send: (stanza) => {
      const connection = pick(stanza, options.domains.group, main, group);
      connection.send(stanza).catch((err: unknown) => {
        options.logger.warn({ err: describeError(err) }, "stanza not sent to the XMPP server");
      });
    },
    close: async () => {
      await Promise.all([main.stop(), group.stop()]);
    },
  };
}
