import type { Knex } from "knex";
import type { XmlElement } from "../src/interop/codec/xml.js";
import type { Limits } from "../src/interop/codec/limits.js";
import type { Logger } from "../src/util/log.js";
import type { Clock, EnlistedProvider, GatekeeperSettings } from "./config.js";
import { Counters } from "./state/counters.js";

/** What every service of the gatekeeper shares: state, clock, settings and the wire. */
export interface GatekeeperContext {
  readonly knex: Knex;
  readonly now: Clock;
  readonly settings: GatekeeperSettings;
  readonly limits: Limits;
  readonly log: Logger;
  readonly counters: Counters;
  /** Hands a stanza to the XMPP server; `from` must be at a gatekeeper domain. */
  readonly send: (stanza: XmlElement) => void;
}

export function providerByDomain(
  ctx: GatekeeperContext,
  domain: string,
): EnlistedProvider | undefined {
  return ctx.settings.providers.find((p) => p.domain === domain);
}

export function providerById(ctx: GatekeeperContext, id: string): EnlistedProvider | undefined {
  return ctx.settings.providers.find((p) => p.id === id);
}

export function makeContext(options: {
  knex: Knex;
  now: Clock;
  settings: GatekeeperSettings;
  log: Logger;
  send: (stanza: XmlElement) => void;
}): GatekeeperContext {
  return {
    ...options,
    limits: options.settings.limits,
    counters: new Counters(options.knex, options.now),
  };
}

/** The domain of a JID string, without parsing it strictly. */
export function domainOf(jid: string): string {
  const slash = jid.indexOf("/");
  const bare = slash >= 0 ? jid.slice(0, slash) : jid;
  const at = bare.indexOf("@");
  return at >= 0 ? bare.slice(at + 1) : bare;
}
