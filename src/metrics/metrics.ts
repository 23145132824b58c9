import type { Knex } from "knex";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CoreObserver, Direction } from "../core/observer.js";
import type { MessageContent } from "../core/network.js";
import type { FailureClass } from "../matrix/ingress/classify.js";
import type { IngressObserver } from "../matrix/ingress/index.js";

/** Figures read when Prometheus scrapes, rather than counted as they change. */
interface ScrapeSources {
  /** Outgoing stanzas not yet accepted or failed (the persisted outbox). */
  outboxDepth(): Promise<number>;
  /** Inbound deliveries decrypted but not yet handed to the core (held or in flight). */
  inboxDepth(): Promise<number>;
  /** Users logged in to the network, and portals (direct rooms) that exist. */
  usersLoggedIn(): Promise<number>;
  portals(): Promise<number>;
  /** Matrix events kept as dead letters now (src/matrix/ingress/); 0 when not given. */
  deadLetters?(): Promise<number>;
  /** Stored logins that failed to load and are being retried; 0 when not given. */
  loginsFailed?(): number;
  /** The network connection; undefined when no connector reports it. */
  gatekeeper(): { connected: boolean; code: string } | undefined;
}

const PREFIX = "mwi_";

/**
 * The bridge's Prometheus metrics in one registry (prefix `mwi_`, listed in docs/operations.md).
 * Counters are fed by the core (as its CoreObserver) and by the database's query events; depths,
 * counts and the gatekeeper's state are read from their sources at scrape time, so a metric never
 * drifts from the state it reports.
 */
export class BridgeMetrics implements CoreObserver, IngressObserver {
  readonly registry = new Registry();
  private readonly matrixFailures: Counter<"class">;
  private readonly deadLettered: Counter;
  private readonly messages: Counter<"direction" | "type">;
  private readonly failures: Counter<"direction" | "reason">;
  private readonly latency: Histogram<"direction">;
  private readonly decryption: Counter;
  private readonly queries: Histogram<"operation" | "outcome">;
  private sources: ScrapeSources | undefined;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    this.messages = new Counter({
      name: `${PREFIX}messages_bridged_total`,
      help: "Messages handed to the other side, by direction (to-network, to-matrix) and type.",
      labelNames: ["direction", "type"],
      registers,
    });
    this.failures = new Counter({
      name: `${PREFIX}message_failures_total`,
      help: "Messages not bridged, by direction and reason code.",
      labelNames: ["direction", "reason"],
      registers,
    });
    this.latency = new Histogram({
      name: `${PREFIX}bridge_latency_seconds`,
      help:
        "Time from a message's arrival in the core to its hand-off: to the outbox (to-network) or " +
        "the homeserver's answer (to-matrix).",
      labelNames: ["direction"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.decryption = new Counter({
      name: `${PREFIX}decryption_failures_total`,
      help: "Messages from the network that could not be decrypted.",
      registers,
    });
    this.matrixFailures = new Counter({
      name: `${PREFIX}matrix_event_failures_total`,
      help:
        "Failed attempts at Matrix events by class: permanent (reported, skipped), transient " +
        "(retried in the room), dead-letter (retries exhausted).",
      labelNames: ["class"],
      registers,
    });
    this.deadLettered = new Counter({
      name: `${PREFIX}matrix_dead_letters_total`,
      help: "Matrix events that became dead letters (see the admin command dead-letters).",
      registers,
    });
    this.queries = new Histogram({
      name: `${PREFIX}database_query_seconds`,
      help: "Database query time by statement kind (select, insert, ...) and outcome.",
      labelNames: ["operation", "outcome"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    // collect() runs with the gauge as `this`; the sources are read through `self`.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const scraped = (name: string, help: string, read: (s: ScrapeSources) => Promise<number>) =>
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        registers,
        async collect() {
          if (self.sources !== undefined) this.set(await read(self.sources));
        },
      });
    scraped("outbox_depth", "Outgoing stanzas awaiting the gatekeeper's acceptance.", (s) =>
      s.outboxDepth(),
    );
    scraped("inbox_depth", "Inbound deliveries decrypted but not yet bridged.", (s) =>
      s.inboxDepth(),
    );
    scraped("users_logged_in", "Matrix users logged in to WhatsApp.", (s) => s.usersLoggedIn());
    scraped("portals", "Direct chat rooms (portals).", (s) => s.portals());
    scraped("matrix_dead_letters", "Matrix events kept as dead letters now.", (s) =>
      s.deadLetters === undefined ? Promise.resolve(0) : s.deadLetters(),
    );
    scraped(
      "logins_failed",
      "Stored logins that failed to load and are being retried with backoff (see the bot's status).",
      (s) => Promise.resolve(s.loginsFailed?.() ?? 0),
    );
    new Gauge({
      name: `${PREFIX}gatekeeper_connected`,
      help: "1 while the gatekeeper session is up (hello succeeded), else 0.",
      registers,
      collect() {
        const state = self.sources?.gatekeeper();
        if (state !== undefined) this.set(state.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}gatekeeper_state`,
      help: "The gatekeeper session's state: 1 for the current code, 0 for the others seen.",
      labelNames: ["code"],
      registers,
      collect() {
        const state = self.sources?.gatekeeper();
        if (state === undefined) return;
        this.reset();
        this.set({ code: state.code }, 1);
      },
    });
  }

  /** Where the scrape-time figures come from (set once the database and connector exist). */
  setSources(sources: ScrapeSources): void {
    this.sources = sources;
  }

  messageBridged(direction: Direction, type: MessageContent["type"], seconds: number): void {
    this.messages.inc({ direction, type });
    this.latency.observe({ direction }, seconds);
  }

  messageFailed(direction: Direction, reason: string): void {
    this.failures.inc({ direction, reason });
  }

  matrixEventFailed(kind: FailureClass | "dead-letter"): void {
    this.matrixFailures.inc({ class: kind });
    if (kind === "dead-letter") this.deadLettered.inc();
  }

  undecryptable(): void {
    this.decryption.inc();
  }

  /** Times every query of this knex instance (its query / query-response / query-error events). */
  observeDatabase(knex: Knex): void {
    const started = new Map<string, number>();
    const done = (outcome: "ok" | "error") => (_x: unknown, query: KnexQuery) => {
      const at = started.get(query.__knexQueryUid);
      if (at === undefined) return;
      started.delete(query.__knexQueryUid);
      this.queries.observe(
        { operation: operationOf(query), outcome },
        (performance.now() - at) / 1000,
      );
    };
    knex.on("query", (query: KnexQuery) => started.set(query.__knexQueryUid, performance.now()));
    knex.on("query-response", done("ok"));
    knex.on("query-error", done("error"));
  }

  /** The exposition text Prometheus scrapes. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

interface KnexQuery {
  __knexQueryUid: string;
  method?: string;
  sql?: string;
}

const OPERATIONS = new Set([
  "select",
  "insert",
  "update",
  "del",
  "delete",
  "raw",
  "first",
  "pluck",
]);

/** A bounded label: knex's method, else the statement's first word, else `other`. */
function operationOf(query: KnexQuery): string {
  const method = query.method ?? query.sql?.trim().split(/\s+/)[0]?.toLowerCase() ?? "other";
  if (method === "del") return "delete";
  if (method === "first" || method === "pluck") return "select";
  return OPERATIONS.has(method) ? method : "other";
}
