import { buildDelivery, type XmlElement } from "../../src/interop/codec/index.js";
import type { BareJid, StanzaId } from "../../src/util/ids.js";
import type { GatekeeperContext } from "../context.js";
import { domainOf } from "../context.js";
import type { DeliveryQueue } from "./queue.js";

/**
 * Queues a notification from `wa.example` (§9.1 `<unbound>`, §10.3 `<request-accepted>`, §11.7,
 * §16.2): a stanza-id, no `<meta>`, acknowledged like every delivery (§15.5, E16).
 */
export function notify(
  ctx: GatekeeperContext,
  queue: DeliveryQueue,
  to: BareJid | string,
  payload: XmlElement,
): Promise<StanzaId> {
  const by = ctx.settings.domain as BareJid;
  return queue.enqueue(domainOf(to), by, (stanzaId) =>
    buildDelivery({
      id: `n-${stanzaId}`,
      from: ctx.settings.domain,
      to,
      payload,
      stanzaId: { id: stanzaId, by },
    }),
  );
}
