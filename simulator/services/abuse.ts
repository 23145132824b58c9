import {
  encodeBase64,
  encodeBlockList,
  encodeReportReceived,
  type ReportReason,
  type ReportedMessage,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import type { BareJid } from "../../src/util/ids.js";
import { domainOf, providerByDomain, type GatekeeperContext } from "../context.js";
import { notify } from "../delivery/notify.js";
import type { DeliveryQueue } from "../delivery/queue.js";

export interface StoredReport {
  id: number;
  reporter: BareJid;
  target: BareJid;
  reason: ReportReason;
  text: string | undefined;
  messages: { originId: string; stanzaId?: string; from: string; envelopeData: string }[];
  at: Date;
}

/** Block lists in both directions and spam reports (§16.1, §16.2). */
export class AbuseService {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly queue: DeliveryQueue,
  ) {}

  async blocklist(owner: BareJid): Promise<XmlElement> {
    return encodeBlockList("blocklist", await this.blocked(owner));
  }

  async blocked(owner: BareJid): Promise<BareJid[]> {
    const rows = (await this.ctx.knex("gk_blocks").select("target").where({ owner })) as {
      target: string;
    }[];
    return rows.map((r) => r.target as BareJid);
  }

  async block(owner: BareJid, targets: readonly BareJid[]): Promise<void> {
    for (const target of targets) {
      await this.ctx
        .knex("gk_blocks")
        .insert({ owner, target, at: this.ctx.now() })
        .onConflict(["owner", "target"])
        .ignore();
    }
  }

  /** Without targets the whole list is cleared (§16.1). */
  async unblock(owner: BareJid, targets: readonly BareJid[]): Promise<void> {
    const query = this.ctx.knex("gk_blocks").where({ owner });
    if (targets.length > 0) query.whereIn("target", [...targets]);
    await query.delete();
  }

  async isBlocked(owner: BareJid, target: BareJid): Promise<boolean> {
    return (await this.ctx.knex("gk_blocks").where({ owner, target }).first()) !== undefined;
  }

  async report(
    reporter: BareJid,
    r: {
      jid: BareJid;
      reason: ReportReason;
      block: boolean;
      text: string | undefined;
      messages: readonly ReportedMessage[];
    },
  ): Promise<void> {
    await this.ctx.knex("gk_reports").insert({
      reporter,
      target: r.jid,
      reason: r.reason,
      text: r.text ?? null,
      messages: JSON.stringify(
        r.messages.map((m) => ({
          originId: m.originId,
          stanzaId: m.stanzaId,
          from: m.from,
          envelopeData: encodeBase64(m.envelopeData),
        })),
      ),
      at: this.ctx.now(),
    });
    if (r.block) await this.block(reporter, [r.jid]);
    // §16.2 MAY: the provider hears of reports against its users.
    const provider = providerByDomain(this.ctx, domainOf(r.jid));
    if (provider !== undefined) {
      await notify(
        this.ctx,
        this.queue,
        provider.domain,
        encodeReportReceived({ jid: r.jid, reason: r.reason, stamp: new Date(this.ctx.now()) }),
      );
    }
  }

  async reports(): Promise<StoredReport[]> {
    const rows = (await this.ctx.knex("gk_reports").orderBy("id")) as {
      id: number;
      reporter: string;
      target: string;
      reason: string;
      text: string | null;
      messages: string;
      at: number;
    }[];
    return rows.map((r) => ({
      id: r.id,
      reporter: r.reporter as BareJid,
      target: r.target as BareJid,
      reason: r.reason as ReportReason,
      text: r.text ?? undefined,
      messages: JSON.parse(r.messages) as StoredReport["messages"],
      at: new Date(Number(r.at)),
    }));
  }
}
