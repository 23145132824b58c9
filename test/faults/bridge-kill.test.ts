import { assertExactlyOnce, Burst } from "./counting.js";
import { FaultWorld, openConversation, type Conversation } from "./world.js";

const TOTAL = 1000;
const KILL_AT = 400;

/**
 * The bridge crashes (SIGKILL: no shutdown handler, nothing flushed) in the middle of a burst of
 * 1,000 messages each way, while both senders go on; it is started again a few seconds later. The
 * homeserver keeps and retries its pushes, the gatekeeper its deliveries, and the bridge its
 * outbox: each message must arrive exactly once, in order.
 */
describe("fault: kill -9 of the bridge during a burst of 1,000 messages each way", function () {
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

  it("delivers every message exactly once and in order after the restart", async function () {
    const burst = new Burst(conversation, TOTAL);
    let downFor = 0;
    await burst.send(0, TOTAL, async (n) => {
      if (n !== KILL_AT) return;
      await world.killBridge();
      const down = Date.now();
      // The senders wait here; messages sent up to now are in flight in both directions.
      await world.startBridge();
      downFor = Date.now() - down;
    });
    const tally = await burst.settle(world);
    process.stdout.write(
      `      bridge killed after ${KILL_AT} messages each way, down ${downFor} ms\n`,
    );
    assertExactlyOnce(tally, { world });
  });
});
