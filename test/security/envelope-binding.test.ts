import assert from "node:assert/strict";
import type { BareJid, MessageId } from "../../src/util/ids.js";
import { phoneNumber } from "../../src/util/ids.js";
import {
  PHONE,
  body,
  startWorld,
  until,
  type EngineHandle,
  type World,
} from "../conformance/setup.js";

const OTHER_PHONE = phoneNumber("+491707654321");

/**
 * §12.2: after decryption the envelope must name the stanza's sender as `from`, its recipient as
 * `to` and its origin-id as `id`. A sender who encrypts an envelope that lies (say, to make one
 * user's message appear in another user's chat, or to pass off a message as someone else's) gets
 * nothing through: no event for the core and no delivery receipt. Honest messages after it still
 * arrive, so the session survived.
 */
describe("the encrypted envelope's to, from and id are checked against the stanza", function () {
  this.timeout(60_000);
  let world: World;
  let h: EngineHandle;
  let otherLocal: BareJid;

  before(async function () {
    world = await startWorld("embedded", undefined);
    await world.sim.users.create({ phone: OTHER_PHONE, devices: 1 });
    h = await world.engine();
    otherLocal = `someone-else@${h.user.split("@")[1]}` as BareJid;
    await h.engine.createUser(otherLocal);
    await world.sim.users.send(PHONE, h.user, body("honest first"));
    await until(() => h.sink.of("message").length === 1, "the honest first message");
  });

  after(async function () {
    await world?.close();
  });

  async function forged(
    forge: { to?: BareJid; from?: BareJid; id?: MessageId },
    text: string,
  ): Promise<void> {
    const before = h.sink.of("message").length;
    const sent = await world.sim.users.send(PHONE, h.user, body(text), { forgeEnvelope: forge });
    // Delivered and acked by the bridge (the gatekeeper's queue empties), but discarded.
    await until(
      async () => (await world.sim.gatekeeper.services.queue.depth()) === 0,
      "the bridge to ack the delivery",
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(h.sink.of("message").length, before, `${text}: no event for the core`);
    const receipts = await world.sim.users.received(PHONE, "receipt");
    assert.ok(
      !receipts.some((r) => JSON.stringify(r.data).includes(sent.originId)),
      `${text}: no delivery receipt`,
    );
  }

  it("an envelope addressed to another local user is discarded", async function () {
    await forged({ to: otherLocal }, "meant for someone else");
  });

  it("an envelope naming another sender is discarded", async function () {
    await forged({ from: world.sim.users.jidOf(OTHER_PHONE) }, "pretending to be another");
  });

  it("an envelope whose id differs from the stanza's origin-id is discarded", async function () {
    await forged({ id: "a-different-origin-id" as MessageId }, "with another id");
  });

  it("an honest message after the forgeries still arrives", async function () {
    await world.sim.users.send(PHONE, h.user, body("honest again"));
    await until(() => h.sink.of("message").length === 2, "the honest message");
    const last = h.sink.of("message")[1];
    assert.ok(last !== undefined && last.envelopeXml.includes("honest again"));
  });
});
