import assert from "node:assert/strict";
import { makeGroupWorld } from "./group-world.js";

/** Timers and sockets: what keeps a process alive (requests in flight end by themselves). */
function handles(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((kind) => /^(Timeout|TCPWrap|TCPServerWrap|PipeWrap)$/.test(kind))
    .sort();
}

describe("the simulator's group test world (group-world.ts)", function () {
  this.timeout(30_000);

  it("once closed, leaves no timer or socket running (every user's Signal store included)", async function () {
    // Mocha arms this test's timeout timer once the test's synchronous part returns.
    await new Promise((resolve) => setImmediate(resolve));
    const before = handles();
    const w = await makeGroupWorld();
    await w.close();
    // Sockets finish closing on a later turn of the loop: wait for them, not for a leak.
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline && handles().length > before.length) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(handles(), before);
  });
});
