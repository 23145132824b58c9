import assert from "node:assert/strict";
import type { WeakEvent } from "matrix-appservice-bridge";
import { BridgeError } from "../../src/util/errors.js";
import { DOMAIN, freePort } from "./harness.js";
import { startPortalWorld, type PortalWorld } from "./portal-world.js";

/**
 * A Matrix event that keeps failing transiently (here: the decrypt hook #12 plugs in, saying a
 * key is not there yet) is retried in its room, then kept as a dead letter with a notice; the
 * other events of the room go on, the admin lists it and retries it, and /metrics counts it.
 */
describe("dead letters", function () {
  this.timeout(120_000);
  let w: PortalWorld;
  let failing = new Set<string>();
  let attempts = 0;

  before(async function () {
    const metricsPort = await freePort();
    w = await startPortalWorld(
      {
        ingressPolicy: { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 4 },
        ingressHooks: {
          receiveTransactionExtras: () => Promise.resolve(),
          decrypt: (event: WeakEvent) => {
            if (!failing.has(event.event_id)) return Promise.resolve(event);
            attempts += 1;
            return Promise.reject(
              new BridgeError("key-missing", "the room key has not arrived", {
                retryAt: new Date(Date.now() + 10),
              }),
            );
          },
        },
      },
      {
        permissions: { "*": "none", [DOMAIN]: "user", [`@alice:${DOMAIN}`]: "admin" },
        metrics: { enabled: true, port: metricsPort },
      },
    );
  });
  after(async function () {
    await w?.dispose();
  });

  it("a transiently failing event is retried, dead-lettered with a notice, listed, retried by the admin and counted", async function () {
    const { h, portalBob } = w;
    const stuck = `stuck ${w.next()}`;
    const stuckId = `$will-fail-${w.next()}`;
    failing = new Set([stuckId]);
    const pushed = await w.push([
      {
        type: "m.room.message",
        room_id: portalBob,
        sender: h.alice.userId,
        event_id: stuckId,
        content: { msgtype: "m.text", body: stuck },
      },
    ]);
    assert.equal(pushed, 200);
    await w.botSays(portalBob, /failed 4 times \(key-missing\).*dead-letters retry/);
    assert.equal(attempts, 4);
    await w.legitimateTrafficFlows("a dead letter");

    const listing = await w.command("dead-letters", /^Dead letters/);
    const match = new RegExp(`^(\\d+): ${stuckId.replace(/\$/g, "\\$")} in `, "m").exec(listing);
    assert.ok(match, listing);
    assert.match(listing, /4 attempts, last error key-missing/);

    const metrics = await fetch(`http://127.0.0.1:${h.bridge.metricsPort}/metrics`).then((r) =>
      r.text(),
    );
    assert.match(metrics, /^mwi_matrix_dead_letters_total 1$/m);
    assert.match(metrics, /^mwi_matrix_dead_letters 1$/m);
    assert.match(metrics, /^mwi_matrix_event_failures_total\{class="transient"\} 4$/m);

    failing = new Set();
    await w.command(`dead-letters retry ${match[1]}`, /^Retrying dead letters in 1 room/);
    await h.waitFor(
      async () =>
        h.network.sent.some((m) => m.content.type === "text" && m.content.text.text === stuck)
          ? true
          : undefined,
      "the retried message at the network",
    );
    await w.command("dead-letters", /^No dead letters/);
  });
});
