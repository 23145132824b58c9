import { buildDelivery, type GroupSender, type XmlChild } from "../../src/interop/codec/index.js";
import type { QueryTarget } from "../../src/db/sql.js";
import type { BareJid, MessageId, StanzaId } from "../../src/util/ids.js";
import { domainOf, type GatekeeperContext } from "../context.js";
import type { DeliveryQueue } from "../delivery/queue.js";
import { newStanzaId } from "../state/ulid.js";

/**
 * Deliveries from a group JID to provider users (§15.5, §17.2, §17.4), written in the transaction
 * that accepts or applies what causes them, and sent only after it commits (`flush`). One outbox
 * per accepted stanza or group change.
 */
export class GroupOutbox {
  private readonly domains = new Set<string>();

  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly queue: DeliveryQueue,
  ) {}

  /** Queues one delivery from `group` to `to` (bare or full JID) with a fresh stanza-id. */
  async add(
    db: QueryTarget,
    d: {
      group: BareJid;
      to: string;
      payload: XmlChild;
      originId?: MessageId | undefined;
      sender?: GroupSender | undefined;
      stamp: Date;
      seq?: number | undefined;
    },
  ): Promise<StanzaId> {
    const stanzaId = newStanzaId(this.ctx.now());
    const by = this.ctx.settings.groupDomain;
    const stanza = buildDelivery({
      id: d.originId ?? `e-${stanzaId}`,
      type: "groupchat",
      from: d.group,
      to: d.to,
      payload: d.payload,
      originId: d.originId,
      sender: d.sender,
      stanzaId: { id: stanzaId, by: by as BareJid },
      meta: { stamp: d.stamp, seq: d.seq },
    });
    const domain = domainOf(d.to);
    await this.queue.insert(db, domain, by, stanzaId, stanza);
    this.domains.add(domain);
    return stanzaId;
  }

  /** After the commit: sends what the providers can take now. */
  async flush(): Promise<void> {
    for (const domain of this.domains) await this.queue.pump(domain);
    this.domains.clear();
  }
}
