import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../../simulator/main.js";
import { phoneNumber, type BareJid } from "../../../src/util/ids.js";
import { createTestDatabase, type TestDatabase } from "../../helpers/db.js";
import { BRIDGE_DOMAIN, SECRETS } from "./fake-gatekeeper.js";
import { eventually, ready, startBridge, uniqueBridgeJid, type Bridge } from "./world.js";

const body = (text: string) => [{ kind: "body" as const, text }];

/**
 * End to end against the gatekeeper simulator (simulator/main.ts), through its public API only:
 * real hello, key directory, checks, queue and simulated WhatsApp users with their own Signal
 * state.
 */
describe("provider engine against the gatekeeper simulator", function () {
  let sim: Simulator;
  let db: TestDatabase;
  let bridge: Bridge;
  let alice: BareJid;
  const phone = phoneNumber("+491701234567");

  beforeEach(async function () {
    sim = await startSimulator({
      providers: [
        {
          id: "matrix-bridge-example",
          name: "Example Matrix Bridge",
          domain: BRIDGE_DOMAIN,
          secret: SECRETS[BRIDGE_DOMAIN],
        },
      ],
      database: ":memory:",
      media: false,
      tickIntervalMs: 100,
    });
    db = await createTestDatabase("sqlite");
    alice = uniqueBridgeJid();
    bridge = startBridge(sim.service, db.db.knex);
    await ready(bridge);
    await bridge.engine.createUser(alice);
    await sim.users.create({ phone, devices: 2 });
  });

  afterEach(async function () {
    await bridge.engine.halt();
    await sim.stop();
    await db.dispose();
  });

  it("exchanges messages both ways with a simulated WhatsApp user, with receipts", async function () {
    const bob = sim.users.jidOf(phone);
    const [lookup] = await bridge.engine.account.lookup(alice, [phone]);
    assert.deepEqual(lookup, { phone, status: "reachable", jid: bob });

    const originId = await bridge.engine.sendMessage({ from: alice, to: bob, content: body("hi") });
    await eventually(
      () => bridge.sink.of("accepted").some((e) => e.originId === originId),
      "the simulator accepted the message",
    );
    await eventually(
      async () => (await sim.users.received(phone, "message")).length === 1,
      "the simulated user got it",
    );

    await sim.users.send(phone, alice, body("hello back"));
    await eventually(() => bridge.sink.of("message").length === 1, "the reply handed over");
    const [reply] = bridge.sink.of("message");
    assert.deepEqual(reply?.envelope.content, body("hello back"));
    assert.equal(reply?.from, bob);
    assert.ok(reply?.seq !== undefined, "deliveries carry seq");
    await eventually(
      async () => (await sim.users.received(phone, "receipt")).length >= 1,
      "the bridge's <received> reached the user",
    );
  });

  it("a message blocked by the recipient fails with reason blocked", async function () {
    const bob = sim.users.jidOf(phone);
    await sim.users.block(phone, alice);
    const originId = await bridge.engine.sendMessage({
      from: alice,
      to: bob,
      content: body("hey"),
    });
    await eventually(
      () => bridge.sink.of("send-failed").some((e) => e.originId === originId),
      "the failure",
    );
    assert.equal(bridge.sink.of("send-failed")[0]?.reason, "blocked");
  });

  it("holds messages beyond the request limit until the user accepts, then delivers them", async function () {
    const bob = sim.users.jidOf(phone);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(await bridge.engine.sendMessage({ from: alice, to: bob, content: body(`m${i}`) }));
    }
    const accepted = (): string[] => bridge.sink.of("accepted").map((e) => e.originId);
    await eventually(() => accepted().length === 3, "three messages held as a request");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(
      accepted().includes(ids[3] as string),
      false,
      "the fourth waits (request-pending)",
    );
    assert.equal(bridge.sink.of("send-failed").length, 0);
    await sim.users.acceptRequest(phone, alice);
    await eventually(() => accepted().length === 4, "the fourth accepted after request-accepted");
    assert.ok(bridge.sink.of("request-accepted").some((e) => e.contact === bob));
    await eventually(
      async () => (await sim.users.received(phone, "message")).length === 4,
      "all four reached the user",
    );
  });

  it("after a crash before the hand-over finished, the next run hands the message over once", async function () {
    bridge.sink.mode = "hang";
    await sim.users.send(phone, alice, body("do not lose me"));
    await eventually(
      async () =>
        (await db.db.knex("inbox").whereNotNull("pending_since").count("* as n"))[0]?.n !== 0,
      "the message committed",
    );
    await bridge.engine.halt();
    bridge = startBridge(sim.service, db.db.knex);
    await ready(bridge);
    await eventually(() => bridge.sink.of("message").length === 1, "handed over by the new run");
    await sim.tick();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(bridge.sink.of("message").length, 1, "not twice");
    assert.deepEqual(bridge.sink.of("message")[0]?.envelope.content, body("do not lose me"));
  });

  it("keeps delivering after the user adds a device (devices-changed or stale-device-list)", async function () {
    const bob = sim.users.jidOf(phone);
    const first = await bridge.engine.sendMessage({ from: alice, to: bob, content: body("one") });
    await eventually(() => bridge.sink.of("accepted").some((e) => e.originId === first), "one");
    await sim.users.addDevice(phone);
    const second = await bridge.engine.sendMessage({ from: alice, to: bob, content: body("two") });
    await eventually(() => bridge.sink.of("accepted").some((e) => e.originId === second), "two");
    assert.equal(bridge.sink.of("send-failed").length, 0);
    await eventually(
      async () => (await sim.users.received(phone, "message")).length === 2,
      "both messages reached the user",
    );
  });
});
