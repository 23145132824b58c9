import assert from "node:assert/strict";
import type { RemoteUserId } from "../../../src/core/network.js";
import type { InteropLogin } from "../../../src/interop/connector/login.js";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import { matrixUserId, phoneNumber } from "../../../src/util/ids.js";
import { buildConnector, eventually, RecordingCore, startWorld, type World } from "./harness.js";

const text = (t: string) => ({ type: "text" as const, text: { text: t, spans: [] } });

/** The simulator's answer to a hello (an IQ result carrying `<hello>`). */
const isHelloAnswer = (s: XmlElement): boolean =>
  s.name === "iq" &&
  s.attrs.type === "result" &&
  s.children.some((c) => typeof c !== "string" && c.name === "hello");

/**
 * Found by test/e2e/groups.test.ts (kill -9 in a burst): after a restart the homeserver pushes the
 * Matrix messages it holds as soon as the appservice listens, before the gatekeeper answered
 * hello. A group message then was refused as "groups were not negotiated" (the features of no
 * hello yet), shown as "Not sent: WhatsApp does not support this kind of message", and lost.
 */
describe("a group message sent before the first hello of a run", function () {
  this.timeout(30_000);
  let world: World;
  let next: ReturnType<typeof buildConnector> | undefined;

  afterEach(async function () {
    world.sim.setOutgoingFilter(undefined);
    await next?.engine.halt();
    await world.stop();
  });

  it("is queued and goes out once the hello succeeds", async function () {
    world = await startWorld({ "verification-interval-seconds": 0 });
    const alice = matrixUserId("@alice:example.org");
    const bobPhone = phoneNumber("+491701234567");
    await world.sim.users.create({ phone: bobPhone, devices: 1 });
    const bob = world.sim.users.jidOf(bobPhone) as string as RemoteUserId;
    const process = world.connector.createLogin(alice, "phone");
    await process.start();
    await process.submit("phone", { phone: "+491709876543" });
    const code = await world.sim.gatekeeper.services.identity.latestCode(
      phoneNumber("+491709876543"),
    );
    const done = await process.submit("code", { code: code?.code ?? "" });
    const login = done.type === "complete" ? (done.login as InteropLogin) : assert.fail();
    const { info } = await login.createGroup("Trip", [bob]);
    await eventually(async () => world.core.of("group-info").length > 0, "created");
    // As in a conversation under way: sessions and the sender key are in place.
    const first = await login.sendMessage(info.id, text("first"), undefined, "$event-0");
    await eventually(
      async () =>
        (await world.sim.users.received(bobPhone, "message")).some(
          (e) => e.data["originId"] === first,
        ),
      "the first message at bob",
    );

    // The next run of the bridge: the gatekeeper's hello answers are held back for now.
    await world.connector.engine.halt();
    let held = 0;
    world.sim.setOutgoingFilter((stanza, send) => {
      if (isHelloAnswer(stanza)) {
        held += 1;
        return;
      }
      send(stanza);
    });
    next = buildConnector(world.sim, world.db, new RecordingCore());
    await next.start();
    await eventually(async () => held > 0, "a hello asked and held");
    const again = await next.loadLogin(alice);
    const id = await again.sendMessage(info.id, text("sent before hello"), undefined, "$event-1");
    world.sim.setOutgoingFilter(undefined);
    await eventually(
      async () =>
        (await world.sim.users.received(bobPhone, "message")).some(
          (e) => e.data["originId"] === id,
        ),
      "the message at bob after the hello",
    );
  });
});
