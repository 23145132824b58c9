import type { Knex } from "knex";

/** How long a handled event id is remembered; homeservers retry a transaction within minutes. */
export const PROCESSED_EVENT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The `processed_events` table: Matrix events already handled, for de-duplication. */
export class ProcessedEventsTable {
  constructor(private readonly knex: Knex) {}

  async has(eventId: string): Promise<boolean> {
    const row: unknown = await this.knex("processed_events").where({ event_id: eventId }).first();
    return row !== undefined;
  }

  async mark(eventId: string, now = Date.now()): Promise<void> {
    await this.knex("processed_events")
      .insert({ event_id: eventId, processed_at: now })
      .onConflict("event_id")
      .ignore();
  }

  /** Forgets ids older than the retention; returns how many were removed. */
  async prune(now = Date.now()): Promise<number> {
    return this.knex("processed_events")
      .where("processed_at", "<", now - PROCESSED_EVENT_RETENTION_MS)
      .del();
  }
}
