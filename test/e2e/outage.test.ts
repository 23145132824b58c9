import assert from "node:assert/strict";
import { bodyOf, E2e, eventually, type WhatsAppUser } from "./harness.js";

/**
 * The homeserver goes away in the middle of a conversation while WhatsApp users keep writing:
 * after it comes back every message is in the portal exactly once, in the order it was sent.
 */
describe("e2e: a homeserver outage in the middle of a conversation", function () {
  this.timeout(90_000);
  let e: E2e;
  let a: WhatsAppUser;
  let b: WhatsAppUser;
  let portalA: string;
  let portalB: string;

  before(async function () {
    // The gatekeeper's own redelivery (ack-timeout-seconds, 60 s) is far beyond these waits: the
    // bridge must retry the hand-over of what it could not post by itself.
    e = await E2e.start();
    a = await e.whatsappUser("+491701111111");
    b = await e.whatsappUser("+491702222222");
    await e.login();
    portalA = await e.openChat(a);
    portalB = await e.openChat(b);
  });
  after(async function () {
    await e?.stop();
  });

  const bodies = (room: string, prefix: string): string[] =>
    e
      .timeline(room)
      .map((ev) => String(ev.getContent()["body"]))
      .filter((body) => body.startsWith(prefix));

  for (const [name, outage] of [
    ["answering 500", {}],
    ["unreachable", { unreachable: true as const }],
  ] as const) {
    it(`messages sent while the homeserver is ${name} arrive once each, in order`, async function () {
      const prefix = `${name}:`;
      await e.text(portalA, `${prefix} before`);
      await e.received(a, "my message before the outage", (r) => bodyOf(r) === `${prefix} before`);

      const end = e.world.hs.outage(outage);
      const sentA: string[] = [];
      const sentB: string[] = [];
      try {
        for (let i = 1; i <= 6; i++) {
          sentA.push(`${prefix} A${i}`);
          await e.from(a, { type: "text", text: `${prefix} A${i}` });
          sentB.push(`${prefix} B${i}`);
          await e.from(b, { type: "text", text: `${prefix} B${i}` });
        }
        // Long enough for the bridge to have tried and failed, and for redeliveries to happen.
        await new Promise((resolve) => setTimeout(resolve, 3000));
      } finally {
        end();
      }

      await eventually(
        () =>
          bodies(portalA, prefix).length >= 7 && bodies(portalB, prefix).length >= 6
            ? true
            : undefined,
        "every message after the outage",
        45_000,
      );
      // Give duplicates a chance to show up before counting.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.deepEqual(bodies(portalA, prefix), [`${prefix} before`, ...sentA]);
      assert.deepEqual(bodies(portalB, prefix), sentB);

      // And the Matrix side works again both ways.
      await e.text(portalA, `${prefix} after`);
      await e.received(a, "my message after the outage", (r) => bodyOf(r) === `${prefix} after`);
    });
  }

  it("an identity change while the homeserver answers 500 shows its notice once after, before the new identity's text", async function () {
    const c = await e.whatsappUser("+491706666666");
    const portalC = await e.openChat(c);
    await e.from(c, { type: "text", text: "old phone" });
    await eventually(
      () => (bodies(portalC, "old phone").length === 1 ? true : undefined),
      "C's text before the change",
    );
    const end = e.world.hs.outage({});
    try {
      const reset = await c.request("POST", `/users/${c.digits}/reset-identity`);
      assert.equal(reset.status, 200);
      await e.from(c, { type: "text", text: "new phone" });
      await new Promise((resolve) => setTimeout(resolve, 3000));
    } finally {
      end();
    }
    const changed = /^The security code with \+49 170 6666666 changed/;
    await eventually(
      () => (bodies(portalC, "new phone").length === 1 ? true : undefined),
      "C's text from the new identity",
      45_000,
    );
    // Give a duplicate notice a chance to show up before counting.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const shown = e
      .timeline(portalC)
      .map((ev) => String(ev.getContent()["body"]))
      .filter((body) => changed.test(body) || body === "new phone");
    assert.deepEqual(
      shown.map((body) => (changed.test(body) ? "notice" : body)),
      ["notice", "new phone"],
    );
  });

  it("a message sent right after the homeserver is back comes after those sent while it was down", async function () {
    const prefix = "right after:";
    const end = e.world.hs.outage({});
    try {
      for (let i = 1; i <= 3; i++) await e.from(a, { type: "text", text: `${prefix} ${i}` });
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      end();
    }
    await e.from(a, { type: "text", text: `${prefix} 4` });
    await eventually(
      () => (bodies(portalA, prefix).length >= 4 ? true : undefined),
      "every message after the outage",
      45_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(
      bodies(portalA, prefix),
      [1, 2, 3, 4].map((i) => `${prefix} ${i}`),
    );
  });
});
