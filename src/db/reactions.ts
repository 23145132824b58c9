import type { Knex } from "knex";
import type { RemoteMessageId, RemoteUserId } from "../util/ids.js";
import type { EventId, MatrixUserId } from "../util/ids.js";

interface ReactionRow {
  portalId: number;
  eventId: EventId;
  targetId: RemoteMessageId;
  targetAuthor: string;
  /** The Matrix user (or ghost) whose reaction this is. */
  sender: MatrixUserId;
  emoji: string;
}

/** Where reactions live: 1:1 portals' `reactions`, group portals' `group_reactions`. */
interface ReactionColumns {
  table: string;
  targetId: string;
  targetAuthor: string;
}

/** 1:1 portals' reactions, with the neutral column names of migration 0018. */
const DIRECT_REACTIONS: ReactionColumns = {
  table: "reactions",
  targetId: "target_remote_id",
  targetAuthor: "target_author",
};

/** Group portals' reactions (migration 0014), in the same shape. */
export const GROUP_REACTIONS: ReactionColumns = {
  table: "group_reactions",
  targetId: "target_remote_id",
  targetAuthor: "target_author",
};

/**
 * The `reactions` table: each bridged reaction event and what it reacts to. The network sends a
 * reactor's complete set per message, so the table is how a set becomes Matrix additions and
 * redactions, and how a Matrix reaction or its redaction becomes a new complete set.
 */
export class ReactionsTable {
  constructor(
    private readonly knex: Knex,
    private readonly c: ReactionColumns = DIRECT_REACTIONS,
  ) {}

  async insert(row: ReactionRow, now = Date.now()): Promise<void> {
    await this.knex(this.c.table)
      .insert({
        portal_id: row.portalId,
        event_id: row.eventId,
        [this.c.targetId]: row.targetId,
        [this.c.targetAuthor]: row.targetAuthor,
        sender: row.sender,
        emoji: row.emoji,
        created_at: now,
      })
      .onConflict("event_id")
      .ignore();
  }

  async byEvent(eventId: EventId): Promise<ReactionRow | undefined> {
    const row = (await this.knex(this.c.table).where({ event_id: eventId }).first()) as
      Record<string, unknown> | undefined;
    return row === undefined ? undefined : toReaction(row, this.c);
  }

  /** One sender's reactions on one message, oldest first. */
  async bySender(
    portalId: number,
    target: { author: string | RemoteUserId; id: RemoteMessageId },
    sender: MatrixUserId,
  ): Promise<ReactionRow[]> {
    const rows = (await this.knex(this.c.table)
      .where({
        portal_id: portalId,
        [this.c.targetAuthor]: target.author,
        [this.c.targetId]: target.id,
        sender,
      })
      .orderBy("id")) as Record<string, unknown>[];
    return rows.map((r) => toReaction(r, this.c));
  }

  async delete(eventId: EventId): Promise<void> {
    await this.knex(this.c.table).where({ event_id: eventId }).del();
  }
}

function toReaction(row: Record<string, unknown>, c: ReactionColumns): ReactionRow {
  return {
    portalId: Number(row["portal_id"]),
    eventId: String(row["event_id"]) as EventId,
    targetId: String(row[c.targetId]) as RemoteMessageId,
    targetAuthor: String(row[c.targetAuthor]),
    sender: String(row["sender"]) as MatrixUserId,
    emoji: String(row["emoji"]),
  };
}
