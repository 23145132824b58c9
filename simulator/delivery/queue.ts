import type { XmlElement } from "../../src/interop/codec/xml.js";
import { parseXml } from "../../src/interop/codec/xml.js";
import type { QueryTarget } from "../../src/db/sql.js";
import type { StanzaId } from "../../src/util/ids.js";
import { describeError } from "../../src/util/errors.js";
import type { GatekeeperContext } from "../context.js";
import { newStanzaId } from "../state/ulid.js";

interface QueueRow {
  id: number;
  stanza_id: string;
  provider_domain: string;
  by_domain: string;
  stanza: string;
  created_at: number;
  sent_at: number | null;
}

/**
 * The gatekeeper's queue of deliveries to providers (§15.5): every queued stanza carries its
 * stanza-id and stays until the provider domain it went to acknowledges it to the `by` domain.
 * Deliveries go out in acceptance order, at most `max-unacked` in flight per provider, again after
 * `ack-timeout-seconds` and after every hello; they are dropped after `queue-retention-seconds`.
 */
export class DeliveryQueue {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly isOnline: (domain: string) => boolean,
  ) {}

  /**
   * Stores a delivery built around a fresh stanza-id, then sends what the provider can take.
   * `build` receives the stanza-id and returns the complete stanza.
   */
  async enqueue(
    providerDomain: string,
    byDomain: string,
    build: (stanzaId: StanzaId) => XmlElement,
  ): Promise<StanzaId> {
    return this.enqueueWithId(providerDomain, byDomain, newStanzaId(this.ctx.now()), build);
  }

  /** As `enqueue`, with a stanza-id the caller already assigned (and reported in `<accepted>`). */
  async enqueueWithId(
    providerDomain: string,
    byDomain: string,
    stanzaId: StanzaId,
    build: (stanzaId: StanzaId) => XmlElement,
  ): Promise<StanzaId> {
    const stanza = build(stanzaId);
    await this.ctx.knex("gk_queue").insert({
      stanza_id: stanzaId,
      provider_domain: providerDomain,
      by_domain: byDomain,
      stanza: stanza.toString(),
      created_at: this.ctx.now(),
      sent_at: null,
    });
    await this.pump(providerDomain);
    return stanzaId;
  }

  /**
   * Stores a delivery in `db` (a transaction that also records its acceptance) without sending
   * it: the caller pumps the provider after the commit, so nothing goes out that a rollback
   * would take back.
   */
  async insert(
    db: QueryTarget,
    providerDomain: string,
    byDomain: string,
    stanzaId: StanzaId,
    stanza: XmlElement,
  ): Promise<void> {
    await db("gk_queue").insert({
      stanza_id: stanzaId,
      provider_domain: providerDomain,
      by_domain: byDomain,
      stanza: stanza.toString(),
      created_at: this.ctx.now(),
      sent_at: null,
    });
  }

  /** Sends queued, never-sent deliveries while fewer than `max-unacked` are in flight. */
  async pump(providerDomain: string): Promise<void> {
    if (!this.isOnline(providerDomain)) return;
    // Counted, then only the unsent rows that fit read: reading the whole queue (stanzas
    // included) on every enqueue and ack made a group's fan-out quadratic (issue #17 bench).
    const [sent] = (await this.ctx
      .knex("gk_queue")
      .where({ provider_domain: providerDomain })
      .whereNotNull("sent_at")
      .count({ n: "*" })) as { n: number | string }[];
    const free = this.ctx.limits["max-unacked"] - Number(sent?.n ?? 0);
    if (free <= 0) return;
    const rows = (await this.ctx
      .knex("gk_queue")
      .where({ provider_domain: providerDomain })
      .whereNull("sent_at")
      .orderBy("id")
      .limit(free)) as QueueRow[];
    for (const row of rows) await this.transmit(row);
  }

  /** After a hello: every unacknowledged delivery goes out again, in order. */
  async redeliverAll(providerDomain: string): Promise<void> {
    await this.ctx
      .knex("gk_queue")
      .where({ provider_domain: providerDomain })
      .update({ sent_at: null });
    await this.pump(providerDomain);
  }

  /**
   * Applies an ack: only items delivered to `fromDomain` and whose `by` is the domain the ack
   * was addressed to count (§15.5, G24). Returns how many deliveries it removed.
   */
  async ack(fromDomain: string, toDomain: string, items: readonly StanzaId[]): Promise<number> {
    const removed = await this.ctx
      .knex("gk_queue")
      .where({ provider_domain: fromDomain, by_domain: toDomain })
      .whereIn("stanza_id", [...items])
      .delete();
    if (removed > 0) await this.pump(fromDomain);
    return removed;
  }

  /** Redelivers what timed out and drops what outlived the retention (call periodically). */
  async tick(): Promise<void> {
    const now = this.ctx.now();
    await this.ctx
      .knex("gk_queue")
      .where("created_at", "<=", now - this.ctx.limits["queue-retention-seconds"] * 1000)
      .delete();
    const timedOut = (await this.ctx
      .knex("gk_queue")
      .whereNotNull("sent_at")
      .andWhere("sent_at", "<=", now - this.ctx.limits["ack-timeout-seconds"] * 1000)
      .orderBy("id")) as QueueRow[];
    for (const row of timedOut) {
      if (this.isOnline(row.provider_domain)) await this.transmit(row);
    }
    const domains = (await this.ctx.knex("gk_queue").distinct("provider_domain")) as {
      provider_domain: string;
    }[];
    for (const d of domains) await this.pump(d.provider_domain);
  }

  /** Unacknowledged deliveries, per provider domain or in total. */
  async depth(providerDomain?: string): Promise<number> {
    const query = this.ctx.knex("gk_queue").count({ n: "*" });
    if (providerDomain !== undefined) query.where({ provider_domain: providerDomain });
    const rows = (await query) as { n: number | string }[];
    return Number(rows[0]?.n ?? 0);
  }

  private async transmit(row: QueueRow): Promise<void> {
    await this.ctx.knex("gk_queue").where({ id: row.id }).update({ sent_at: this.ctx.now() });
    try {
      this.ctx.send(parseXml(row.stanza));
    } catch (err) {
      this.ctx.log.warn({ err: describeError(err), stanzaId: row.stanza_id }, "delivery not sent");
    }
  }
}
