import assert from "node:assert/strict";
import { interopError } from "../../../src/interop/codec/errors.js";
import { buildHelloRequest } from "../../../src/interop/codec/message-builders.js";
import { FEATURE } from "../../../src/interop/codec/namespaces.js";
import { createTestDatabase, type TestDatabase } from "../../helpers/db.js";
import { xml } from "../../../src/interop/codec/xml.js";
import { BRIDGE_DOMAIN, FakeGatekeeper, newStanzaId } from "./fake-gatekeeper.js";
import { EventSink, eventually, ready, startBridge, type Bridge } from "./world.js";

const isHello = (text: string): boolean => text.startsWith("<iq") && text.includes("<hello ");

describe("provider engine: hello and liveness", function () {
  let fake: FakeGatekeeper;
  let db: TestDatabase;
  const bridges: Bridge[] = [];

  function bridge(options?: Parameters<typeof startBridge>[2]): Bridge {
    const b = startBridge(fake.service, db.db.knex, options);
    bridges.push(b);
    return b;
  }

  beforeEach(async function () {
    fake = await FakeGatekeeper.start();
    db = await createTestDatabase("sqlite");
  });

  afterEach(async function () {
    await Promise.all(bridges.splice(0).map((b) => b.engine.halt()));
    await fake.stop();
    await db.dispose();
  });

  it("sends hello as the first stanza and negotiates the intersection of features and the announced limits", async function () {
    fake.features = [FEATURE.reply, FEATURE.groups];
    fake.limits = { "max-ack-items": 7 };
    const b = bridge({ features: [FEATURE.reply, FEATURE.reactions] });
    await ready(b);
    assert.ok(isHello(fake.received[0]?.text ?? ""), "the first stanza is a hello");
    assert.ok(fake.received[0]?.text.includes('provider="matrix-bridge-example"'));
    assert.deepEqual([...(b.engine.session.info?.features ?? [])], [FEATURE.reply]);
    assert.equal(b.engine.session.limits["max-ack-items"], 7);
    assert.equal(b.engine.session.limits["max-envelope-bytes"], 32768, "defaults fill the rest");
    assert.deepEqual(b.engine.session.info?.mediaOrigins, ["https://media.wa.example"]);
  });

  it("offers the connection state to the core again until the core takes it", async function () {
    const sink = new EventSink();
    sink.failStates = true;
    const b = bridge({ sink });
    await ready(b);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(sink.states, [], "the core took no state while failing");
    sink.failStates = false;
    await eventually(() => sink.states.at(-1)?.code === "ready", "the core to take 'ready'");
    const taken = sink.states.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(sink.states.length, taken, "a state the core took is not offered again");
  });

  it("sends hello first again after the XMPP server restarts", async function () {
    const b = bridge();
    await ready(b);
    const before = fake.received.length;
    await fake.restartServer();
    await eventually(() => fake.hellos >= 2, "a second hello");
    await ready(b);
    assert.ok(isHello(fake.received[before]?.text ?? ""), "hello is first on the new connection");
  });

  it("answers <hello-request/> from wa.example with a new hello, and ignores one from elsewhere", async function () {
    const b = bridge();
    await ready(b);
    fake.send(buildHelloRequest({ id: "hr-1", from: "wa.example", to: BRIDGE_DOMAIN }));
    await eventually(() => fake.hellos === 2, "hello after hello-request");
    await ready(b);
    const evil = fake.server.attachLocal("evil.example", () => undefined);
    evil.send(buildHelloRequest({ id: "hr-2", from: "evil.example", to: BRIDGE_DOMAIN }));
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(fake.hellos, 2, "a hello-request from a non-gatekeeper JID is ignored");
  });

  it("retries hello with backoff while the gatekeeper is offline and becomes ready when it returns", async function () {
    fake.detach();
    const b = bridge();
    await eventually(
      () => b.engine.state.code === "gatekeeper-offline",
      "state gatekeeper-offline",
    );
    assert.ok(b.engine.state.retryAt !== undefined, "the state says when hello is retried");
    assert.equal(b.engine.session.ready, false);
    fake.attach();
    await ready(b);
    assert.ok(fake.hellos >= 1);
  });

  it("stops with state version-mismatch when the gatekeeper answers another major version", async function () {
    fake.helloVersion = "1.0";
    const b = bridge();
    await eventually(() => b.engine.state.code === "version-mismatch", "version-mismatch");
    await eventually(() => b.connection.state.code === "stopped", "the connection stopped");
    assert.equal(fake.hellos, 1, "no further hello after a major-version mismatch");
  });

  it("stops with state not-enlisted when hello is refused as not enlisted", async function () {
    fake.helloAnswer = () => interopError({ name: "not-enlisted" });
    const b = bridge();
    await eventually(() => b.engine.state.code === "not-enlisted", "not-enlisted");
    assert.equal(b.engine.session.ready, false);
  });

  it("pings wa.example after the idle time and re-runs hello when the ping answers hello-required", async function () {
    const b = bridge({ timing: { pingIdleMs: 150 } });
    await ready(b);
    const pings = (): number =>
      fake.received.filter((r) => r.text.includes("urn:xmpp:ping")).length;
    await eventually(() => pings() >= 1, "an idle ping");
    const hellosBefore = fake.hellos;
    // From now on the gatekeeper claims to have lost its hello state.
    fake.pingAnswer = () => interopError({ name: "hello-required" });
    await eventually(() => fake.hellos > hellosBefore, "hello after hello-required on a ping");
  });

  it("a clean stop sends the acks still collected and closes the connection", async function () {
    const b = bridge({ timing: { ackDelayMs: 60_000 } });
    await ready(b);
    const stanzaId = newStanzaId();
    fake.send(
      xml(
        "message",
        { from: "wa.example", to: `nobody@${BRIDGE_DOMAIN}`, id: "u1" },
        xml("future", { xmlns: "urn:interop:future:0" }),
        xml("stanza-id", { xmlns: "urn:xmpp:sid:0", id: stanzaId, by: "wa.example" }),
      ),
    );
    await eventually(
      async () => (await db.db.knex("inbox").where({ stanza_id: stanzaId }).first()) !== undefined,
      "the delivery recorded",
    );
    assert.equal(fake.acked.includes(stanzaId), false, "still collected");
    await b.engine.stop();
    await eventually(() => fake.acked.includes(stanzaId), "acked on stop");
    assert.equal(b.connection.state.code, "stopped");
    assert.equal(b.engine.state.code, "stopped");
  });
});
