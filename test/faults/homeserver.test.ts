import assert from "node:assert/strict";
import { assertExactlyOnce, Burst } from "./counting.js";
import { FaultWorld, openConversation, sleep, type Conversation } from "./world.js";

/**
 * The homeserver refuses the bridge's requests for a while, first with 500 and then with 429 and
 * a retry_after_ms, while messages go on in both directions: the bridge must wait and retry in
 * place, so nothing is lost, posted twice, or posted out of order.
 */
describe("fault: the homeserver answers the bridge 500, then 429, for a while", function () {
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

  it("delivers every message exactly once and in order once the homeserver recovers", async function () {
    const burst = new Burst(conversation, 200);
    const faulted = { 500: 0, 429: 0 };
    let phase: "500" | "429" | "none" = "none";
    world.hs.failClientRequests((request) => {
      if (request.appserviceId === undefined || phase === "none") return undefined;
      faulted[phase] += 1;
      return phase === "500" ? { status: 500 } : { status: 429, retryAfterMs: 700 };
    });
    let faults: Promise<void> = Promise.resolve();
    await burst.send(0, 200, async (n) => {
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
});
