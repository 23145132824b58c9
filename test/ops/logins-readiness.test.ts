import assert from "node:assert/strict";
import { BridgeMetrics } from "../../src/metrics/index.js";
import { loginsCheck } from "../../src/metrics/readiness.js";

describe("stored logins that failed to load, in /ready and the metrics", function () {
  it("/ready names them in a passing check: one user's unreadable keys do not take the bridge out of service", async function () {
    let failed = 0;
    const check = loginsCheck(() => failed);
    assert.deepEqual(await check(), { name: "logins", ok: true });
    failed = 2;
    const shown = await check();
    assert.equal(shown.ok, true);
    assert.match(shown.detail ?? "", /2 stored login\(s\) failed to load; retrying/);
  });

  it("mwi_logins_failed counts them at each scrape", async function () {
    let failed = 3;
    const metrics = new BridgeMetrics();
    metrics.setSources({
      outboxDepth: () => Promise.resolve(0),
      inboxDepth: () => Promise.resolve(0),
      usersLoggedIn: () => Promise.resolve(0),
      portals: () => Promise.resolve(0),
      gatekeeper: () => undefined,
      loginsFailed: () => failed,
    });
    assert.match(await metrics.registry.metrics(), /^mwi_logins_failed 3$/m);
    failed = 0;
    assert.match(await metrics.registry.metrics(), /^mwi_logins_failed 0$/m);
  });
});
