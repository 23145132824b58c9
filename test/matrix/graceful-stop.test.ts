import assert from "node:assert/strict";
import { BOT, startMatrixHarness, type MatrixHarness } from "./harness.js";

describe("a graceful stop", function () {
  this.timeout(60_000);
  let h: MatrixHarness;
  after(async function () {
    await h?.hs.stop().catch(() => undefined);
  });

  it("ends within 10 s while the homeserver refuses the bridge's sends and keeps pushing", async function () {
    h = await startMatrixHarness();
    const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
      invite: [BOT],
      is_direct: true,
      preset: "trusted_private_chat",
    });
    const room = created.json["room_id"] as string;
    await h.waitFor(
      async () => ((await h.messages(room)).some((m) => m.sender === BOT) ? true : undefined),
      "the greeting",
    );
    // From now on every send of the bridge fails with 500: its answers are retried in place.
    h.hs.failClientRequests(({ appserviceId, method }) =>
      appserviceId !== undefined && method === "PUT" ? { status: 500 } : undefined,
    );
    for (let i = 0; i < 3; i++) await h.say(room, "help");
    await new Promise((r) => setTimeout(r, 1000));
    const started = Date.now();
    await h.bridge.stop();
    assert.ok(Date.now() - started < 10_000, `the stop took ${Date.now() - started} ms`);
  });
});
