import assert from "node:assert/strict";
import { xml } from "../../src/interop/codec/xml.js";
import type { ComponentConnection } from "../../src/interop/transport/component.js";
import { ComponentServer } from "../../simulator/xmpp/component-server.js";
import { eventually, inbox, makeConnection, SECRETS } from "../interop/transport/helpers.js";

/**
 * The transport reads at most about max-stanza-bytes of one stanza: a peer (or a compromised
 * XMPP server) that sends a larger one loses the connection instead of growing the bridge's
 * memory, and the bridge reconnects. Smaller stanzas flow as before. Counts within a stanza are
 * bounded by the codec (max-receipt-items, max-ack-items, max-reactions, max-body-bytes, envelope
 * depth and element count: test/interop/codec/); this covers the one size the codec never sees.
 */
describe("inbound stanza size is bounded at the transport", function () {
  this.timeout(30_000);
  let server: ComponentServer;
  const connections: ComponentConnection[] = [];

  before(async function () {
    server = await ComponentServer.start({ secrets: SECRETS });
  });

  after(async function () {
    await Promise.all(connections.splice(0).map((c) => c.stop()));
    await server.stop({ abrupt: true });
  });

  it("a stanza far above max-stanza-bytes drops the connection, which comes back; small ones pass", async function () {
    // 1 KiB allowed, plus the transport's 64 KiB of slack: 200 KiB is far above.
    const bridge = makeConnection(server.service, "matrix.bridge.example", {
      maxStanzaBytes: 1024,
    });
    const gatekeeper = makeConnection(server.service, "wa.example");
    connections.push(bridge, gatekeeper);
    bridge.start();
    gatekeeper.start();
    await bridge.waitOnline(5000);
    await gatekeeper.waitOnline(5000);
    const received = inbox(bridge);
    const drops: string[] = [];
    bridge.on("offline", () => drops.push("offline"));

    await gatekeeper.send(
      xml(
        "message",
        { from: "491701234567@wa.example/1", to: "a@matrix.bridge.example", id: "big" },
        xml("body", {}, "x".repeat(200_000)),
      ),
    );
    await eventually(() => drops.length > 0, "the bridge to drop the connection");
    assert.ok(
      !received.some((s) => s.attrs.id === "big"),
      "the oversized stanza is not dispatched",
    );
    await bridge.waitOnline(10_000);
    await gatekeeper.send(
      xml("message", {
        from: "491701234567@wa.example/1",
        to: "a@matrix.bridge.example",
        id: "small",
      }),
    );
    await eventually(() => received.some((s) => s.attrs.id === "small"), "a small stanza after");
  });
});
