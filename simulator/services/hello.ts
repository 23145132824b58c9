import { randomBytes } from "node:crypto";
import {
  buildHelloRequest,
  encodeHelloResult,
  majorOf,
  negotiatedFeatures,
  PROTOCOL_VERSION,
  type HelloRequest,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import type { EnlistedProvider } from "../config.js";
import type { GatekeeperContext } from "../context.js";
import { refuse } from "../errors.js";

interface HelloRow {
  provider_domain: string;
  session: string;
  features: string;
  at: number;
}

/**
 * Hello state per provider domain (§8.2, §8.3), kept in the database across restarts. A provider
 * with state is online until a peer-offline bounce; the next hello makes it online again.
 */
export class HelloService {
  private readonly state = new Map<string, { session: string; features: Set<string> }>();
  private readonly offline = new Set<string>();
  constructor(private readonly ctx: GatekeeperContext) {}

  /** Loads the state and sends `<hello-request/>` to every enlisted provider without one. */
  async start(): Promise<void> {
    const rows = (await this.ctx.knex("gk_hello").select()) as HelloRow[];
    for (const row of rows) {
      this.state.set(row.provider_domain, {
        session: row.session,
        features: new Set(JSON.parse(row.features) as string[]),
      });
    }
    for (const provider of this.ctx.settings.providers) {
      if (!this.state.has(provider.domain)) this.sendHelloRequest(provider.domain);
    }
  }

  hasState(domain: string): boolean {
    return this.state.has(domain);
  }

  isOnline(domain: string): boolean {
    return this.state.has(domain) && !this.offline.has(domain);
  }

  /** Negotiated features of the provider's latest hello (empty without one). */
  features(domain: string): ReadonlySet<string> {
    return this.state.get(domain)?.features ?? new Set();
  }

  /** A peer-offline bounce or an unanswered ping: queue until the next hello (§8.2). */
  markOffline(domain: string): void {
    if (this.state.has(domain) && !this.offline.has(domain)) {
      this.ctx.log.info({ provider: domain }, "provider offline; queueing");
      this.offline.add(domain);
    }
  }

  /** Drops the hello state (as after lost state) and asks the provider for a new hello. */
  async forget(domain: string): Promise<void> {
    this.state.delete(domain);
    await this.ctx.knex("gk_hello").where({ provider_domain: domain }).delete();
    this.sendHelloRequest(domain);
  }

  async handle(provider: EnlistedProvider | undefined, hello: HelloRequest): Promise<XmlElement> {
    if (provider === undefined || hello.provider !== provider.id) {
      throw refuse({ name: "not-enlisted" }, `provider id ${hello.provider} not enlisted here`);
    }
    if (majorOf(hello.version) !== majorOf(PROTOCOL_VERSION)) {
      throw refuse(
        { name: "unsupported-version", supported: PROTOCOL_VERSION },
        `provider ${provider.id} speaks version ${hello.version}`,
      );
    }
    const session = `s-${randomBytes(6).toString("hex")}`;
    const features = negotiatedFeatures(this.ctx.settings.features, hello.features);
    await this.ctx
      .knex("gk_hello")
      .insert({
        provider_domain: provider.domain,
        session,
        features: JSON.stringify([...features]),
        at: this.ctx.now(),
      })
      .onConflict("provider_domain")
      .merge();
    this.state.set(provider.domain, { session, features });
    this.offline.delete(provider.domain);
    this.ctx.log.info({ provider: provider.domain, session }, "hello");
    return encodeHelloResult({
      version: PROTOCOL_VERSION,
      session,
      features: [...this.ctx.settings.features],
      announcedLimits: { ...this.ctx.limits },
      mediaOrigins: [...this.ctx.settings.mediaOrigins],
    });
  }

  private sendHelloRequest(domain: string): void {
    try {
      this.ctx.send(
        buildHelloRequest({
          id: `hr-${randomBytes(6).toString("hex")}`,
          from: this.ctx.settings.domain,
          to: domain,
        }),
      );
    } catch (err) {
      this.ctx.log.debug({ provider: domain, err: String(err) }, "hello-request not sent");
    }
  }
}
