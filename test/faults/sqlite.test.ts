import assert from "node:assert/strict";
import { isElement, parseXml, type XmlElement } from "../../src/interop/codec/xml.js";
import { assertExactlyOnce, Burst } from "./counting.js";
import { FaultWorld, openConversation, sleep, type Conversation } from "./world.js";

const TOTAL = 1000;
const KILL_AT = 400;
const GATEKEEPER_TOTAL = 150;

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
 * Faults around one bridge on SQLite, sharing its start-up and conversation (each test counts only
 * its own messages, by a token of its own). The kill test runs last: it restarts the bridge.
 */
describe("fault tests on one bridge (SQLite)", function () {
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

  /**
   * The homeserver refuses the bridge's requests for a while, first with 500 and then with 429 and
   * a retry_after_ms, while messages go on in both directions: the bridge must wait and retry in
   * place, so nothing is lost, posted twice, or posted out of order.
   */
  it("homeserver answering 500, then 429, for a while: every message once, in order", async function () {
    const burst = new Burst(conversation, 150);
    const faulted = { 500: 0, 429: 0 };
    let phase: "500" | "429" | "none" = "none";
    world.hs.failClientRequests((request) => {
      if (request.appserviceId === undefined || phase === "none") return undefined;
      faulted[phase] += 1;
      return phase === "500" ? { status: 500 } : { status: 429, retryAfterMs: 700 };
    });
    let faults: Promise<void> = Promise.resolve();
    await burst.send(0, 150, async (n) => {
      if (n !== 50) return;
      faults = (async () => {
        phase = "500";
        await sleep(4000);
        phase = "429";
        await sleep(4000);
        phase = "none";
      })();
    });
    await faults;
    const tally = await burst.settle(world);
    process.stdout.write(
      `      requests of the bridge answered 500: ${faulted[500]}, 429: ${faulted[429]}\n`,
    );
    assert.ok(faulted[500] > 0 && faulted[429] > 0, "both faults reached the bridge");
    assertExactlyOnce(tally, { world });
  });

  /**
   * A faulty gatekeeper: of the deliveries to the bridge, every 3rd goes out twice at once, every
   * 4th once more two seconds later (after the bridge acked it), every 7th also under a second
   * stanza-id, and every 5th is held back until the next one went out (out of order). The bridge
   * must post each message once: de-duplication by stanza-id (§15.4) and by (sender, origin-id) per
   * device before decryption (§12.4). Order on Matrix is not asserted for this direction: the
   * spec promises in-order delivery by the gatekeeper (§15.6), which this one breaks on purpose, and
   * a Matrix room cannot insert an event before one already posted.
   */
  it("gatekeeper sending duplicates and out-of-order deliveries: every message once", async function () {
    const burst = new Burst(conversation, GATEKEEPER_TOTAL);
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
      await burst.send(0, GATEKEEPER_TOTAL);
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

  /**
   * The bridge crashes (SIGKILL: no shutdown handler, nothing flushed) in the middle of a burst of
   * 1,000 messages each way (messages of both directions are in flight then), both senders go on
   * with 50 more each way while it is down, and it is started again. The
   * homeserver keeps and retries its pushes, the gatekeeper its deliveries, and the bridge its
   * outbox: each message must arrive exactly once, in order.
   */
  it("kill -9 of the bridge during a burst of 1,000 messages each way: every message once, in order", async function () {
    const burst = new Burst(conversation, TOTAL);
    let downFor = 0;
    let down = 0;
    await burst.send(0, TOTAL, async (n) => {
      if (n === KILL_AT) {
        await world.killBridge();
        down = Date.now();
      } else if (n === KILL_AT + 50) {
        await world.startBridge();
        downFor = Date.now() - down;
      }
    });
    const tally = await burst.settle(world);
    process.stdout.write(
      `      bridge killed after ${KILL_AT} messages each way, down ${downFor} ms\n`,
    );
    assertExactlyOnce(tally, { world });
  });
});
