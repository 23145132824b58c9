import type { BareJid } from "../../src/util/ids.js";
import type { GatekeeperContext } from "../context.js";

export type ConversationState = "pending" | "accepted" | "declined";

export interface Conversation {
  providerJid: BareJid;
  gkJid: BareJid;
  /** `pending`: a message request from the provider user awaits the gatekeeper user (§10.3). */
  state: ConversationState;
  /** Messages held in the pending request. */
  held: number;
  seq: number;
}

interface Row {
  provider_jid: string;
  gk_jid: string;
  state: string;
  held: number;
  seq: number;
}

/** 1:1 conversations: existence (§10.2), message requests (§10.3) and the seq counter (§15.6). */
export class Conversations {
  constructor(private readonly ctx: GatekeeperContext) {}

  async get(providerJid: BareJid, gkJid: BareJid): Promise<Conversation | undefined> {
    const row = (await this.ctx
      .knex("gk_conversations")
      .where({ provider_jid: providerJid, gk_jid: gkJid })
      .first()) as Row | undefined;
    return row === undefined
      ? undefined
      : {
          providerJid,
          gkJid,
          state: row.state as ConversationState,
          held: row.held,
          seq: row.seq,
        };
  }

  /** Every conversation of a gatekeeper user, with any provider user. */
  async ofGatekeeperUser(gkJid: BareJid): Promise<Conversation[]> {
    const rows = (await this.ctx.knex("gk_conversations").where({ gk_jid: gkJid })) as Row[];
    return rows.map((row) => ({
      providerJid: row.provider_jid as BareJid,
      gkJid,
      state: row.state as ConversationState,
      held: row.held,
      seq: row.seq,
    }));
  }

  /** The conversation, created in `initial` state when it does not exist yet. */
  async ensure(
    providerJid: BareJid,
    gkJid: BareJid,
    initial: ConversationState,
  ): Promise<Conversation> {
    const existing = await this.get(providerJid, gkJid);
    if (existing !== undefined) return existing;
    const now = this.ctx.now();
    await this.ctx.knex("gk_conversations").insert({
      provider_jid: providerJid,
      gk_jid: gkJid,
      state: initial,
      held: 0,
      seq: 0,
      created_at: now,
      last_exchange: now,
    });
    return { providerJid, gkJid, state: initial, held: 0, seq: 0 };
  }

  /** Assigns the next seq, strictly increasing across both directions. */
  async nextSeq(c: Conversation, holding: boolean): Promise<number> {
    c.seq += 1;
    if (holding) c.held += 1;
    await this.ctx
      .knex("gk_conversations")
      .where({ provider_jid: c.providerJid, gk_jid: c.gkJid })
      .update({ seq: c.seq, held: c.held, last_exchange: this.ctx.now() });
    return c.seq;
  }

  async setState(c: Conversation, state: ConversationState): Promise<void> {
    c.state = state;
    if (state !== "pending") c.held = 0;
    await this.ctx
      .knex("gk_conversations")
      .where({ provider_jid: c.providerJid, gk_jid: c.gkJid })
      .update({ state, held: c.held });
  }
}
