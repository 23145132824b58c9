import assert from "node:assert/strict";
import { xml } from "../../../src/interop/codec/xml.js";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import {
  INBOUND_SLACK_BYTES,
  inboundCapBytes,
  type ComponentConnection,
} from "../../../src/interop/transport/component.js";
import { ComponentServer } from "../../../simulator/xmpp/component-server.js";
import { errorOf } from "../../simulator/harness.js";
import { text } from "../../simulator/provider-user.js";
import { GK, makeWorld, type World } from "../../simulator/world.js";
import { eventually, makeConnection } from "./helpers.js";

/**
 * The transport's inbound cap on both sides of an XMPP server whose own stanza limit (2 MiB, as a
 * deployment may set Prosody's `component_stanza_size_limit`) is far above max-stanza-bytes
 * (256 KiB): what the server lets through must reach the application, which answers it, instead
 * of the connection dropping (G2, E27).
 */
const SERVER_LIMIT = 2 * 1024 * 1024;
const MAX_STANZA = 262144;
const OVERSIZED = 388 * 1024;

const padding = (bytes: number): XmlElement =>
  xml("padding", { xmlns: "urn:example:pad" }, "p".repeat(bytes));

describe("transport: the inbound cap sits above max-stanza-bytes and the server's limit (E27)", function () {
  this.timeout(30000);

  it("the cap is above both max-stanza-bytes and the server's stanza limit", function () {
    assert.equal(inboundCapBytes(MAX_STANZA), MAX_STANZA + INBOUND_SLACK_BYTES);
    assert.ok(inboundCapBytes(MAX_STANZA, SERVER_LIMIT) > SERVER_LIMIT);
    assert.ok(inboundCapBytes(SERVER_LIMIT, MAX_STANZA) > SERVER_LIMIT);
  });

  describe("the gatekeeper simulator behind a server with a 2 MiB limit", function () {
    let server: ComponentServer;
    let w: World;
    beforeEach(async function () {
      server = await ComponentServer.start({
        secrets: {
          "wa.example": "gatekeeper-secret",
          "g.wa.example": "gatekeeper-secret",
          "matrix.bridge.example": "provider-secret",
          "other.example": "other-secret",
        },
        maxStanzaBytes: SERVER_LIMIT,
      });
      w = await makeWorld({ mode: "external", externalService: server.service });
    });
    afterEach(async function () {
      await w.close();
      await server.stop();
    });

    it("bounces a 388 KB message with too-large and keeps its connection (G2)", async function () {
      const { stanza } = await w.alice.message(GK, text("x"));
      stanza.children.push(padding(OVERSIZED));
      w.provider.connection.setMaxStanzaBytes(SERVER_LIMIT);
      const error = errorOf(await w.provider.outcome(stanza, 10_000));
      assert.deepEqual(
        [error.condition, error.app?.name, error.app?.attrs.max],
        ["policy-violation", "too-large", String(MAX_STANZA)],
      );
      assert.ok(server.isConnected("wa.example"), "the gatekeeper is still connected");
      const next = await w.alice.message(GK, text("after"));
      const accepted = await w.provider.outcome(next.stanza);
      assert.notEqual(accepted.attrs.type, "error", accepted.toString());
    });
  });

  describe("a component connection (the bridge's) with max-stanza-bytes from hello", function () {
    let server: ComponentServer;
    let bridge: ComponentConnection;
    let gatekeeper: ComponentConnection;
    beforeEach(async function () {
      server = await ComponentServer.start({
        secrets: { "wa.example": "gatekeeper-secret", "matrix.bridge.example": "provider-secret" },
        maxStanzaBytes: SERVER_LIMIT,
      });
    });
    afterEach(async function () {
      await bridge?.stop();
      await gatekeeper?.stop();
      await server.stop();
    });

    for (const side of [
      { name: "told the server's limit", serverStanzaLimitBytes: SERVER_LIMIT, delivered: true },
      { name: "not told it", serverStanzaLimitBytes: undefined, delivered: false },
    ]) {
      it(`${side.delivered ? "reads" : "drops the connection on"} a 388 KB stanza when ${side.name}`, async function () {
        bridge = makeConnection(server.service, "matrix.bridge.example", {
          maxStanzaBytes: MAX_STANZA,
          ...(side.serverStanzaLimitBytes === undefined
            ? {}
            : { serverStanzaLimitBytes: side.serverStanzaLimitBytes }),
        });
        gatekeeper = makeConnection(server.service, "wa.example", { maxStanzaBytes: SERVER_LIMIT });
        const received: XmlElement[] = [];
        bridge.onStanza((s) => void received.push(s));
        let drops = 0;
        bridge.on("offline", () => drops++);
        bridge.start();
        gatekeeper.start();
        await Promise.all([bridge.waitOnline(), gatekeeper.waitOnline()]);
        await gatekeeper.send(
          xml("message", { to: "matrix.bridge.example", id: "big" }, padding(OVERSIZED)),
        );
        if (side.delivered) {
          await eventually(() => received.length === 1, "the stanza");
          assert.equal(drops, 0);
        } else {
          await eventually(() => drops === 1, "the drop");
          assert.equal(received.length, 0);
        }
      });
    }
  });
});
