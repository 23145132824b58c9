import assert from "node:assert/strict";
import { failFirstPushes } from "../homeserver/index.js";
import { BOT, startMatrixHarness, type MatrixHarness } from "./harness.js";

/** Older Synapse pushes to the legacy path with the token in the query string. */
describe("the bridge against a Synapse 1.67-like homeserver", function () {
  this.timeout(60_000);
  let h: MatrixHarness;

  before(async function () {
    h = await startMatrixHarness("synapse-1.67");
  });
  after(async function () {
    await h?.dispose();
  });

  it("the bot is greeted in, answers a command once despite a lost acknowledgement", async function () {
    const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
      invite: [BOT],
      is_direct: true,
    });
    const room = created.json["room_id"] as string;
    await h.waitFor(
      async () => ((await h.messages(room)).some((m) => m.sender === BOT) ? true : undefined),
      "the greeting",
    );
    h.hs.failAppservicePushes(failFirstPushes(1, { status: 500, deliver: true }));
    await h.say(room, "ping");
    await h.waitFor(
      async () =>
        (await h.messages(room)).some((m) => m.body.startsWith("Pong")) ? true : undefined,
      "the answer",
    );
    await h.hs.appserviceIdle(h.appserviceId);
    h.hs.failAppservicePushes(undefined);
    const pongs = (await h.messages(room)).filter((m) => m.body.startsWith("Pong"));
    assert.equal(pongs.length, 1);
    const greeting = (await h.messages(room)).find((m) => m.body.startsWith("Hello"));
    assert.match(String(greeting?.content["formatted_body"]), /<code>login<\/code>/);
    assert.match(greeting?.body ?? "", /Send `login` to start/);
  });
});
