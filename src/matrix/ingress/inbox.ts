import { createHash } from "node:crypto";
import type { SqlRunner } from "../../db/sql.js";

/** How long handled and failed rows are kept (a retried transaction is skipped by its id). */
export const INBOX_RETENTION_MS = 24 * 60 * 60 * 1000;

type InboxState = "pending" | "done" | "failed" | "dead";

/** One recorded Matrix room event. */
export interface InboxRow {
  seq: number;
  eventId: string;
  roomId: string;
  /** The event as the homeserver pushed it (JSON text). */
  event: string;
  state: InboxState;
  attempts: number;
  /** The failure's code for failed and dead rows (never message content). */
  error: string | null;
  receivedAt: number;
}

/** An event as it is recorded: already filtered (own echoes, invalid ids) by the ingress. */
interface InboxEntry {
  eventId: string;
  roomId: string;
  json: string;
}

interface RawRow {
  seq: number;
  event_id: string;
  room_id: string;
  event: string;
  state: InboxState;
  attempts: number;
  error: string | null;
  received_at: number | string;
}

interface DoneMark {
  seq: number;
  attempts: number;
  now: number;
  resolve(): void;
  reject(err: unknown): void;
}

const COLUMNS = "seq, event_id, room_id, event, state, attempts, error, received_at";

const toRow = (r: RawRow): InboxRow => ({
  seq: Number(r.seq),
  eventId: r.event_id,
  roomId: r.room_id,
  event: r.event,
  state: r.state,
  attempts: Number(r.attempts),
  error: r.error,
  receivedAt: Number(r.received_at),
});

/** Events per INSERT of `record` (5 parameters each: far below SQLite's bound-parameter limit). */
const RECORD_CHUNK = 100;

/** Transaction ids are short in practice; a longer one is kept by its digest. */
const txnKey = (id: string): string =>
  id.length <= 200 ? id : `sha256:${createHash("sha256").update(id).digest("hex")}`;

/**
 * The `matrix_inbox` and `matrix_transactions` tables (migrations/0005_matrix_inbox.ts), written
 * through the SqlRunner's transaction API only, so that #15's group commit applies underneath.
 */
export class MatrixInboxTable {
  /** Rows handled, waiting for the statement that marks them (settleDone). */
  private readonly doneQueue: DoneMark[] = [];

  constructor(private readonly sql: SqlRunner) {}

  /**
   * Records a transaction's events and its id in one commit. Resolves `fresh: false` (and records
   * nothing) when the id was recorded before: the homeserver repeated a transaction whose 200 it
   * did not see. An event recorded before under another transaction is kept once (by event id):
   * `inserted` holds the rows this call added (by event id, with their `seq`), and none of those.
   */
  async record(
    txnId: string,
    entries: readonly InboxEntry[],
    now = Date.now(),
  ): Promise<{ fresh: boolean; inserted: ReadonlyMap<string, number> }> {
    return this.sql.transaction(async (tx) => {
      const inserted = new Map<string, number>();
      const added = await tx.run(
        "INSERT INTO matrix_transactions (txn_id, received_at) VALUES (?, ?) ON CONFLICT (txn_id) DO NOTHING",
        [txnKey(txnId), now],
      );
      if (added === 0) return { fresh: false, inserted };
      // One multi-row statement per chunk instead of one per event (#15: a statement per Matrix
      // event); the rows keep the transaction's order, so `seq` is still the arrival order.
      // RETURNING names only the rows inserted, not those kept by ON CONFLICT DO NOTHING.
      const once = [...new Map(entries.map((e) => [e.eventId, e] as const)).values()];
      for (let i = 0; i < once.length; i += RECORD_CHUNK) {
        const chunk = once.slice(i, i + RECORD_CHUNK);
        const rows = await tx.all<{ seq: number | string; event_id: string }>(
          "INSERT INTO matrix_inbox (event_id, room_id, event, state, attempts, received_at, updated_at) VALUES " +
            chunk.map(() => "(?, ?, ?, 'pending', 0, ?, ?)").join(", ") +
            " ON CONFLICT (event_id) DO NOTHING RETURNING seq, event_id",
          chunk.flatMap((e) => [e.eventId, e.roomId, e.json, now, now]),
        );
        for (const row of rows) inserted.set(row.event_id, Number(row.seq));
      }
      return { fresh: true, inserted };
    });
  }

  /** The oldest pending events of one room, in arrival order. */
  async pending(room: string, limit: number): Promise<InboxRow[]> {
    // One statement: alone in its group it needs no BEGIN/COMMIT (SqlRunner.connection).
    const rows = await this.sql.connection((tx) =>
      tx.all<RawRow>(
        `SELECT ${COLUMNS} FROM matrix_inbox WHERE room_id = ? AND state = 'pending' ORDER BY seq LIMIT ?`,
        [room, limit],
      ),
    );
    return rows.map(toRow);
  }

  /** Rooms with pending events (at start: work recorded before a stop or crash). */
  async roomsWithPending(): Promise<string[]> {
    const rows = await this.sql.connection((tx) =>
      tx.all<{ room_id: string }>(
        "SELECT DISTINCT room_id FROM matrix_inbox WHERE state = 'pending'",
      ),
    );
    return rows.map((r) => r.room_id);
  }

  async settle(
    seq: number,
    state: Exclude<InboxState, "pending">,
    attempts: number,
    error: string | null,
    now = Date.now(),
  ): Promise<void> {
    if (state === "done" && error === null) return this.settleDone(seq, attempts, now);
    await this.sql.connection((tx) =>
      tx.run(
        "UPDATE matrix_inbox SET state = ?, attempts = ?, error = ?, updated_at = ? WHERE seq = ?",
        [state, attempts, error, now, seq],
      ),
    );
  }

  /**
   * Marks a row handled. The rows of all rooms marked in the same turn of the event loop share ONE
   * statement (`... WHERE seq IN (...)`, in the SqlRunner group of that turn), and each caller
   * resumes only after its commit, as with a statement of its own: a room's worker still handles
   * its next event only once this one is marked, so a crash re-routes no more than before (#15:
   * the mark was a statement and often a commit per Matrix event).
   */
  settleDone(seq: number, attempts: number, now = Date.now()): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.doneQueue.push({ seq, attempts, now, resolve, reject });
      if (this.doneQueue.length > 1) return;
      // The group may run this function twice (another item of it failed): the marks it took
      // the first time are the ones it writes again.
      let taken: DoneMark[] | undefined;
      this.sql
        .connection(async (tx) => {
          taken ??= this.doneQueue.splice(0);
          const byAttempts = new Map<number, DoneMark[]>();
          for (const mark of taken) {
            const same = byAttempts.get(mark.attempts);
            if (same === undefined) byAttempts.set(mark.attempts, [mark]);
            else same.push(mark);
          }
          for (const [count, marks] of byAttempts) {
            // Chunks keep the statement under SQLite's bound-parameter limit.
            for (let i = 0; i < marks.length; i += 500) {
              const chunk = marks.slice(i, i + 500);
              const at = Math.max(...chunk.map((m) => m.now));
              await tx.run(
                `UPDATE matrix_inbox SET state = 'done', attempts = ?, error = NULL, updated_at = ? WHERE seq IN (${chunk.map(() => "?").join(", ")})`,
                [count, at, ...chunk.map((m) => m.seq)],
              );
            }
          }
        })
        .then(
          () => {
            for (const mark of taken ?? []) mark.resolve();
          },
          (err: unknown) => {
            // Not run at all (taken unset): the marks still queued fail with it.
            for (const mark of taken ?? this.doneQueue.splice(0)) mark.reject(err);
          },
        );
    });
  }

  /** Keeps a pending row pending, with the attempts it has used (a stop between retries). */
  async noteAttempts(seq: number, attempts: number, now = Date.now()): Promise<void> {
    await this.sql.connection((tx) =>
      tx.run("UPDATE matrix_inbox SET attempts = ?, updated_at = ? WHERE seq = ?", [
        attempts,
        now,
        seq,
      ]),
    );
  }

  /** Dead letters, oldest first. */
  async dead(limit: number): Promise<InboxRow[]> {
    const rows = await this.sql.connection((tx) =>
      tx.all<RawRow>(
        `SELECT ${COLUMNS} FROM matrix_inbox WHERE state = 'dead' ORDER BY seq LIMIT ?`,
        [limit],
      ),
    );
    return rows.map(toRow);
  }

  async countDead(): Promise<number> {
    const [row] = await this.sql.connection((tx) =>
      tx.all<{ n: number | string }>("SELECT COUNT(*) AS n FROM matrix_inbox WHERE state = 'dead'"),
    );
    return Number(row?.n ?? 0);
  }

  /**
   * Puts dead letters back to pending (all, or the one with `seq`), with their attempts reset;
   * resolves the rooms to wake.
   */
  async revive(seq?: number, now = Date.now()): Promise<string[]> {
    return this.sql.transaction(async (tx) => {
      const where = seq === undefined ? "state = 'dead'" : "state = 'dead' AND seq = ?";
      const params = seq === undefined ? [] : [seq];
      const rooms = await tx.all<{ room_id: string }>(
        `SELECT DISTINCT room_id FROM matrix_inbox WHERE ${where}`,
        params,
      );
      await tx.run(
        `UPDATE matrix_inbox SET state = 'pending', attempts = 0, error = NULL, updated_at = ? WHERE ${where}`,
        [now, ...params],
      );
      return rooms.map((r) => r.room_id);
    });
  }

  /** Forgets handled and failed events and transaction ids older than the retention. */
  async prune(now = Date.now()): Promise<number> {
    const before = now - INBOX_RETENTION_MS;
    return this.sql.transaction(async (tx) => {
      const events = await tx.run(
        "DELETE FROM matrix_inbox WHERE state IN ('done', 'failed') AND updated_at < ?",
        [before],
      );
      const txns = await tx.run("DELETE FROM matrix_transactions WHERE received_at < ?", [before]);
      return events + txns;
    });
  }
}
