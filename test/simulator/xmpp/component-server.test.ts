import assert from "node:assert/strict";
import { xml, type XmlElement } from "../../../src/interop/codec/xml.js";
import { ComponentServer } from "../../../simulator/xmpp/component-server.js";
import { RawComponent } from "./raw-component.js";

const SECRETS = {
  "wa.example": "gatekeeper-secret",
  "g.wa.example": "gatekeeper-secret",
  "matrix.bridge.example": "provider-secret",
};
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams";

function children(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== "string");
}

function streamErrorCondition(el: XmlElement): string | undefined {
  assert.equal(el.name, "stream:error");
  return children(el).find((c) => c.attrs.xmlns === NS_STREAMS && c.name !== "text")?.name;
}

function stanzaError(el: XmlElement): { type: unknown; condition: string | undefined } {
  const error = children(el).find((c) => c.name === "error");
  assert.ok(error, `no <error> in ${el.toString()}`);
  return {
    type: error.attrs.type,
    condition: children(error).find((c) => c.attrs.xmlns === NS_STANZAS)?.name,
  };
}

describe("simulator component server (XEP-0114)", function () {
  let server: ComponentServer;
  const open: RawComponent[] = [];

  async function component(domain: keyof typeof SECRETS): Promise<RawComponent> {
    const c = await RawComponent.authenticated(server.port, domain, SECRETS[domain]);
    open.push(c);
    return c;
  }

  beforeEach(async function () {
    server = await ComponentServer.start({ secrets: SECRETS, maxStanzaBytes: 4096 });
  });

  afterEach(async function () {
    for (const c of open.splice(0)) c.destroy();
    await server.stop({ abrupt: true });
  });

  it("routes a message between two components by the domain of to", async function () {
    const bridge = await component("matrix.bridge.example");
    const gatekeeper = await component("wa.example");
    bridge.write(
      xml(
        "message",
        { from: "alice@matrix.bridge.example/1", to: "491701234567@wa.example", id: "m1" },
        xml("body", {}, "hi & <bye>"),
      ).toString(),
    );
    const got = await gatekeeper.next();
    assert.equal(got.name, "message");
    assert.equal(got.attrs.id, "m1");
    assert.equal(got.attrs.from, "alice@matrix.bridge.example/1");
    assert.equal(children(got)[0]?.getText(), "hi & <bye>");
  });

  it("stamps the component domain as from when a stanza has none", async function () {
    const bridge = await component("matrix.bridge.example");
    const gatekeeper = await component("wa.example");
    bridge.write(xml("message", { to: "wa.example", id: "m2" }).toString());
    assert.equal((await gatekeeper.next()).attrs.from, "matrix.bridge.example");
  });

  it("answers a stanza to a configured but unconnected domain with service-unavailable from the original to", async function () {
    const bridge = await component("matrix.bridge.example");
    bridge.write(
      xml("message", {
        from: "alice@matrix.bridge.example/1",
        to: "491701234567@wa.example",
        id: "c8f1",
      }).toString(),
    );
    const bounce = await bridge.next();
    assert.equal(bounce.name, "message");
    assert.equal(bounce.attrs.type, "error");
    assert.equal(bounce.attrs.id, "c8f1");
    assert.equal(bounce.attrs.from, "491701234567@wa.example");
    assert.equal(bounce.attrs.to, "alice@matrix.bridge.example/1");
    assert.deepEqual(stanzaError(bounce), { type: "cancel", condition: "service-unavailable" });
  });

  it("can bounce like Prosody 0.12: remote-server-timeout of type wait", async function () {
    await server.stop({ abrupt: true });
    server = await ComponentServer.start({ secrets: SECRETS, peerOfflineBounce: "prosody" });
    const bridge = await component("matrix.bridge.example");
    bridge.write(xml("message", { to: "491701234567@wa.example", id: "p1" }).toString());
    const bounce = await bridge.next();
    assert.equal(bounce.attrs.from, "491701234567@wa.example");
    assert.deepEqual(stanzaError(bounce), { type: "wait", condition: "remote-server-timeout" });
  });

  it("bounces an IQ to an unconfigured domain with remote-server-not-found", async function () {
    const bridge = await component("matrix.bridge.example");
    bridge.write(xml("iq", { type: "get", to: "elsewhere.example", id: "q1" }).toString());
    const bounce = await bridge.next();
    assert.equal(bounce.name, "iq");
    assert.equal(bounce.attrs.from, "elsewhere.example");
    assert.deepEqual(stanzaError(bounce), {
      type: "cancel",
      condition: "remote-server-not-found",
    });
  });

  it("never answers an error stanza or an IQ result to an unconnected domain", async function () {
    const bridge = await component("matrix.bridge.example");
    bridge.write(xml("message", { to: "wa.example", id: "e1", type: "error" }).toString());
    bridge.write(xml("iq", { to: "wa.example", id: "r1", type: "result" }).toString());
    assert.equal(await bridge.nothingWithin(200), true);
    assert.equal(bridge.isClosed(), false);
  });

  it("refuses a wrong handshake with not-authorized and closes the stream", async function () {
    const c = await RawComponent.open(server.port, "wa.example");
    open.push(c);
    await c.handshake("wrong-secret");
    assert.equal(streamErrorCondition(await c.next()), "not-authorized");
    await c.closed;
    assert.equal(server.isConnected("wa.example"), false);
  });

  it("refuses a domain without a configured secret with host-unknown", async function () {
    const c = await RawComponent.open(server.port, "evil.example");
    open.push(c);
    assert.equal(streamErrorCondition(await c.next()), "host-unknown");
    await c.closed;
  });

  it("refuses a second connection for a connected domain with conflict", async function () {
    await component("wa.example");
    const second = await RawComponent.open(server.port, "wa.example");
    open.push(second);
    await second.handshake(SECRETS["wa.example"]);
    assert.equal(streamErrorCondition(await second.next()), "conflict");
  });

  it("closes the stream of a component sending from another domain with invalid-from", async function () {
    const bridge = await component("matrix.bridge.example");
    await component("wa.example");
    bridge.write(xml("message", { from: "x@wa.example", to: "wa.example" }).toString());
    assert.equal(streamErrorCondition(await bridge.next()), "invalid-from");
    await bridge.closed;
  });

  it("closes the sender's stream with policy-violation on a stanza above the limit, and only that stream", async function () {
    const bridge = await component("matrix.bridge.example");
    const gatekeeper = await component("wa.example");
    const fits = xml("message", { to: "wa.example", id: "ok" }, xml("body", {}, "a".repeat(3000)));
    bridge.write(fits.toString());
    assert.equal((await gatekeeper.next()).attrs.id, "ok");
    const big = xml("message", { to: "wa.example", id: "big" }, xml("body", {}, "a".repeat(5000)));
    bridge.write(big.toString());
    assert.equal(streamErrorCondition(await bridge.next()), "policy-violation");
    await bridge.closed;
    assert.equal(await gatekeeper.nothingWithin(100), true);
    assert.equal(server.isConnected("wa.example"), true);
    assert.equal(server.isConnected("matrix.bridge.example"), false);
  });

  it("closes a stream whose unfinished stanza keeps growing past the limit", async function () {
    const bridge = await component("matrix.bridge.example");
    bridge.write("<message to='wa.example'><body>");
    for (let i = 0; i < 5; i++) bridge.write("b".repeat(1000));
    assert.equal(streamErrorCondition(await bridge.next()), "policy-violation");
    await bridge.closed;
  });

  it("exchanges stanzas between an in-process component and a TCP component", async function () {
    const bridge = await component("matrix.bridge.example");
    const received: XmlElement[] = [];
    const gatekeeper = server.attachLocal("wa.example", (stanza) => {
      received.push(stanza);
      gatekeeper.send(
        xml("iq", { type: "result", id: String(stanza.attrs.id), to: String(stanza.attrs.from) }),
      );
    });
    bridge.write(xml("iq", { type: "get", to: "wa.example", id: "p1" }).toString());
    const reply = await bridge.next();
    assert.equal(reply.attrs.type, "result");
    assert.equal(reply.attrs.id, "p1");
    assert.equal(reply.attrs.from, "wa.example");
    assert.equal(received.length, 1);
    assert.equal(received[0]?.attrs.from, "matrix.bridge.example");
  });

  it("keeps routing after an in-process handler throws or rejects", async function () {
    const bridge = await component("matrix.bridge.example");
    let calls = 0;
    server.attachLocal("wa.example", (stanza) => {
      calls += 1;
      if (stanza.attrs.id === "throw") throw new Error("handler bug");
      return Promise.reject(new Error("async handler bug"));
    });
    bridge.write(xml("message", { to: "wa.example", id: "throw" }).toString());
    bridge.write(xml("message", { to: "wa.example", id: "reject" }).toString());
    bridge.write(xml("message", { to: "wa.example", id: "again" }).toString());
    for (let i = 0; i < 50 && calls < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(calls, 3);
    assert.equal(bridge.isClosed(), false);
  });

  it("bounces to an in-process sender once its peer detached", async function () {
    const inbox: XmlElement[] = [];
    const groups = server.attachLocal("g.wa.example", () => undefined);
    const gatekeeper = server.attachLocal("wa.example", (s) => void inbox.push(s));
    groups.detach();
    assert.equal(server.isConnected("g.wa.example"), false);
    gatekeeper.send(xml("message", { to: "k3x9q2@g.wa.example", id: "g1" }));
    for (let i = 0; i < 50 && inbox.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(inbox[0]?.attrs.from, "k3x9q2@g.wa.example");
    assert.deepEqual(stanzaError(inbox[0]!), { type: "cancel", condition: "service-unavailable" });
  });

  it("rejects an in-process component for a domain already connected", async function () {
    await component("wa.example");
    assert.throws(() => server.attachLocal("wa.example", () => undefined), { code: "conflict" });
  });

  it("reports components going online and offline, also when the server is killed", async function () {
    const events: string[] = [];
    server.on("component-online", (d) => events.push(`online ${d}`));
    server.on("component-offline", (d) => events.push(`offline ${d}`));
    const c = await component("wa.example");
    await server.stop({ abrupt: true });
    await c.closed;
    assert.deepEqual(events, ["online wa.example", "offline wa.example"]);
    server = await ComponentServer.start({ secrets: SECRETS, port: 0 });
  });
});
