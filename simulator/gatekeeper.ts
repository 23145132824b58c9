import { fileURLToPath } from "node:url";
import type { Knex } from "knex";
import {
  classifyMessage,
  decodeStanzaError,
  interopError,
  type XmlElement,
} from "../src/interop/codec/index.js";
import { NS } from "../src/interop/codec/namespaces.js";
import { migrateToLatest } from "../src/db/migrate.js";
import { describeError } from "../src/util/errors.js";
import { silentLogger, type Logger } from "../src/util/log.js";
import type { Clock, GatekeeperSettings } from "./config.js";
import { domainOf, makeContext, providerByDomain, type GatekeeperContext } from "./context.js";
import { bounceFor } from "./delivery/bounce.js";
import { Conversations } from "./delivery/conversations.js";
import { InboundMessages } from "./delivery/inbound.js";
import type { LocalDelivery, LocalSink } from "./delivery/local.js";
import { PendingDeliveries } from "./delivery/pending.js";
import { OutboundMessages } from "./delivery/outbound.js";
import { DeliveryQueue } from "./delivery/queue.js";
import { AcceptedRecords } from "./delivery/records.js";
import { attr, IqHandler } from "./iq-handler.js";
import type { MediaStore } from "./media/store.js";
import type { Services } from "./services.js";
import { AbuseService } from "./services/abuse.js";
import { Accounts } from "./services/accounts.js";
import { HelloService } from "./services/hello.js";
import { IdentityService } from "./services/identity.js";
import { KeyDirectory } from "./services/keys.js";
import { Reachability } from "./services/reach.js";
import { DAY_MS } from "./state/counters.js";

export const SIMULATOR_MIGRATIONS = fileURLToPath(new URL("./migrations/", import.meta.url));

export interface GatekeeperOptions {
  readonly knex: Knex;
  readonly settings: GatekeeperSettings;
  readonly now?: Clock;
  readonly logger?: Logger;
  readonly media?: MediaStore;
}

const OFFLINE_CONDITIONS = new Set([
  "service-unavailable",
  "remote-server-not-found",
  "remote-server-timeout",
]);

/**
 * The gatekeeper side of the protocol for `wa.example` (PROTOCOL.md §8-§16): it consumes every
 * stanza the XMPP server routes to the gatekeeper domains, one at a time in arrival order (so
 * seq, de-duplication and delivery order need no further locking), and sends through `attach`'s
 * wire. State lives in the knex database given.
 */
export class Gatekeeper {
  readonly ctx: GatekeeperContext;
  readonly services: Services;
  readonly outbound: OutboundMessages;
  readonly accounts: Accounts;
  /** 1:1 conversations and their request state (read by the admin API's chat list). */
  readonly conversations: Conversations;
  private readonly iq: IqHandler;
  private readonly inbound: InboundMessages;
  private readonly records: AcceptedRecords;
  /** Accepted deliveries to gatekeeper users not yet processed; the users complete them. */
  readonly pending: PendingDeliveries;
  private wire: ((stanza: XmlElement) => void) | undefined;
  private sink: LocalSink = async () => undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(options: GatekeeperOptions) {
    const log = (options.logger ?? silentLogger()).child({ component: "gatekeeper" });
    this.ctx = makeContext({
      knex: options.knex,
      now: options.now ?? Date.now,
      settings: options.settings,
      log,
      send: (stanza) => {
        if (this.wire === undefined) throw new Error("gatekeeper is not attached to a server");
        this.wire(stanza);
      },
    });
    const hello = new HelloService(this.ctx);
    const queue = new DeliveryQueue(this.ctx, (d) => hello.isOnline(d));
    const keys = new KeyDirectory(this.ctx, queue);
    this.services = {
      hello,
      queue,
      keys,
      identity: new IdentityService(this.ctx, queue),
      reach: new Reachability(this.ctx, keys),
      abuse: new AbuseService(this.ctx, queue),
      media: options.media,
    };
    const conversations = new Conversations(this.ctx);
    this.conversations = conversations;
    const records = new AcceptedRecords(this.ctx);
    this.records = records;
    this.pending = new PendingDeliveries(this.ctx.knex);
    this.iq = new IqHandler(this.ctx, this.services);
    this.inbound = new InboundMessages(
      this.ctx,
      this.services,
      conversations,
      records,
      this.pending,
      (d) => this.deliverLocal(d),
    );
    this.accounts = new Accounts(this.ctx);
    this.outbound = new OutboundMessages(this.ctx, this.services, conversations, records);
  }

  /** Migrates the simulator's database and builds the gatekeeper; `start` makes it talk. */
  static async create(options: GatekeeperOptions): Promise<Gatekeeper> {
    await migrateToLatest(options.knex, SIMULATOR_MIGRATIONS);
    return new Gatekeeper(options);
  }

  get now(): Clock {
    return this.ctx.now;
  }

  /** Sets where stanzas go (the XMPP server); `from` is always at a gatekeeper domain. */
  attach(wire: (stanza: XmlElement) => void): void {
    this.wire = wire;
  }

  /** Where deliveries to gatekeeper users go (the simulated users). */
  setLocalSink(sink: LocalSink): void {
    this.sink = sink;
  }

  /**
   * Loads hello state, asks providers without one for hello, sends what is queued and hands the
   * users what was accepted for them but not processed before the last stop.
   */
  async start(): Promise<void> {
    const unprocessed = await this.run(async () => {
      await this.services.hello.start();
      for (const p of this.ctx.settings.providers) await this.services.queue.pump(p.domain);
      return this.pending.all();
    });
    // Accepted before a crash, never processed by the user: processed now, in acceptance order.
    for (const { delivery } of unprocessed) this.deliverLocal(delivery);
  }

  /** Accepts a stanza from the XMPP server; processing is serial and never throws. */
  receive(stanza: XmlElement): void {
    void this.run(() => this.handle(stanza)).catch((err: unknown) => {
      this.ctx.log.error(
        { err: describeError(err), stanza: stanza.name },
        "stanza handling failed",
      );
    });
  }

  /** Runs `fn` in the gatekeeper's serial order (after every stanza received before). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.chain.then(() => {
      if (this.stopped) throw new Error("gatekeeper stopped");
      return fn();
    });
    this.chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Periodic work: redelivery after ack timeout, queue retention, pruning old records. */
  tick(): Promise<void> {
    return this.run(async () => {
      await this.services.queue.tick();
      await this.ctx.counters.prune(
        Math.max(DAY_MS, this.ctx.limits["notify-window-seconds"] * 1000),
      );
      await this.ctx.knex("gk_iq_cache").where("expires_at", "<=", this.ctx.now()).delete();
      await this.records.prune();
    });
  }

  /** Waits for in-flight work and refuses more. */
  async stop(): Promise<void> {
    await this.run(async () => undefined).catch(() => undefined);
    this.stopped = true;
  }

  private async handle(stanza: XmlElement): Promise<void> {
    if (stanza.name === "iq") return this.iq.handle(stanza);
    if (stanza.name !== "message") return;
    if (attr(stanza, "type") === "error") return this.bounced(stanza);
    if (hasChild(stanza, "ack", NS.delivery)) return this.ack(stanza);
    return this.inbound.handle(stanza);
  }

  /** A peer-offline bounce from the XMPP server makes the provider offline (§8.2). */
  private bounced(stanza: XmlElement): void {
    const from = attr(stanza, "from") ?? "";
    const provider = providerByDomain(this.ctx, domainOf(from));
    if (provider === undefined) return;
    const errorEl = stanza.children.find((c) => typeof c !== "string" && c.name === "error");
    if (errorEl === undefined || typeof errorEl === "string") return;
    try {
      const error = decodeStanzaError(errorEl);
      if (OFFLINE_CONDITIONS.has(error.condition) && error.app === undefined) {
        this.services.hello.markOffline(provider.domain);
      }
    } catch {
      // A malformed error is not an outcome for anything.
    }
  }

  /** Acks count only from the provider domain JID, for its deliveries, to the right `by` (§15.5). */
  private async ack(stanza: XmlElement): Promise<void> {
    const from = attr(stanza, "from") ?? "";
    const to = attr(stanza, "to") ?? "";
    const provider = providerByDomain(this.ctx, domainOf(from));
    if (provider === undefined) {
      this.reply(bounceFor(stanza, { type: "auth", condition: "not-authorized" }));
      return;
    }
    if (!this.services.hello.hasState(provider.domain)) {
      this.reply(bounceFor(stanza, interopError({ name: "hello-required" })));
      return;
    }
    if (from !== provider.domain) return;
    let message;
    try {
      message = classifyMessage(stanza, { maxAckItems: this.ctx.limits["max-ack-items"] });
    } catch {
      return;
    }
    if (message.payload.kind !== "ack") return;
    await this.services.queue.ack(provider.domain, to, message.payload.items);
  }

  private deliverLocal(delivery: LocalDelivery): void {
    // After the current stanza: the user's reaction (a receipt) goes through `run` as well.
    setImmediate(() => {
      if (this.stopped) return;
      this.sink(delivery).catch((err: unknown) => {
        this.ctx.log.warn({ err: describeError(err), to: delivery.to }, "local delivery failed");
      });
    });
  }

  private reply(stanza: XmlElement): void {
    try {
      this.ctx.send(stanza);
    } catch (err) {
      this.ctx.log.debug({ err: describeError(err) }, "answer not sent");
    }
  }
}

function hasChild(el: XmlElement, name: string, ns: string): boolean {
  return el.children.some(
    (c) => typeof c !== "string" && c.name === name && (c.attrs.xmlns === ns || c.getNS() === ns),
  );
}
