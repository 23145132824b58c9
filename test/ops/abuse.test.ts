import assert from "node:assert/strict";
import { OpsWorld, waitFor } from "./world.js";

const MY_PHONE = "+491700000031";
const [A, B, C, D, E] = [
  "+491701111141",
  "+491702222242",
  "+491703333343",
  "+491704444444",
  "+491705555545",
];

describe("abuse controls through the real bridge", function () {
  this.timeout(240_000);
  let world: OpsWorld;
  let offset = 0;
  let portalA = "";

  before(async function () {
    world = await OpsWorld.start("abuse", {
      config: {
        limits: { messages_per_minute: 3, new_chats_per_hour: 2, message_requests_per_hour: 1 },
      },
      // The gatekeeper allows fewer messages a minute than the bridge, so that the third is
      // refused by the gatekeeper with a retry-after while the bridge's own limit lets it through.
      simulatorLimits: { "messages-per-minute": 2 },
      timing: { pendingReplayMs: 300 },
      now: () => Date.now() + offset,
    });
    await world.createWhatsAppUsers(A, B, C, D, E);
    await world.login(MY_PHONE);
    portalA = await world.startChat(A);
  });

  after(async function () {
    await world?.stop();
  });

  it("the gatekeeper's retry-after queues a message, which arrives later; the user's own limit refuses with a notice", async function () {
    const a = world.whatsapp(A);
    for (const text of ["m-one", "m-two", "m-three"]) await world.sendText(portalA, text);
    const fourth = await world.sendText(portalA, "m-four");
    const notice = await world.sees(portalA, "the too-fast notice", (e) =>
      /^Not sent: you are sending too fast \(at most 3 messages a minute\)/.test(
        String(e.content["body"]),
      ),
    );
    const relatesTo = notice.content["m.relates_to"] as Record<string, Record<string, string>>;
    assert.equal(relatesTo["m.in_reply_to"]?.["event_id"], fourth, "the notice answers m-four");
    const texts = async () =>
      (await a.received("message")).map((r) => JSON.stringify(r.data["content"]));
    await waitFor("A to receive the first two", async () =>
      (await texts()).filter((t) => /m-(one|two)/.test(t)).length === 2 ? true : undefined,
    );
    // m-three was refused by the gatekeeper (rate-limited, retry-after) and is held, not failed.
    assert.ok(!(await texts()).some((t) => t.includes("m-three")));
    await waitFor(
      "m-three after the gatekeeper's retry-after",
      async () => ((await texts()).some((t) => t.includes("m-three")) ? true : undefined),
      120_000,
    );
    const events = await world.me.events(portalA);
    assert.ok(
      !events.some((e) => /^Not delivered:/.test(String(e.content["body"]))),
      "no failure notice for the held message",
    );
    assert.ok(
      events.some((e) =>
        /^Not delivered yet: you are sending too fast/.test(String(e.content["body"])),
      ),
      "the user is told the held message is sent again by itself",
    );
    assert.ok(!(await texts()).some((t) => t.includes("m-four")), "m-four was not sent");
  });

  it("new chats beyond the hourly limit are refused with a notice; reopening an existing chat is not limited", async function () {
    await world.startChat(D);
    const refused = await world.command(`start-chat ${E}`, /new chats|Invited you/);
    assert.match(
      refused,
      /You can open at most 2 new chats an hour\. Try again after \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\./,
    );
    const reopened = await world.command(`start-chat ${A}`, /already have a chat|new chats/);
    assert.match(reopened, /already have a chat/);
  });

  it("message requests beyond the hourly limit are held and told, then shown when the hour allows", async function () {
    const [b, c] = [world.whatsapp(B), world.whatsapp(C)];
    const before = new Set(await world.me.invites());
    await b.send({ type: "text", to: world.myJid, text: "request from b" });
    const roomB = await waitFor("B's request room", async () =>
      (await world.me.invites()).find((r) => !before.has(r)),
    );
    before.add(roomB);
    await c.send({ type: "text", to: world.myJid, text: "request from c" });
    await world.botSays(
      /held, not lost: they appear from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC on/,
      0,
    );
    // Held: no room for C while the hour is used up, however often the bridge offers it again.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(
      (await world.me.invites()).filter((r) => !before.has(r)),
      [],
      "no room for C yet",
    );
    offset += 3_600_000;
    const roomC = await waitFor("C's request room after the hour", async () =>
      (await world.me.invites()).find((r) => !before.has(r)),
    );
    await world.me.join(roomC);
    await world.sees(roomC, "C's held message", (e) => e.content["body"] === "request from c");
  });
});
