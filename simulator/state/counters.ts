import type { Knex } from "knex";
import type { Clock } from "../config.js";

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/**
 * Rolling-window counters kept in the database (one row per event), behind every quota of the
 * simulator: verification requests and failures (§9.1), lookups (§10.2), key fetches and prekey
 * hand-outs (§11.4), messages and new conversations (§16.3).
 */
export class Counters {
  constructor(
    private readonly knex: Knex,
    private readonly now: Clock,
  ) {}

  /** Event times in the window, oldest first. */
  async times(scope: string, subject: string, windowMs: number): Promise<number[]> {
    const rows = (await this.knex("gk_events")
      .select("at")
      .where({ scope, subject })
      .andWhere("at", ">", this.now() - windowMs)
      .orderBy("at")) as { at: number }[];
    return rows.map((r) => Number(r.at));
  }

  async count(scope: string, subject: string, windowMs: number): Promise<number> {
    return (await this.times(scope, subject, windowMs)).length;
  }

  /** Items seen in the window, each with the time it was first counted. */
  async items(scope: string, subject: string, windowMs: number): Promise<Map<string, number>> {
    const rows = (await this.knex("gk_events")
      .select("item", "at")
      .where({ scope, subject })
      .andWhere("at", ">", this.now() - windowMs)
      .orderBy("at")) as { item: string; at: number }[];
    const out = new Map<string, number>();
    for (const r of rows) if (!out.has(r.item)) out.set(r.item, Number(r.at));
    return out;
  }

  async record(scope: string, subject: string, item = "", times = 1): Promise<void> {
    const at = this.now();
    const rows = Array.from({ length: times }, () => ({ scope, subject, item, at }));
    if (rows.length > 0) await this.knex("gk_events").insert(rows);
  }

  /**
   * When the window will hold fewer than `limit` events if `adding` are added: the time the
   * oldest event that must drop out leaves the window (ms), or undefined if they fit now.
   */
  static freeAt(
    times: readonly number[],
    limit: number,
    adding: number,
    windowMs: number,
  ): number | undefined {
    const excess = times.length + adding - limit;
    if (excess <= 0) return undefined;
    const leaving = times[Math.min(excess - 1, times.length - 1)];
    return leaving === undefined ? Number.MAX_SAFE_INTEGER : leaving + windowMs;
  }

  /** Drops events older than the longest window any rule uses. */
  async prune(maxWindowMs: number): Promise<void> {
    await this.knex("gk_events")
      .where("at", "<=", this.now() - maxWindowMs)
      .delete();
  }
}
