import assert from "node:assert/strict";
import { encodePing } from "../../src/interop/codec/index.js";
import { ComponentServer } from "../../simulator/xmpp/component-server.js";
import { startSimulator } from "../../simulator/main.js";
import { OTHER_PROVIDER, PROVIDER, TestClock, TestProvider } from "./harness.js";
import { PHONE } from "./world.js";

describe("simulator: startSimulator modes", function () {
  this.timeout(30000);

  it("external mode connects wa.example and g.wa.example to an XMPP server as components", async function () {
    const server = await ComponentServer.start({
      secrets: {
        "wa.example": "gatekeeper-secret",
        "g.wa.example": "gatekeeper-secret",
        [PROVIDER.domain]: "provider-secret",
      },
    });
    const clock = new TestClock();
    const sim = await startSimulator({
      mode: "external",
      externalService: server.service,
      providers: [PROVIDER, OTHER_PROVIDER],
      database: ":memory:",
      now: clock.now,
      tickIntervalMs: 0,
    });
    try {
      assert.equal(server.isConnected("wa.example"), true);
      assert.equal(server.isConnected("g.wa.example"), true);
      const provider = await TestProvider.connect(server.service);
      await provider.hello();
      const ping = await provider.iq("get", encodePing(), { from: PROVIDER.domain });
      assert.equal(ping.attrs.type, "result");
      await sim.users.create({ phone: PHONE });
      await provider.close();
    } finally {
      await sim.stop();
      await server.stop();
    }
    assert.equal(server.isConnected("wa.example"), false);
  });

  it("stops cleanly: the component port closes and a second start on a fresh port works", async function () {
    const sim = await startSimulator({
      providers: [PROVIDER],
      database: ":memory:",
      tickIntervalMs: 0,
    });
    const service = sim.service;
    await sim.stop();
    await assert.rejects(
      TestProvider.connect(service).then(async (p) => p.close()),
      /not online|ECONNREFUSED/,
    );
    const again = await startSimulator({
      providers: [PROVIDER],
      database: ":memory:",
      tickIntervalMs: 50,
    });
    const provider = await TestProvider.connect(again.service);
    await provider.hello();
    await again.users.create({ phone: PHONE });
    await provider.close();
    await again.stop();
  });
});
