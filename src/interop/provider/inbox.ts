import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import type { Tx } from "../../db/sql.js";
import { describeError } from "../../util/errors.js";
import type { BareJid, DeviceId, StanzaId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { buildAck } from "../codec/message-builders.js";
import type { KeyVault } from "../../vault/key-vault.js";
import type { HelloSession } from "./session.js";
import type { Envelope } from "../codec/envelope.js";
import type { StoredEvent } from "./types.js";
import * as tables from "../store/index.js";

/**
 * The receiving side's durable records (§15.4, §15.5): stanza-ids seen (`inbox`), messages
 * decrypted per device (`decrypted_messages`), and events committed but not yet handed over
 * (in their `inbox` row, sealed, since they may hold decrypted content).
 */

/** The `<received>` to queue once the message is handed over (§15.7). */
interface PendingReceipt {
  /** Our receiving device's full JID. */
  readonly from: string;
  /** The author's bare JID. */
  readonly to: string;
  readonly id: string;
  /** Group receipts (§17.4): `to` is the group JID and `author` the member who sent it. */
  readonly author?: string;
}

/**
 * An event committed and not yet handed over: the engine's own event (types.ts), stored as it is
 * (StoredEvent), with what its hand-over needs besides.
 */
export interface PendingEntry {
  readonly stanzaId: StanzaId;
  readonly by: string;
  readonly event: StoredEvent;
  readonly receipt: PendingReceipt | undefined;
  /**
   * A message's envelope as decoded and checked at decrypt time, carried in memory to the
   * hand-over so that the normal path decodes it once. Absent in an entry read back from
   * `inbox` (a replay after a restart, or of an event the core deferred): that one is
   * decoded again from the stored bytes (Receiver's eventOf).
   */
  readonly envelope?: Envelope;
}

/**
 * A stored event back from its JSON. Its only date is `stamp` (ISO string in JSON, checked at
 * compile time below); a null field is an absent one: the records of the previous version
 * (before issue #16 merged them with the engine's events) stored absent values as null, and a
 * pending row of that version must still be handed over after the upgrade.
 */
export function restoreEvent(json: unknown): StoredEvent {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (value === null) continue;
    out[key] = key === "stamp" && typeof value === "string" ? new Date(value) : value;
  }
  return out as StoredEvent;
}

/** The fields of E that hold a Date: JSON turns them into strings, which restoreEvent revives. */
type DateFields<E> = E extends unknown
  ? { [K in keyof E]-?: Date extends NonNullable<E[K]> ? K : never }[keyof E]
  : never;
/** Fails to compile when a stored event gains a Date field that restoreEvent does not revive. */
true satisfies [DateFields<StoredEvent>] extends ["stamp"] ? true : never;

/**
 * The key prefix of pending records that no gatekeeper delivered (identity changes): their
 * `by` is empty and they are never acked. The rest of the key is a random UUID, so a
 * gatekeeper's stanza-id (opaque, §15.5) does not meet one by chance.
 */
export const LOCAL_ENTRY_PREFIX = "local:";

/** Whether a pending entry came from no delivery (see LOCAL_ENTRY_PREFIX). */
export const isLocalEntry = (entry: PendingEntry): boolean =>
  entry.by === "" && entry.stanzaId.startsWith(LOCAL_ENTRY_PREFIX);

/**
 * The vault binding of a pending event: its stanza-id, under the label of the table that held
 * pending events until migration 0021 (now `inbox`). The label is fixed, not the table's name:
 * the events that migration moved were sealed under it and must still open.
 */
const pendingRef = (stanzaId: string): readonly [string, string] => ["inbound_pending", stanzaId];

export class InboxStore {
  constructor(
    private readonly knex: Knex,
    private readonly vault: KeyVault,
  ) {}

  async seen(stanzaId: string): Promise<boolean> {
    return tables.inbox.seen(this.knex, stanzaId);
  }

  async record(tx: Tx, stanzaId: string, by: string, now: number): Promise<void> {
    await tables.inbox.record(tx, stanzaId, by, now);
  }

  /**
   * `record` that tells whether the stanza-id is new: false when it was recorded before (one
   * statement, instead of a `seen` check before the insert).
   */
  async recordNew(tx: Tx, stanzaId: string, by: string, now: number): Promise<boolean> {
    return tables.inbox.recordNew(tx, stanzaId, by, now);
  }

  async decrypted(
    local: BareJid,
    device: DeviceId,
    sender: BareJid,
    originId: string,
  ): Promise<boolean> {
    return tables.decryptedMessages.exists(this.knex, { local, device, sender, originId });
  }

  /**
   * In the transaction that commits the advanced session (the hot path: one prepared statement).
   * False when the message was decrypted before (a copy, or a retry re-send of it): the de-dup
   * check and the record in one statement.
   */
  async recordDecrypted(
    tx: Tx,
    key: { local: BareJid; device: DeviceId; sender: BareJid; originId: string },
    now: number,
  ): Promise<boolean> {
    return tables.decryptedMessages.recordNew(tx, key, now);
  }

  /**
   * Records the stanza-id (if new) with the event pending hand-over, in one statement; nothing
   * when it is pending already (a redelivery).
   */
  async addPending(tx: Tx, entry: PendingEntry, now: number): Promise<void> {
    await tables.inbox.insertPending(tx, this.rowOf(entry), now);
  }

  /**
   * `recordNew` and `addPending` in one statement (the hot path of a message): false, and
   * nothing written, when the stanza-id was recorded before.
   */
  async recordNewPending(tx: Tx, entry: PendingEntry, now: number): Promise<boolean> {
    return tables.inbox.recordNewPending(tx, this.rowOf(entry), now);
  }

  async pending(stanzaId: string): Promise<PendingEntry | undefined> {
    const row = await tables.inbox.getPending(this.knex, stanzaId);
    return row === undefined ? undefined : this.open(row);
  }

  /** How many committed deliveries await hand-over to the core (the inbox depth metric). */
  async depth(): Promise<number> {
    return tables.inbox.countPending(this.knex);
  }

  async allPending(): Promise<PendingEntry[]> {
    const rows = await tables.inbox.allPending(this.knex);
    return rows.map((row) => this.open(row));
  }

  /**
   * The hand-over's end: false when it was not pending (handed over before). A delivery's row
   * stays as its de-dup record; an entry of no delivery (LOCAL_ENTRY_PREFIX) goes, since nothing
   * acks it and the retention purge takes acked rows only.
   */
  async completePending(tx: Tx, stanzaId: string): Promise<boolean> {
    // A gatekeeper's stanza-id that happens to start with the prefix (opaque, §15.5) has a
    // `by`, so the delete leaves it, and it is completed as any delivery's.
    if (stanzaId.startsWith(LOCAL_ENTRY_PREFIX) && (await tables.inbox.removePending(tx, stanzaId)))
      return true;
    return tables.inbox.completePending(tx, stanzaId);
  }

  async markAcked(stanzaIds: readonly string[]): Promise<void> {
    if (stanzaIds.length === 0) return;
    await tables.inbox.markAcked(this.knex, stanzaIds);
  }

  /** Forgets acked stanza-ids after `queue-retention-seconds` and de-dup records after the window. */
  async purge(inboxCutoff: number, decryptedCutoff: number): Promise<void> {
    await tables.inbox.deleteAckedBefore(this.knex, inboxCutoff);
    await tables.decryptedMessages.deleteBefore(this.knex, decryptedCutoff);
  }

  private rowOf(entry: PendingEntry): tables.inbox.NewPendingRow {
    return {
      stanzaId: entry.stanzaId,
      by: entry.by,
      localJid: "local" in entry.event ? entry.event.local : "",
      eventEnc: this.vault.seal(
        new Uint8Array(Buffer.from(JSON.stringify(entry.event), "utf8")),
        pendingRef(entry.stanzaId),
      ),
      receipt: entry.receipt === undefined ? null : JSON.stringify(entry.receipt),
    };
  }

  private open(row: tables.inbox.PendingRow): PendingEntry {
    const plain = this.vault.open(row.event_enc, pendingRef(row.stanza_id));
    return {
      stanzaId: row.stanza_id as StanzaId,
      by: row.by_domain,
      event: restoreEvent(JSON.parse(Buffer.from(plain).toString("utf8"))),
      receipt: row.receipt === null ? undefined : (JSON.parse(row.receipt) as PendingReceipt),
    };
  }
}

interface AckBatcherOptions {
  readonly session: HelloSession;
  readonly domain: string;
  readonly inbox: InboxStore;
  readonly delayMs: number;
  readonly maxItems: () => number;
  readonly logger: Logger;
}

/**
 * Collects acks for a short time (§15.5: at most 5 s) and sends them to the `by` domain of each
 * stanza-id, at most `max-ack-items` per ack. Items that could not be sent (not ready, offline)
 * stay and go out with the next flush; the gatekeeper redelivers meanwhile, which is harmless.
 */
export class AckBatcher {
  private readonly waiting = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  /**
   * The flush in progress. Flushes run one at a time: concurrent ones (one per item over
   * `max-ack-items` while a burst of redeliveries is acked) took the same items, sent them twice
   * and marked the same rows in concurrent statements, which PostgreSQL answered with deadlocks
   * while those statements held the pool's connections; the hand-over commits waiting for one
   * then failed, and their events were handed over again.
   */
  private flushing: Promise<void> | undefined;
  /** Set when a flush is asked for while one runs: it goes round once more. */
  private again = false;

  constructor(private readonly options: AckBatcherOptions) {
    this.log = options.logger.child({ component: "acks" });
  }

  get size(): number {
    let n = 0;
    for (const items of this.waiting.values()) n += items.size;
    return n;
  }

  add(by: string, stanzaId: string): void {
    let items = this.waiting.get(by);
    if (items === undefined) {
      items = new Set();
      this.waiting.set(by, items);
    }
    items.add(stanzaId);
    if (items.size >= this.options.maxItems()) void this.flush();
    else this.schedule();
  }

  /** Sends what waits; resolves once the items waiting at the call were sent or deferred. */
  flush(): Promise<void> {
    if (this.flushing !== undefined) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      do {
        this.again = false;
        if (!(await this.flushOnce())) return;
      } while (this.again);
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** False when the session refused: what is left goes with a later flush. */
  private async flushOnce(): Promise<boolean> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.options.session.ready) return false;
    for (const [by, items] of this.waiting) {
      while (items.size > 0) {
        const batch = [...items].slice(0, this.options.maxItems());
        const ack = buildAck({
          from: this.options.domain,
          to: by,
          id: `ack-${randomBytes(8).toString("hex")}`,
          items: batch as StanzaId[],
        });
        try {
          await this.options.session.send(ack);
        } catch (err) {
          this.log.debug({ err: describeError(err), items: batch.length }, "ack deferred");
          return false;
        }
        for (const id of batch) items.delete(id);
        await this.options.inbox.markAcked(batch).catch((err: unknown) => {
          this.log.warn({ err: describeError(err) }, "could not record acks");
        });
      }
      this.waiting.delete(by);
    }
    return true;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => void this.flush(), this.options.delayMs);
    this.timer.unref();
  }
}
