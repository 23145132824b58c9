import assert from "node:assert/strict";
import { ADMIN, MGMT } from "./helpers.js";
import { WITH_INTEROP, createCoreOn, type NetHarness } from "./networks.js";

/**
 * BridgeCore's consumers reach it through ports (core/ports.ts), not through its fields. The
 * `@ts-expect-error` lines are the compile-time half: `npx tsc` fails if a table or manager
 * becomes public again (the service-locator shape of #16).
 */
for (const nut of WITH_INTEROP) {
  describe(`core: the ports are the way in, on ${nut.label}`, function () {
    let h: NetHarness;

    beforeEach(async function () {
      h = await createCoreOn(nut);
    });
    afterEach(async function () {
      await h.dispose();
    });

    it("the tables, managers and connector are not reachable from outside the core", function () {
      const reach = (core: NetHarness["core"]) => [
        // @ts-expect-error the portals table is private: the router uses core.router.portalRows
        core.portalRows,
        // @ts-expect-error the login manager is private: provisioning uses core.provisioning.logins
        core.logins,
        // @ts-expect-error the connector is private: readiness uses core.health.connector
        core.connector,
        // @ts-expect-error the Matrix events handler is private: core.router.fromMatrix
        core.fromMatrix,
        // @ts-expect-error the dead letters are attached (attachDeadLetters), not assigned
        (core.deadLetters = undefined),
      ];
      assert.equal(typeof reach, "function");
    });

    it("dead letters attached after the core is built reach the admin command", async function () {
      await h.core.onBotInvited(ADMIN, MGMT);
      assert.deepEqual(await h.say("dead-letters", ADMIN), [
        "No dead-letter queue in this bridge.",
      ]);
      h.core.attachDeadLetters({
        list: () => Promise.resolve([]),
        retry: () => Promise.resolve(0),
      });
      assert.deepEqual(await h.say("dead-letters", ADMIN), ["No dead letters."]);
    });

    it("the ports and the core share one connector and one network description", function () {
      assert.equal(h.core.health.connector, h.network);
      assert.equal(h.core.router.network, h.core.network);
      assert.equal(h.core.provisioning.network, h.core.network);
      assert.deepEqual(h.core.provisioning.loginFlows(), h.network.loginFlows());
    });
  });
}
