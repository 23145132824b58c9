import assert from "node:assert/strict";
import { xml } from "../../src/interop/codec/xml.js";
import type {
  ComponentConnection,
  ConnectionState,
} from "../../src/interop/transport/component.js";
import { IqError } from "../../src/interop/transport/errors.js";
import { attachIq } from "../../src/interop/transport/iq.js";
import {
  childElements,
  eventually,
  inbox,
  makeConnection,
  waitForState,
} from "../interop/transport/helpers.js";
import { skipUnlessProsody, startProsody, type ProsodyInstance } from "./harness.js";

/** The conditions by which §8.2 recognises a server bounce for an offline peer. */
const PEER_OFFLINE = ["service-unavailable", "remote-server-not-found", "remote-server-timeout"];

describe("component connection against a real Prosody", function () {
  this.timeout(60_000);
  let prosody: ProsodyInstance | undefined;
  const connections: ComponentConnection[] = [];

  async function online(...args: Parameters<typeof makeConnection>): Promise<ComponentConnection> {
    const c = makeConnection(...args);
    connections.push(c);
    c.start();
    await c.waitOnline(10_000);
    return c;
  }

  before(function () {
    skipUnlessProsody(this);
  });

  afterEach(async function () {
    await Promise.all(connections.splice(0).map((c) => c.stop()));
    if (this.currentTest?.state === "failed" && prosody !== undefined) {
      process.stderr.write(`Prosody log:\n${await prosody.log()}\n`);
    }
    await prosody?.stop();
    prosody = undefined;
  });

  it("routes messages and IQs both ways between the bridge and a gatekeeper stand-in", async function () {
    prosody = await startProsody();
    const bridge = await online(prosody.service, "matrix.bridge.example");
    const gatekeeper = await online(prosody.service, "wa.example");
    const bridgeIq = attachIq(bridge, { timeoutMs: 5000 });
    const gatekeeperIq = attachIq(gatekeeper, { timeoutMs: 5000 });
    gatekeeperIq.responder.register("urn:interop:core:0", "hello", () =>
      xml("hello", { xmlns: "urn:interop:core:0", version: "0.2", session: "s-9" }),
    );
    const toGatekeeper = inbox(gatekeeper);
    const toBridge = inbox(bridge);

    await bridge.send(
      xml(
        "message",
        { from: "alice@matrix.bridge.example/1", to: "491701234567@wa.example", id: "m1" },
        xml("body", {}, "<hello & goodbye>"),
      ),
    );
    await gatekeeper.send(
      xml(
        "message",
        { from: "wa.example", to: "matrix.bridge.example", id: "hr-1" },
        xml("hello-request", { xmlns: "urn:interop:core:0" }),
      ),
    );
    await eventually(
      () =>
        toGatekeeper.some((s) => s.name === "message") &&
        toBridge.some((s) => s.name === "message"),
      "a message each way",
    );
    const m1 = toGatekeeper.find((s) => s.name === "message")!;
    assert.equal(m1.attrs.from, "alice@matrix.bridge.example/1");
    assert.equal(childElements(m1)[0]?.getText(), "<hello & goodbye>");
    assert.equal(toBridge.find((s) => s.name === "message")?.attrs.id, "hr-1");

    const hello = await bridgeIq.caller.request(
      xml(
        "iq",
        { type: "get", to: "wa.example" },
        xml("hello", {
          xmlns: "urn:interop:core:0",
          version: "0.2",
          provider: "matrix-bridge-example",
        }),
      ),
    );
    assert.equal(childElements(hello)[0]?.attrs.session, "s-9");
    const pong = await gatekeeperIq.caller.request(
      xml(
        "iq",
        { type: "get", to: "matrix.bridge.example" },
        xml("ping", { xmlns: "urn:xmpp:ping" }),
      ),
    );
    assert.equal(pong.attrs.type, "result");
    const unknown = await gatekeeperIq.caller
      .request(
        xml(
          "iq",
          { type: "get", to: "matrix.bridge.example" },
          xml("nope", { xmlns: "urn:x:nope" }),
        ),
      )
      .catch((e: unknown) => e);
    assert.ok(unknown instanceof IqError);
    assert.equal(unknown.error.condition, "service-unavailable");
  });

  it("is refused with a bad secret and keeps retrying without crashing", async function () {
    prosody = await startProsody();
    const bridge = makeConnection(prosody.service, "matrix.bridge.example", { secret: "wrong" });
    connections.push(bridge);
    const failures: ConnectionState[] = [];
    bridge.on("state", (s) => {
      if (s.code === "auth-failed") failures.push(s);
    });
    bridge.start();
    await eventually(() => failures.length >= 3, "three refused attempts", 15_000);
    assert.match(failures[0]!.message, /not-authorized/);
    assert.ok(failures[2]!.retryInMs! > failures[0]!.retryInMs!);
  });

  it("bounces a stanza to an unconnected component as peer offline, from the original to", async function () {
    prosody = await startProsody();
    const bridge = await online(prosody.service, "matrix.bridge.example");
    const received = inbox(bridge);
    await bridge.send(
      xml("message", {
        from: "alice@matrix.bridge.example/1",
        to: "491701234567@wa.example",
        id: "o1",
      }),
    );
    await eventually(() => received.some((s) => s.name === "message"), "the bounce");
    const bounce = received.find((s) => s.name === "message")!;
    assert.equal(bounce.attrs.type, "error");
    assert.equal(bounce.attrs.id, "o1");
    assert.equal(bounce.attrs.from, "491701234567@wa.example");

    const err = await attachIq(bridge)
      .caller.request(
        xml("iq", { type: "get", to: "wa.example" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
      )
      .catch((e: unknown) => e);
    assert.ok(err instanceof IqError, String(err));
    assert.ok(PEER_OFFLINE.includes(err.error.condition), err.error.condition);
  });

  it("closes the sender's stream on a stanza above component_stanza_size_limit; the bridge reconnects", async function () {
    prosody = await startProsody({ stanzaSizeLimit: 8192 });
    const bridge = await online(prosody.service, "matrix.bridge.example", {
      maxStanzaBytes: 1 << 20,
    });
    const gatekeeper = await online(prosody.service, "wa.example");
    const offline: ConnectionState[] = [];
    bridge.on("offline", (s) => offline.push(s));
    await bridge.send(xml("message", { to: "wa.example" }, xml("body", {}, "x".repeat(20_000))));
    await eventually(() => offline.length === 1, "the stream to close");
    assert.equal(gatekeeper.isOnline, true);
    await waitForState(bridge, "connected", 10_000);
  });

  it("reconnects on its own after Prosody is killed and restarted", async function () {
    const first = await startProsody();
    prosody = first;
    const bridge = await online(first.service, "matrix.bridge.example");
    const offline: ConnectionState[] = [];
    bridge.on("offline", (s) => offline.push(s));
    await first.kill();
    await eventually(() => offline.length === 1, "the offline event");
    assert.equal(offline[0]?.code, "gatekeeper-unreachable");
    await first.stop();
    prosody = await startProsody({ port: first.port });
    await waitForState(bridge, "connected", 15_000);
    const gatekeeper = await online(prosody.service, "wa.example");
    const received = inbox(gatekeeper);
    await bridge.send(xml("message", { to: "wa.example", id: "after-restart" }));
    await eventually(() => received.length === 1, "a message after the restart");
  });
});
