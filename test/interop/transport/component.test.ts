import assert from "node:assert/strict";
import { xml } from "../../../src/interop/codec/xml.js";
import type {
  ComponentConnection,
  ConnectionState,
} from "../../../src/interop/transport/component.js";
import { IqError, IqTimeoutError, TransportError } from "../../../src/interop/transport/errors.js";
import { attachIq, IqReplyError, type IqService } from "../../../src/interop/transport/iq.js";
import { ComponentServer } from "../../../simulator/xmpp/component-server.js";
import {
  childElements,
  eventually,
  inbox,
  makeConnection,
  SECRETS,
  waitForState,
} from "./helpers.js";

describe("component connection against the simulator's component server", function () {
  let server: ComponentServer;
  const connections: ComponentConnection[] = [];

  function connection(...args: Parameters<typeof makeConnection>): ComponentConnection {
    const c = makeConnection(...args);
    connections.push(c);
    return c;
  }

  async function online(...args: Parameters<typeof makeConnection>): Promise<ComponentConnection> {
    const c = connection(...args);
    c.start();
    await c.waitOnline(5000);
    return c;
  }

  beforeEach(async function () {
    server = await ComponentServer.start({ secrets: SECRETS });
  });

  afterEach(async function () {
    await Promise.all(connections.splice(0).map((c) => c.stop()));
    await server.stop({ abrupt: true });
  });

  it("goes online with state connected and exchanges messages both ways", async function () {
    const bridge = await online(server.service, "matrix.bridge.example");
    const gatekeeper = await online(server.service, "wa.example");
    assert.equal(bridge.state.code, "connected");
    assert.equal(bridge.isOnline, true);
    const toGatekeeper = inbox(gatekeeper);
    const toBridge = inbox(bridge);

    await bridge.send(
      xml("message", {
        from: "alice@matrix.bridge.example/1",
        to: "491701234567@wa.example",
        id: "m1",
      }),
    );
    await gatekeeper.send(
      xml("message", {
        from: "491701234567@wa.example/1",
        to: "alice@matrix.bridge.example",
        id: "m2",
      }),
    );
    await eventually(() => toGatekeeper.length === 1 && toBridge.length === 1, "both messages");
    assert.equal(toGatekeeper[0]?.attrs.id, "m1");
    assert.equal(toGatekeeper[0]?.attrs.from, "alice@matrix.bridge.example/1");
    assert.equal(toBridge[0]?.attrs.id, "m2");
  });

  it("exchanges IQs both ways, with results matched to their requests", async function () {
    const bridge = await online(server.service, "matrix.bridge.example");
    const gatekeeper = await online(server.service, "wa.example");
    const bridgeIq = attachIq(bridge, { timeoutMs: 3000 });
    const gatekeeperIq = attachIq(gatekeeper, { timeoutMs: 3000 });
    gatekeeperIq.responder.register("urn:interop:core:0", "hello", ({ payload }) =>
      xml("hello", { xmlns: "urn:interop:core:0", version: "0.2", session: "s-1" }, [
        xml("feature", { var: String(childElements(payload)[0]?.attrs.var) }),
      ]),
    );

    const result = await bridgeIq.caller.request(
      xml(
        "iq",
        { type: "get", to: "wa.example" },
        xml("hello", { xmlns: "urn:interop:core:0", version: "0.2", provider: "p" }, [
          xml("feature", { var: "urn:interop:groups:0" }),
        ]),
      ),
    );
    assert.equal(result.attrs.type, "result");
    const hello = childElements(result)[0];
    assert.equal(hello?.attrs.session, "s-1");
    assert.equal(childElements(hello!)[0]?.attrs.var, "urn:interop:groups:0");

    // The gatekeeper pings the provider domain (§8.2); the bridge answers with an empty result.
    const pong = await gatekeeperIq.caller.request(
      xml(
        "iq",
        { type: "get", to: "matrix.bridge.example" },
        xml("ping", { xmlns: "urn:xmpp:ping" }),
      ),
    );
    assert.equal(pong.attrs.from, "matrix.bridge.example");
    assert.equal(childElements(pong).length, 0);
    assert.equal(bridgeIq.caller.pendingCount, 0);
    assert.equal(gatekeeperIq.caller.pendingCount, 0);
  });

  it("answers an IQ with an unknown payload with service-unavailable", async function () {
    await online(server.service, "matrix.bridge.example").then((b) => attachIq(b));
    const gatekeeperIq = attachIq(await online(server.service, "wa.example"));
    const err = await gatekeeperIq.caller
      .request(
        xml(
          "iq",
          { type: "get", to: "matrix.bridge.example" },
          xml("frobnicate", { xmlns: "urn:x:unknown" }),
        ),
      )
      .catch((e: unknown) => e);
    assert.ok(err instanceof IqError, String(err));
    assert.equal(err.error.condition, "service-unavailable");
    assert.equal(err.error.type, "cancel");
  });

  it("answers internal-server-error (wait) when an IQ handler throws, and keeps serving", async function () {
    const bridgeIq = attachIq(await online(server.service, "matrix.bridge.example"));
    const gatekeeperIq = attachIq(await online(server.service, "wa.example"));
    bridgeIq.responder.register("urn:x:test", "boom", () => {
      throw new Error("handler bug");
    });
    bridgeIq.responder.register("urn:x:test", "refuse", () => {
      throw new IqReplyError("auth", "not-authorized", {
        appCondition: xml("hello-required", { xmlns: "urn:interop:errors:0" }),
      });
    });
    const ask = (name: string): Promise<unknown> =>
      gatekeeperIq.caller
        .request(
          xml(
            "iq",
            { type: "set", to: "matrix.bridge.example" },
            xml(name, { xmlns: "urn:x:test" }),
          ),
        )
        .catch((e: unknown) => e);

    const boom = await ask("boom");
    assert.ok(boom instanceof IqError);
    assert.deepEqual([boom.error.type, boom.error.condition], ["wait", "internal-server-error"]);
    const refused = await ask("refuse");
    assert.ok(refused instanceof IqError);
    assert.equal(refused.error.condition, "not-authorized");
    assert.equal(refused.error.appCondition?.name, "hello-required");
    const pong = await gatekeeperIq.caller.request(
      xml(
        "iq",
        { type: "get", to: "matrix.bridge.example" },
        xml("ping", { xmlns: "urn:xmpp:ping" }),
      ),
    );
    assert.equal(pong.attrs.type, "result");
  });

  it("fires the IQ timeout, resends the identical IQ with the same id, and cleans up", async function () {
    const bridgeIq = attachIq(await online(server.service, "matrix.bridge.example"), {
      timeoutMs: 150,
      retries: 1,
    });
    const silentGatekeeper = await online(server.service, "wa.example");
    const seen = inbox(silentGatekeeper);
    const err = await bridgeIq.caller
      .request(
        xml("iq", { type: "get", to: "wa.example" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
      )
      .catch((e: unknown) => e);
    assert.ok(err instanceof IqTimeoutError, String(err));
    assert.equal(err.code, "iq-timeout");
    assert.equal(err.attempts, 2);
    assert.equal(bridgeIq.caller.pendingCount, 0);
    await eventually(() => seen.length === 2, "the resent IQ to arrive");
    assert.equal(seen[0]?.toString(), seen[1]?.toString());
  });

  it("gets a peer-offline bounce from the original to for a domain whose component is not connected", async function () {
    const bridge = await online(server.service, "matrix.bridge.example");
    const bridgeIq: IqService = attachIq(bridge);
    const received = inbox(bridge);
    await bridge.send(
      xml("message", {
        from: "alice@matrix.bridge.example/1",
        to: "k3x9q2@g.wa.example",
        id: "o1",
      }),
    );
    await eventually(() => received.some((s) => s.name === "message"), "the bounce");
    const bounce = received.find((s) => s.name === "message")!;
    assert.equal(bounce.attrs.type, "error");
    assert.equal(bounce.attrs.id, "o1");
    assert.equal(bounce.attrs.from, "k3x9q2@g.wa.example");

    const err = await bridgeIq.caller
      .request(
        xml("iq", { type: "get", to: "wa.example" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
      )
      .catch((e: unknown) => e);
    assert.ok(err instanceof IqError);
    assert.equal(err.error.condition, "service-unavailable");
    assert.equal(err.error.appCondition, undefined);
  });

  it("refuses a stanza above max-stanza-bytes before sending it and stays online", async function () {
    const bridge = await online(server.service, "matrix.bridge.example", { maxStanzaBytes: 1024 });
    const err = await bridge
      .send(xml("message", { to: "wa.example" }, xml("body", {}, "x".repeat(2000))))
      .catch((e: unknown) => e);
    assert.ok(err instanceof TransportError);
    assert.equal(err.code, "stanza-too-large");
    assert.equal(bridge.isOnline, true);
  });

  it("fails fast with transport-offline while not connected", async function () {
    const bridge = connection(server.service, "matrix.bridge.example");
    const before = await bridge.send(xml("message", { to: "wa.example" })).catch((e: unknown) => e);
    assert.ok(before instanceof TransportError);
    assert.equal(before.code, "transport-offline");
    bridge.start();
    await bridge.waitOnline(5000);
    await bridge.stop();
    assert.equal(bridge.state.code, "stopped");
    const after = await bridge.send(xml("message", { to: "wa.example" })).catch((e: unknown) => e);
    assert.ok(after instanceof TransportError);
    assert.equal(after.code, "transport-offline");
  });

  it("is refused with a bad secret: auth-failed, no crash, and reconnects with growing delays", async function () {
    const bridge = connection(server.service, "matrix.bridge.example", { secret: "wrong" });
    const failures: ConnectionState[] = [];
    bridge.on("state", (s) => {
      if (s.code === "auth-failed") failures.push(s);
    });
    bridge.start();
    await eventually(() => failures.length >= 4, "four refused attempts");
    assert.match(failures[0]!.message, /not-authorized/);
    assert.ok(failures[0]!.retryAt instanceof Date);
    // FAST_RECONNECT pins the jitter near the cap: 20, 40, 80, 160 ms (minus rounding).
    assert.deepEqual(
      failures.slice(0, 4).map((s) => s.retryInMs),
      [19, 39, 79, 159],
    );
    assert.equal(bridge.isOnline, false);
    assert.equal(server.isConnected("matrix.bridge.example"), false);
  });

  it("reports gatekeeper-unreachable while nothing listens, then connects once the server is up", async function () {
    const port = server.port;
    await server.stop({ abrupt: true });
    const bridge = connection(`xmpp://127.0.0.1:${port}`, "matrix.bridge.example");
    bridge.start();
    await waitForState(bridge, "gatekeeper-unreachable");
    assert.ok(bridge.state.retryAt !== undefined);
    server = await ComponentServer.start({ secrets: SECRETS, port });
    await bridge.waitOnline(5000);
  });

  it("reconnects on its own after the server is killed and restarted", async function () {
    const bridge = await online(server.service, "matrix.bridge.example");
    const port = server.port;
    const offline: ConnectionState[] = [];
    bridge.on("offline", (s) => offline.push(s));
    await server.stop({ abrupt: true });
    await eventually(() => offline.length === 1, "the offline event");
    assert.equal(offline[0]?.code, "gatekeeper-unreachable");
    server = await ComponentServer.start({ secrets: SECRETS, port });
    await waitForState(bridge, "connected");
    const gatekeeper = await online(server.service, "wa.example");
    const received = inbox(gatekeeper);
    await bridge.send(xml("message", { to: "wa.example", id: "after-restart" }));
    await eventually(() => received.length === 1, "a message after the restart");
  });

  it("reconnects after the server closes its stream for an oversize stanza", async function () {
    await server.stop({ abrupt: true });
    server = await ComponentServer.start({ secrets: SECRETS, maxStanzaBytes: 2048 });
    // The bridge's own guard is set above the server's limit so the stanza reaches the server.
    const bridge = await online(server.service, "matrix.bridge.example", {
      maxStanzaBytes: 1 << 20,
    });
    const offline: ConnectionState[] = [];
    bridge.on("offline", (s) => offline.push(s));
    await bridge.send(xml("message", { to: "wa.example" }, xml("body", {}, "x".repeat(4000))));
    await eventually(() => offline.length === 1, "the stream to close");
    assert.match(offline[0]!.message, /policy-violation/);
    await waitForState(bridge, "connected");
  });

  it("survives stanza handlers that throw or reject and keeps dispatching", async function () {
    const bridge = await online(server.service, "matrix.bridge.example");
    const gatekeeper = await online(server.service, "wa.example");
    gatekeeper.onStanza(() => {
      throw new Error("sync handler bug");
    });
    gatekeeper.onStanza(() => Promise.reject(new Error("async handler bug")));
    const received = inbox(gatekeeper);
    await bridge.send(xml("message", { to: "wa.example", id: "1" }));
    await bridge.send(xml("message", { to: "wa.example", id: "2" }));
    await eventually(() => received.length === 2, "both messages despite failing handlers");
    assert.equal(gatekeeper.isOnline, true);
  });

  it("fails pending IQs with transport-offline when the connection drops", async function () {
    const bridge = await online(server.service, "matrix.bridge.example");
    await online(server.service, "wa.example");
    const bridgeIq = attachIq(bridge, { timeoutMs: 10_000 });
    const pending = bridgeIq.caller
      .request(
        xml("iq", { type: "get", to: "wa.example" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
      )
      .catch((e: unknown) => e);
    await eventually(() => bridgeIq.caller.pendingCount === 1, "the request to be pending");
    await server.stop({ abrupt: true });
    const err = await pending;
    assert.ok(err instanceof TransportError);
    assert.equal(err.code, "transport-offline");
    assert.equal(bridgeIq.caller.pendingCount, 0);
  });

  it("stop() closes the stream so the server sees the component leave, and does not reconnect", async function () {
    const bridge = await online(server.service, "matrix.bridge.example");
    assert.equal(server.isConnected("matrix.bridge.example"), true);
    await bridge.stop();
    await eventually(
      () => !server.isConnected("matrix.bridge.example"),
      "the server to see the close",
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.isConnected("matrix.bridge.example"), false);
    assert.equal(bridge.state.code, "stopped");
  });
});
