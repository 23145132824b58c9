/**
 * The Matrix ingress (docs/message-path.md, #13): what the homeserver pushes is recorded, then
 * acknowledged, then handled from the record by one worker per room.
 *
 *   transaction ─ hooks.receiveTransactionExtras(txn)        (#12: to-device etc., before the 200)
 *               ─ own echoes and events with invalid ids dropped
 *               ─ events + transaction id recorded in `matrix_inbox` in one commit
 *               ─ 200 (TransactionalAppService answers once `receive` resolved)
 *   room worker ─ hooks.decrypt(event)                        (#12: m.room.encrypted → clear event)
 *               ─ route(event) (MatrixEventRouter)
 *               ─ failure classified once (classify.ts):
 *                   permanent → notice in the room (when deliverable), row marked failed, next event
 *                   transient → retried in this room only, with backoff, up to `maxAttempts`;
 *                               then the row becomes a dead letter and the room gets a notice
 *
 * Events of one room are handled one at a time in arrival order; rooms are independent, so a
 * failing or slow room never holds back another (the management room is a room like any other).
 * Nothing here batches commits: the SqlRunner's transaction API is used as is and #15 makes it
 * group-commit underneath.
 *
 * Hooks (#12): `IngressHooks` is the single place where Matrix-side encryption plugs in. Both
 * default to no-ops (NO_INGRESS_HOOKS). `receiveTransactionExtras` runs before anything is
 * recorded and before the 200: if it throws, the transaction is answered 500 and repeated by the
 * homeserver. `decrypt` runs in the room's worker before routing; a failure it throws is
 * classified like any other (a BridgeError with `retryAt` is transient, e.g. a key still missing).
 */
import type { WeakEvent } from "matrix-appservice-bridge";
import { describeError } from "../../util/errors.js";
import { isMatrixUserId, type EventId, type RoomId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import type { EphemeralEvent, Transaction } from "../transactions.js";
import { classifyFailure, type FailureClass } from "./classify.js";
import { INBOX_RETENTION_MS, type InboxRow, type MatrixInboxTable } from "./inbox.js";
export { MatrixInboxTable } from "./inbox.js";

export interface IngressHooks {
  receiveTransactionExtras(txn: Transaction): Promise<void>;
  decrypt(event: WeakEvent): Promise<WeakEvent>;
}

const NO_INGRESS_HOOKS: IngressHooks = {
  receiveTransactionExtras: () => Promise.resolve(),
  decrypt: (event) => Promise.resolve(event),
};

export interface IngressPolicy {
  /** Attempts of one event failing transiently before it becomes a dead letter. */
  readonly maxAttempts: number;
  /** First wait after a transient failure; doubled per attempt up to `maxDelayMs`. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** How long `stop` waits for the event each worker is handling before it returns. */
  readonly stopGraceMs: number;
}

const DEFAULT_INGRESS_POLICY: IngressPolicy = {
  maxAttempts: 8,
  initialDelayMs: 500,
  maxDelayMs: 60_000,
  stopGraceMs: 5_000,
};

/** Told about failures, for /metrics. */
export interface IngressObserver {
  matrixEventFailed(kind: FailureClass | "dead-letter"): void;
}

export interface IngressOptions {
  inbox: MatrixInboxTable;
  /** The bot and the ghosts: their events are the bridge's own echoes, never recorded. */
  isOwnUser(user: string): boolean;
  /**
   * Handles one room event (MatrixEventRouter.route); throws to have it classified. `firstAttempt`
   * is true only when no attempt at this event can have been made before (MatrixIngress.begin).
   */
  route(event: WeakEvent, attempt: { firstAttempt: boolean }): Promise<void>;
  /** Receipts and typing: best effort, not recorded. */
  ephemeral(event: EphemeralEvent): Promise<void>;
  /** A notice of the bot in `room` (replying to `replyTo`). */
  notify(room: RoomId, text: string, replyTo?: EventId): Promise<void>;
  log: Logger;
  hooks?: IngressHooks;
  policy?: Partial<IngressPolicy>;
  observer?: IngressObserver;
}

/** Pending rows read per query by a room's worker. */
const BATCH = 32;
/**
 * How old (by its `origin_server_ts`) an event may be for its first attempt to be trusted as one:
 * well inside the inbox's retention, so that its row cannot have been recorded, handled and pruned
 * before (see `receive`); the margin is for the homeserver's clock against ours.
 */
const FIRST_ATTEMPT_MAX_AGE_MS = INBOX_RETENTION_MS / 2;
/** Matrix limits ids to 255 bytes; longer ones (or ones with spaces) are not events. */
const EVENT_ID = /^\$[^\s]{1,254}$/;
const ROOM_ID = /^![^\s]{1,254}$/;

interface Worker {
  /** Set when new events were recorded while the worker runs: read once more before ending. */
  again: boolean;
  done: Promise<void>;
}

export class MatrixIngress {
  private readonly hooks: IngressHooks;
  private readonly policy: IngressPolicy;
  private readonly workers = new Map<string, Worker>();
  private readonly sideWork = new Set<Promise<void>>();
  private readonly sleepers = new Set<() => void>();
  private stopping = false;
  /**
   * Rows (by seq) this process inserted and has not begun to handle: their first attempt is
   * the first ever (see `begin`). Emptied as they are handled; a stop drops it with the process.
   */
  private readonly firstAttempts = new Set<number>();
  /** The highest seq whose handling began in this process. */
  private highestBegun = 0;

  constructor(private readonly options: IngressOptions) {
    this.hooks = options.hooks ?? NO_INGRESS_HOOKS;
    this.policy = { ...DEFAULT_INGRESS_POLICY, ...options.policy };
  }

  /** Wakes the workers of rooms with events recorded before the last stop. */
  async start(): Promise<void> {
    for (const room of await this.options.inbox.roomsWithPending()) this.kick(room);
  }

  /**
   * The transaction handler: resolves once the transaction's events are durably recorded (the
   * appservice answers 200 then), rejects when they could not be (answered 500, retried).
   */
  async receive(txn: Transaction): Promise<void> {
    if (this.stopping) throw new Error("the bridge is stopping");
    await this.hooks.receiveTransactionExtras(txn);
    const entries = [];
    for (const event of txn.events) {
      const entry = this.entryOf(event);
      if (entry !== undefined) entries.push(entry);
    }
    // Nothing to record (the bridge's own echoes, to-device only): a repeat of this transaction
    // would do what this one did (the extras above are idempotent), so its id is not recorded
    // either; that was a statement and a commit per echo transaction (#15).
    if (entries.length === 0 && txn.ephemeral.length === 0) return;
    const { fresh, inserted } = await this.options.inbox.record(txn.id, entries);
    if (!fresh) {
      // Recorded before. Usually handled too, but a COMMIT whose answer was lost (the connection
      // cut right after it) failed the first call after its rows were durable, and nothing woke
      // their rooms: they waited for the room's next event or a restart. A kick of a room with
      // nothing pending reads one empty batch.
      for (const room of new Set(entries.map((e) => e.roomId))) this.kick(room);
      return;
    }
    // The rows this transaction inserted are new to the bridge: a repeated transaction id and an
    // event recorded before under another transaction insert none (inbox.ts). Only an event old
    // enough for its earlier row to have been pruned could be inserted a second time, so an old
    // one is not trusted as new. And a row is taken only if its handling cannot have begun yet:
    // a worker running in its room may have read it between the commit and this line, and its
    // seq would then be at most `highestBegun` (seqs only grow; a row is handled after insert).
    const recentSince = Date.now() - FIRST_ATTEMPT_MAX_AGE_MS;
    for (const entry of entries) {
      const seq = inserted.get(entry.eventId);
      if (seq !== undefined && entry.sentAt > recentSince && seq > this.highestBegun) {
        this.firstAttempts.add(seq);
      }
    }
    for (const room of new Set(entries.map((e) => e.roomId))) this.kick(room);
    for (const event of txn.ephemeral) this.background(this.options.ephemeral(event));
  }

  /** Stops the workers: each finishes (or, after `stopGraceMs`, abandons) its current event. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const wake of this.sleepers) wake();
    const all = Promise.all([...[...this.workers.values()].map((w) => w.done), ...this.sideWork]);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.policy.stopGraceMs);
    });
    await Promise.race([all.then(() => undefined), grace]);
    clearTimeout(timer);
  }

  /** Dead letters, oldest first. */
  deadLetters(limit = 20): Promise<InboxRow[]> {
    return this.options.inbox.dead(limit);
  }

  /** Puts one dead letter (or all) back in its room's queue; resolves how many rooms woke. */
  async retryDeadLetters(seq?: number): Promise<number> {
    const rooms = await this.options.inbox.revive(seq);
    for (const room of rooms) this.kick(room);
    return rooms.length;
  }

  /** Whether rooms still have events being handled (tests, readiness). */
  get busyRooms(): number {
    return this.workers.size;
  }

  private entryOf(
    event: WeakEvent,
  ): { eventId: string; roomId: string; json: string; sentAt: number } | undefined {
    const { event_id: id, room_id: room, sender } = event as Partial<WeakEvent>;
    if (typeof id !== "string" || typeof room !== "string" || typeof sender !== "string") {
      return undefined;
    }
    // Our own echoes are never work; they are the bulk of what a busy bridge is pushed.
    if (this.options.isOwnUser(sender)) return undefined;
    if (!EVENT_ID.test(id) || !ROOM_ID.test(room) || !isMatrixUserId(sender)) {
      // Permanent at the edge: no room to tell, nothing to retry.
      this.options.log.warn(
        { idLength: id.length, roomLength: room.length },
        "event with an invalid event, room or sender id dropped",
      );
      this.options.observer?.matrixEventFailed("permanent");
      return undefined;
    }
    const ts = (event as Partial<WeakEvent>).origin_server_ts;
    // No usable time: never trusted as new (receive).
    const sentAt = typeof ts === "number" && Number.isFinite(ts) ? ts : -Infinity;
    return { eventId: id, roomId: room, json: JSON.stringify(event), sentAt };
  }

  private kick(room: string): void {
    if (this.stopping) return;
    const running = this.workers.get(room);
    if (running !== undefined) {
      running.again = true;
      return;
    }
    const worker: Worker = { again: false, done: Promise.resolve() };
    this.workers.set(room, worker);
    worker.done = this.drain(room, worker).catch(async (err: unknown) => {
      // The inbox itself failed (database down): the rows stay pending; look again later.
      this.workers.delete(room);
      this.options.log.warn(
        { room, err: describeError(err) },
        "room worker failed to read or settle its events; retrying",
      );
      await this.sleep(this.policy.initialDelayMs * 4);
      this.kick(room);
    });
  }

  private async drain(room: string, worker: Worker): Promise<void> {
    for (;;) {
      if (this.stopping) {
        this.workers.delete(room);
        return;
      }
      worker.again = false;
      const rows = await this.options.inbox.pending(room, BATCH);
      for (const row of rows) {
        if (this.stopping) break;
        await this.handle(row);
      }
      if (rows.length === 0 && !worker.again) {
        // Synchronously with the check: a kick after this starts a new worker.
        this.workers.delete(room);
        return;
      }
    }
  }

  /**
   * Whether handling `row` now is the first attempt at its event ever, in this process or an
   * earlier one (the core then skips its look-up of the event's mapping, #15). True only for a
   * row this process inserted (receive) and whose handling begins now for the first time:
   *   - a repeated transaction, or the same event in a new transaction, inserted no row;
   *   - a crash during an attempt: the row stays pending, and the next process did not insert it;
   *   - a transient failure: the retry is the loop's next attempt, not a first one;
   *   - a worker that failed to settle the row reads it again, pending: begun before, not first;
   *   - a dead letter revived: begun before, not first.
   * A crash between the send and the mapping's insert leaves the row pending: its next attempt
   * (in the next process) is not a first one and looks the mapping up.
   */
  private begin(row: InboxRow): boolean {
    this.highestBegun = Math.max(this.highestBegun, row.seq);
    return this.firstAttempts.delete(row.seq) && row.attempts === 0;
  }

  private async handle(row: InboxRow): Promise<void> {
    const { inbox, log } = this.options;
    const first = this.begin(row);
    let event: WeakEvent;
    try {
      event = JSON.parse(row.event) as WeakEvent;
    } catch {
      await inbox.settle(row.seq, "failed", row.attempts, "unreadable-record");
      return;
    }
    for (let attempt = row.attempts + 1; ; attempt++) {
      try {
        const firstAttempt = first && attempt === row.attempts + 1;
        await this.options.route(await this.hooks.decrypt(event), { firstAttempt });
        await inbox.settle(row.seq, "done", attempt, null);
        return;
      } catch (err) {
        const failure = classifyFailure(err);
        const context = { room: row.roomId, eventId: row.eventId, attempt, code: failure.code };
        if (failure.kind === "permanent") {
          log.warn({ ...context, err: describeError(err) }, "event failed permanently; skipped");
          this.options.observer?.matrixEventFailed("permanent");
          await inbox.settle(row.seq, "failed", attempt, failure.code.slice(0, 255));
          await this.tell(row, `Not bridged: this event could not be handled (${failure.code}).`);
          return;
        }
        this.options.observer?.matrixEventFailed("transient");
        if (attempt >= this.policy.maxAttempts) {
          log.warn({ ...context, err: describeError(err) }, "event dead-lettered");
          this.options.observer?.matrixEventFailed("dead-letter");
          await inbox.settle(row.seq, "dead", attempt, failure.code.slice(0, 255));
          await this.tell(
            row,
            `Not bridged yet: this event failed ${attempt} times (${failure.code}). ` +
              "It was kept; an admin can retry it with `dead-letters retry`.",
          );
          return;
        }
        const delay = Math.max(
          failure.waitMs,
          Math.min(this.policy.initialDelayMs * 2 ** (attempt - 1), this.policy.maxDelayMs),
        );
        log.info(
          { ...context, retryInMs: delay },
          "event failed transiently; retrying in its room",
        );
        await this.sleep(delay);
        if (this.stopping) {
          // Left pending with its attempts so far: the next start goes on from there.
          await inbox.noteAttempts(row.seq, attempt).catch(() => undefined);
          return;
        }
      }
    }
  }

  private async tell(row: InboxRow, text: string): Promise<void> {
    try {
      await this.options.notify(row.roomId as RoomId, text, row.eventId as EventId);
    } catch (err) {
      // A room the bot cannot post to (left, never joined, invalid): logging is all there is.
      this.options.log.debug(
        { room: row.roomId, err: describeError(err) },
        "failure notice not deliverable",
      );
    }
  }

  private background(work: Promise<void>): void {
    const tracked = work
      .catch((err: unknown) => {
        this.options.log.debug({ err: describeError(err) }, "ephemeral event dropped");
      })
      .finally(() => this.sideWork.delete(tracked));
    this.sideWork.add(tracked);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
