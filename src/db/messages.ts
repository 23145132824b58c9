import type { Knex } from "knex";
import type { RemoteMessageId, RemoteUserId } from "../util/ids.js";
import type { EventId } from "../util/ids.js";
import { readBool, readNumberOrNull } from "./values.js";

type Direction = "in" | "out";

export interface MessageRow {
  portalId: number;
  eventId: EventId;
  remoteId: RemoteMessageId;
  author: RemoteUserId;
  order: number | null;
  sentAt: number;
  direction: Direction;
  retracted: boolean;
}

/** Where a message mapping lives: 1:1 portals' `messages`, group portals' `group_messages`. */
interface MessageColumns {
  table: string;
  remoteId: string;
  author: string;
}

/** The mapping of 1:1 portals, with the neutral column names of migration 0018. */
const DIRECT_MESSAGES: MessageColumns = {
  table: "messages",
  remoteId: "remote_id",
  author: "author",
};

/** The mapping of group portals (migration 0014), in the same shape. */
export const GROUP_MESSAGES: MessageColumns = {
  table: "group_messages",
  remoteId: "remote_id",
  author: "author",
};

/**
 * The `messages` table: which Matrix event is which network message, in both directions. The
 * same code serves group portals' `group_messages` (GROUP_MESSAGES), so that both kinds of
 * portal share one bridging path.
 */
export class MessagesTable {
  constructor(
    private readonly knex: Knex,
    private readonly c: MessageColumns = DIRECT_MESSAGES,
  ) {}

  /**
   * Records a mapping. Returns false when (portal, author, remote id) or the event id is already
   * mapped: the message was bridged before and must not be bridged again.
   */
  async insert(row: Omit<MessageRow, "retracted">): Promise<boolean> {
    const inserted = (await this.knex(this.c.table)
      .insert({
        portal_id: row.portalId,
        event_id: row.eventId,
        [this.c.remoteId]: row.remoteId,
        [this.c.author]: row.author,
        seq: row.order,
        sent_at: row.sentAt,
        direction: row.direction,
      })
      .onConflict()
      .ignore()
      .returning("id")) as unknown[];
    return inserted.length > 0;
  }

  async byEvent(eventId: EventId): Promise<MessageRow | undefined> {
    return this.first({ event_id: eventId });
  }

  async byRemote(
    portalId: number,
    author: RemoteUserId,
    remoteId: RemoteMessageId,
  ): Promise<MessageRow | undefined> {
    return this.first({
      portal_id: portalId,
      [this.c.author]: author,
      [this.c.remoteId]: remoteId,
    });
  }

  /** An outgoing message found by its remote id alone, among the given portals. */
  async outgoingByRemote(
    portalIds: readonly number[],
    remoteId: RemoteMessageId,
  ): Promise<MessageRow | undefined> {
    if (portalIds.length === 0) return undefined;
    const row = (await this.knex(this.c.table)
      .whereIn("portal_id", portalIds)
      .andWhere({ [this.c.remoteId]: remoteId, direction: "out" })
      .first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : toMessage(row, this.c);
  }

  /** The latest `limit` incoming messages of a portal, newest first (for report disclosure). */
  async latestIncoming(portalId: number, limit: number): Promise<MessageRow[]> {
    const rows = (await this.knex(this.c.table)
      .where({ portal_id: portalId, direction: "in", retracted: false })
      .orderBy([
        { column: "sent_at", order: "desc" },
        { column: "id", order: "desc" },
      ])
      .limit(limit)) as Record<string, unknown>[];
    return rows.map((r) => toMessage(r, this.c));
  }

  /**
   * The latest incoming message of a portal sent at or before `at` (ms), for a read receipt on
   * a later event. Incoming messages are posted after they were sent, so any that the room shows
   * before an event of time `at` qualifies.
   */
  async latestIncomingAt(portalId: number, at: number): Promise<MessageRow | undefined> {
    const row = (await this.knex(this.c.table)
      .where({ portal_id: portalId, direction: "in", retracted: false })
      .andWhere("sent_at", "<=", at)
      .orderBy([
        { column: "sent_at", order: "desc" },
        { column: "id", order: "desc" },
      ])
      .first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : toMessage(row, this.c);
  }

  async markRetracted(eventId: EventId): Promise<void> {
    await this.knex(this.c.table).where({ event_id: eventId }).update({ retracted: true });
  }

  async count(): Promise<number> {
    const row = (await this.knex(this.c.table).count({ n: "*" }).first()) as { n: number | string };
    return Number(row.n);
  }

  private async first(where: Record<string, unknown>): Promise<MessageRow | undefined> {
    const row = (await this.knex(this.c.table).where(where).first()) as
      Record<string, unknown> | undefined;
    return row === undefined ? undefined : toMessage(row, this.c);
  }
}

function toMessage(row: Record<string, unknown>, c: MessageColumns): MessageRow {
  return {
    portalId: Number(row["portal_id"]),
    eventId: String(row["event_id"]) as EventId,
    remoteId: String(row[c.remoteId]) as RemoteMessageId,
    author: String(row[c.author]) as RemoteUserId,
    order: readNumberOrNull(row["seq"]),
    sentAt: Number(row["sent_at"]),
    direction: String(row["direction"]) as Direction,
    retracted: readBool(row["retracted"]),
  };
}
