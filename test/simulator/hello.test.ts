import assert from "node:assert/strict";
import {
  decodeHelloResult,
  encodeHelloRequest,
  encodePing,
  effectiveLimits,
} from "../../src/interop/codec/index.js";
import { xml, type XmlElement } from "../../src/interop/codec/xml.js";
import type { Simulator } from "../../simulator/main.js";
import { checkSizeConstraint, resolveSettings } from "../../simulator/config.js";
import { child, errorOf, PROVIDER, startTestSimulator, TestProvider } from "./harness.js";

describe("simulator: hello and session (§8)", function () {
  let sim: Simulator;
  let provider: TestProvider;

  beforeEach(async function () {
    ({ sim } = await startTestSimulator());
    provider = await TestProvider.connect(sim.service);
  });
  afterEach(async function () {
    await provider.close();
    await sim.stop();
  });

  it("asks a provider without hello state for hello", async function () {
    // The provider connected after start: the request went out before, so restart the state.
    await sim.gatekeeper.run(() => sim.gatekeeper.services.hello.forget(PROVIDER.domain));
    const request = await provider.waitFor((s) => s.name === "message");
    assert.equal(child(request).name, "hello-request");
    assert.equal(request.attrs.from, "wa.example");
  });

  it("answers every IQ before hello with not-authorized + hello-required, ping included", async function () {
    const ping = await provider.iq("get", encodePing(), { from: PROVIDER.domain });
    assert.deepEqual(
      [errorOf(ping).condition, errorOf(ping).app?.name, errorOf(ping).type],
      ["not-authorized", "hello-required", "auth"],
    );
    const binding = await provider.iq("get", xml("binding", { xmlns: "urn:interop:identity:0" }));
    assert.equal(errorOf(binding).app?.name, "hello-required");
  });

  it("E25: does not cache a hello-required answer: the same IQ id after hello gets a real answer", async function () {
    const before = await provider.iq("get", encodePing(), { from: PROVIDER.domain, id: "same-id" });
    assert.equal(errorOf(before).app?.name, "hello-required");
    await provider.hello(PROVIDER);
    const after = await provider.iq("get", encodePing(), { from: PROVIDER.domain, id: "same-id" });
    assert.equal(after.attrs.type, "result");
  });

  it("answers hello with its features, limits within the size constraint and media origins", async function () {
    const response = await provider.hello(PROVIDER, ["urn:interop:content:0#reply", "x:unknown"]);
    const hello = decodeHelloResult(child(response));
    assert.equal(hello.version, "0.2");
    assert.ok(hello.features.includes("urn:interop:content:0#reply"));
    assert.ok(!hello.features.includes("x:unknown"));
    assert.ok(!hello.features.includes("urn:interop:groups:0"));
    checkSizeConstraint(effectiveLimits(hello));
    assert.deepEqual(hello.mediaOrigins, [sim.media?.origin]);
    const ping = await provider.iq("get", encodePing(), { from: PROVIDER.domain });
    assert.equal(ping.attrs.type, "result");
  });

  it("refuses a wrong provider id with not-enlisted and another major with unsupported-version", async function () {
    const wrong = await provider.iq(
      "get",
      encodeHelloRequest({ version: "0.2", provider: "someone-else", features: [] }),
      { from: PROVIDER.domain },
    );
    assert.deepEqual(
      [errorOf(wrong).condition, errorOf(wrong).app?.name],
      ["not-authorized", "not-enlisted"],
    );
    const major = await provider.iq(
      "get",
      encodeHelloRequest({ version: "1.0", provider: PROVIDER.id, features: [] }),
      { from: PROVIDER.domain },
    );
    const e = errorOf(major);
    assert.deepEqual(
      [e.condition, e.app?.name, e.app?.attrs.supported],
      ["feature-not-implemented", "unsupported-version", "0.2"],
    );
    const minor = await provider.iq(
      "get",
      encodeHelloRequest({ version: "0.9", provider: PROVIDER.id, features: [] }),
      { from: PROVIDER.domain },
    );
    assert.equal(minor.attrs.type, "result");
  });

  it("answers an IQ with an unknown payload with service-unavailable", async function () {
    await provider.hello();
    const response = await provider.iq("get", xml("frobnicate", { xmlns: "urn:example:x" }));
    assert.deepEqual(
      [errorOf(response).condition, errorOf(response).app],
      ["service-unavailable", undefined],
    );
  });

  it("repeats the remembered response to a repeated IQ id without executing it again", async function () {
    await provider.hello();
    const request = () =>
      xml("request-code", { xmlns: "urn:interop:identity:0", phone: "+491709876543" });
    const first = await provider.iq("set", request(), { id: "same-id" });
    assert.equal(first.attrs.type, "result");
    const again = await provider.iq("set", request(), { id: "same-id" });
    assert.equal(again.toString(), first.toString());
    // A new id is a new request: it runs, and the spacing rule refuses it.
    const fresh = await provider.iq("set", request(), { id: "other-id" });
    assert.equal(errorOf(fresh).app?.attrs.scope, "verification");
  });

  it("keeps hello state across a restart of the simulator", async function () {
    await provider.hello();
    const file = `${sim.dataDir}/restart.db`;
    await provider.close();
    await sim.stop();
    const first = await startTestSimulator({ database: file, dataDir: sim.dataDir });
    const p1 = await TestProvider.connect(first.sim.service);
    await p1.hello();
    await p1.close();
    await first.sim.stop();
    const second = await startTestSimulator({ database: file, dataDir: sim.dataDir });
    sim = second.sim;
    provider = await TestProvider.connect(sim.service);
    const ping = await provider.iq("get", encodePing(), { from: PROVIDER.domain });
    assert.equal(ping.attrs.type, "result");
  });

  it("refuses stanzas from a domain that is not enlisted with not-authorized (auth)", async function () {
    const answers: XmlElement[] = [];
    const stranger = sim.server?.attachLocal("stranger.example", (s) => {
      answers.push(s);
    });
    assert.ok(stranger !== undefined);
    stranger.send(
      xml(
        "iq",
        { type: "get", id: "s1", from: "stranger.example", to: "wa.example" },
        encodePing(),
      ),
    );
    stranger.send(
      xml(
        "iq",
        { type: "get", id: "s2", from: "stranger.example", to: "wa.example" },
        encodeHelloRequest({ version: "0.2", provider: PROVIDER.id, features: [] }),
      ),
    );
    while (answers.length < 2) await new Promise((r) => setTimeout(r, 10));
    const [ping, hello] = answers as [XmlElement, XmlElement];
    assert.deepEqual([errorOf(ping).condition, errorOf(ping).type], ["not-authorized", "auth"]);
    assert.equal(errorOf(hello).app?.name, "not-enlisted");
    stranger.detach();
  });

  it("refuses limits that break the size constraint of §8.3", function () {
    assert.throws(
      () => resolveSettings({ providers: [PROVIDER], limits: { "max-stanza-bytes": 100000 } }),
      /size constraint/,
    );
    assert.doesNotThrow(() => resolveSettings({ providers: [PROVIDER] }));
  });
});
