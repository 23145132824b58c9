import type { Knex } from "knex";
import type { Accepted } from "../../src/interop/codec/index.js";
import type { BareJid, MessageId, StanzaId } from "../../src/util/ids.js";
import type { GatekeeperContext } from "../context.js";

export interface AcceptedRecord {
  sender: BareJid;
  senderDevice: number;
  originId: MessageId;
  recipient: BareJid;
  stanzaId: StanzaId;
  seq: number | undefined;
  conversation: BareJid;
  service: string;
  encrypted: boolean;
  at: number;
}

interface Row {
  sender: string;
  dedup_key: string;
  origin_id: string;
  sender_device: number;
  recipient: string;
  stanza_id: string;
  seq: number | null;
  conversation: string;
  service: string;
  encrypted: number | boolean;
  at: number;
}

const fromRow = (r: Row): AcceptedRecord => ({
  sender: r.sender as BareJid,
  senderDevice: r.sender_device,
  originId: r.origin_id as MessageId,
  recipient: r.recipient as BareJid,
  stanzaId: r.stanza_id as StanzaId,
  seq: r.seq ?? undefined,
  conversation: r.conversation as BareJid,
  service: r.service,
  encrypted: Boolean(r.encrypted),
  at: Number(r.at),
});

/**
 * Accepted stanzas, in both directions: the de-duplication records of §15.4 (keyed by sender and
 * origin-id, or for retry re-sends by the tuple of §12.5) and the delivery records that retry
 * routing checks (§12.5).
 */
export class AcceptedRecords {
  constructor(private readonly ctx: GatekeeperContext) {}

  async find(sender: BareJid, dedupKey: string): Promise<AcceptedRecord | undefined> {
    const since = this.ctx.now() - this.ctx.limits["dedup-window-seconds"] * 1000;
    const row = (await this.ctx
      .knex("gk_accepted")
      .where({ sender, dedup_key: dedupKey })
      .andWhere("at", ">", since)
      .first()) as Row | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /** The first transmission of a message (not a retry re-send) within `windowMs`. */
  async original(sender: BareJid, originId: string, windowMs: number) {
    return this.find(sender, originId).then((r) =>
      r !== undefined && r.encrypted && r.at > this.ctx.now() - windowMs ? r : undefined,
    );
  }

  /** `db` is the transaction that also keeps the hand-over to a local user, if any. */
  async add(dedupKey: string, r: AcceptedRecord, db: Knex = this.ctx.knex): Promise<void> {
    await db("gk_accepted")
      .insert({
        sender: r.sender,
        dedup_key: dedupKey,
        origin_id: r.originId,
        sender_device: r.senderDevice,
        recipient: r.recipient,
        stanza_id: r.stanzaId,
        seq: r.seq ?? null,
        conversation: r.conversation,
        service: r.service,
        encrypted: r.encrypted,
        at: r.at,
      })
      .onConflict(["sender", "dedup_key"])
      .merge();
  }

  async prune(): Promise<void> {
    const window =
      Math.max(this.ctx.limits["dedup-window-seconds"], this.ctx.limits["retry-window-seconds"]) *
      1000;
    await this.ctx
      .knex("gk_accepted")
      .where("at", "<=", this.ctx.now() - window)
      .delete();
  }
}

export function acceptedOf(r: AcceptedRecord): Accepted {
  return {
    originId: r.originId,
    stanzaId: r.stanzaId,
    stamp: new Date(r.at),
    seq: r.seq,
    conversation: r.conversation,
  };
}
