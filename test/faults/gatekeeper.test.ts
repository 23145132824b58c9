import assert from "node:assert/strict";
import { isElement, parseXml, type XmlElement } from "../../src/interop/codec/xml.js";
import { assertExactlyOnce, Burst } from "./counting.js";
import { FaultWorld, openConversation, type Conversation } from "./world.js";

const TOTAL = 200;

function stanzaIdChild(stanza: XmlElement): XmlElement | undefined {
  return stanza.children.find(
    (c): c is XmlElement =>
      isElement(c) && c.name === "stanza-id" && c.getNS() === "urn:xmpp:sid:0",
  );
}

/** The same delivery under another stanza-id: a gatekeeper that lost its queue record. */
function withNewStanzaId(stanza: XmlElement, n: number): XmlElement {
  const copy = parseXml(stanza.toString());
  const sid = stanzaIdChild(copy);
  if (sid !== undefined) sid.attrs.id = `01FAULTDUP${String(n).padStart(16, "0")}`;
  return copy;
}

/**
 * A faulty gatekeeper: of the deliveries to the bridge, every 3rd goes out twice at once, every
 * 4th once more two seconds later (after the bridge acked it), every 7th also under a second
 * stanza-id, and every 5th is held back until the next one went out (out of order). The bridge
 * must post each message once: de-duplication by stanza-id (§15.4) and by (sender, origin-id) per
 * device before decryption (§12.4). Order on Matrix is not asserted for this direction: the
 * spec promises in-order delivery by the gatekeeper (§15.6), which this one breaks on purpose, and
 * a Matrix room cannot insert an event before one already posted.
 */
describe("fault: the gatekeeper sends duplicates and out-of-order deliveries", function () {
  this.timeout(300_000);
  let world: FaultWorld;
  let conversation: Conversation;

  before(async function () {
    world = await FaultWorld.start();
    await world.startBridge();
    conversation = await openConversation(world, "alice", "+491700000001", "+491701111111");
  });

  after(async function () {
    await world?.stop();
  });

  it("posts every message exactly once and loses none", async function () {
    const burst = new Burst(conversation, TOTAL);
    let n = 0;
    let held: XmlElement | undefined;
    const counts = { twice: 0, late: 0, otherId: 0, reordered: 0 };
    const timers = new Set<NodeJS.Timeout>();
    world.sim.setOutgoingFilter((stanza, send) => {
      const isDelivery =
        stanza.name === "message" &&
        stanzaIdChild(stanza) !== undefined &&
        stanza.children.some((c) => isElement(c) && c.name === "encrypted");
      if (!isDelivery) return send(stanza);
      n += 1;
      if (n % 5 === 0 && held === undefined) {
        held = stanza;
        counts.reordered += 1;
        return;
      }
      send(stanza);
      if (held !== undefined) {
        send(held);
        held = undefined;
      }
      if (n % 3 === 0) {
        send(stanza);
        counts.twice += 1;
      }
      if (n % 4 === 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send(stanza);
        }, 2000);
        timers.add(timer);
        counts.late += 1;
      }
      if (n % 7 === 0) {
        send(withNewStanzaId(stanza, n));
        counts.otherId += 1;
      }
    });
    try {
      await burst.send(0, TOTAL);
      const tally = await burst.settle(world, 120_000, 4000);
      process.stdout.write(
        `      deliveries ${n}: ${counts.twice} sent twice, ${counts.late} again 2 s later, ` +
          `${counts.otherId} again under a new stanza-id, ${counts.reordered} swapped with the next\n`,
      );
      assert.ok(counts.twice > 10 && counts.reordered > 10 && counts.otherId > 5);
      assertExactlyOnce(tally, { ordered: false, world });
      process.stdout.write(
        `      WhatsApp->Matrix out of order as delivered: ${tally.toMatrix.outOfOrder}\n`,
      );
      assert.equal(tally.toWhatsApp.outOfOrder, 0, "Matrix->WhatsApp order");
    } finally {
      world.sim.setOutgoingFilter(undefined);
      for (const timer of timers) clearTimeout(timer);
    }
  });
});
