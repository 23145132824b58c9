import type { Knex } from "knex";
import type { QueryTarget } from "../../src/db/sql.js";
import type { BareJid } from "../../src/util/ids.js";

export interface LogEntry {
  id: number;
  kind: string;
  at: Date;
  data: Record<string, unknown>;
}

/** Per-user record of what a simulated gatekeeper user received, kept across restarts. */
export class UserLog {
  constructor(
    private readonly knex: Knex,
    private readonly now: () => number,
  ) {}

  /** `db` is the transaction the entry belongs to, when it must commit with other state. */
  async add(
    jid: BareJid,
    kind: string,
    data: Record<string, unknown>,
    db: QueryTarget = this.knex,
  ): Promise<void> {
    await db("gk_user_log").insert({
      jid,
      kind,
      data: JSON.stringify(data),
      at: this.now(),
    });
  }

  async list(jid: BareJid, kind?: string, after = 0): Promise<LogEntry[]> {
    const query = this.knex("gk_user_log").where({ jid }).andWhere("id", ">", after).orderBy("id");
    if (kind !== undefined) query.andWhere({ kind });
    const rows = (await query) as { id: number; kind: string; data: string; at: number }[];
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      at: new Date(Number(r.at)),
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }

  /** Whether `jid` already logged a message (sender, origin-id): de-duplication per user. */
  async hasMessage(jid: BareJid, from: string, originId: string): Promise<boolean> {
    const rows = await this.list(jid, "message");
    return rows.some((r) => r.data.from === from && r.data.originId === originId);
  }
}
