import assert from "node:assert/strict";
import {
  DEFAULT_PROSODY_SECRETS,
  skipUnlessProsody,
  startProsody,
  type ProsodyInstance,
} from "../prosody/harness.js";
import { assertExactlyOnce, Burst } from "./counting.js";
import { FaultWorld, openConversation, waitFor, type Conversation } from "./world.js";

const TOTAL = 150;

/**
 * Bridge and gatekeeper are XEP-0114 components of a real Prosody; mid-burst Prosody is stopped
 * and started again on the same port. Both components lose their streams (and whatever was in
 * flight in them), reconnect, and the bridge says hello again: the gatekeeper's redelivery and
 * the bridge's outbox retransmission must make up for everything lost in transit, once.
 */
describe("fault: Prosody restarts in the middle of a burst", function () {
  this.timeout(300_000);
  let world: FaultWorld;
  let conversation: Conversation;
  let prosody: ProsodyInstance;

  before(async function () {
    skipUnlessProsody(this);
    prosody = await startProsody();
    world = await FaultWorld.start({
      componentService: () => prosody.service,
      externalXmpp: {
        service: prosody.service,
        secret: DEFAULT_PROSODY_SECRETS["wa.example"],
        providerSecret: DEFAULT_PROSODY_SECRETS["matrix.bridge.example"],
      },
    });
    await world.startBridge();
    conversation = await openConversation(world, "alice", "+491700000001", "+491701111111");
  });

  after(async function () {
    await world?.stop();
    await prosody?.stop();
  });

  it("delivers every message exactly once and in order after the restart", async function () {
    const burst = new Burst(conversation, TOTAL);
    const hellosBefore = world.bridgeLog.split("hello succeeded").length;
    let restartedIn = 0;
    await burst.send(0, TOTAL, async (n) => {
      if (n !== 70) return;
      const started = Date.now();
      await prosody.stop();
      prosody = await startProsody({ port: prosody.port });
      restartedIn = Date.now() - started;
    });
    await waitFor(
      "the bridge to say hello again",
      () => world.bridgeLog.split("hello succeeded").length > hellosBefore,
    );
    const tally = await burst.settle(world);
    process.stdout.write(`      Prosody restarted in ${restartedIn} ms\n`);
    assert.ok(world.bridgeRunning);
    assertExactlyOnce(tally, { world });
  });
});
