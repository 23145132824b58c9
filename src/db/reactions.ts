import type { Knex } from "knex";
import type { RemoteMessageId, RemoteUserId } from "../util/ids.js";
import type { EventId, MatrixUserId } from "../util/ids.js";

export interface ReactionRow {
  portalId: number;
  eventId: EventId;
  targetId: RemoteMessageId;
  targetAuthor: string;
  /** The Matrix user (or ghost) whose reaction this is. */
  sender: MatrixUserId;
  emoji: string;
}

/**
 * The `reactions` table: each bridged reaction event and what it reacts to. The network sends a
 * reactor's complete set per message, so the table is how a set becomes Matrix additions and
 * redactions, and how a Matrix reaction or its redaction becomes a new complete set.
 */
export class ReactionsTable {
  constructor(private readonly knex: Knex) {}

  async insert(row: ReactionRow, now = Date.now()): Promise<void> {
    await this.knex("reactions")
      .insert({
        portal_id: row.portalId,
        event_id: row.eventId,
        target_origin_id: row.targetId,
        target_author_jid: row.targetAuthor,
        sender: row.sender,
        emoji: row.emoji,
        created_at: now,
      })
      .onConflict("event_id")
      .ignore();
  }

  async byEvent(eventId: EventId): Promise<ReactionRow | undefined> {
    const row = (await this.knex("reactions").where({ event_id: eventId }).first()) as
      Record<string, unknown> | undefined;
    return row === undefined ? undefined : toReaction(row);
  }

  /** One sender's reactions on one message, oldest first. */
  async bySender(
    portalId: number,
    target: { author: string | RemoteUserId; id: RemoteMessageId },
    sender: MatrixUserId,
  ): Promise<ReactionRow[]> {
    const rows = (await this.knex("reactions")
      .where({
        portal_id: portalId,
        target_author_jid: target.author,
        target_origin_id: target.id,
        sender,
      })
      .orderBy("id")) as Record<string, unknown>[];
    return rows.map(toReaction);
  }

  async delete(eventId: EventId): Promise<void> {
    await this.knex("reactions").where({ event_id: eventId }).del();
  }
}

function toReaction(row: Record<string, unknown>): ReactionRow {
  return {
    portalId: Number(row["portal_id"]),
    eventId: String(row["event_id"]) as EventId,
    targetId: String(row["target_origin_id"]) as RemoteMessageId,
    targetAuthor: String(row["target_author_jid"]),
    sender: String(row["sender"]) as MatrixUserId,
    emoji: String(row["emoji"]),
  };
}
