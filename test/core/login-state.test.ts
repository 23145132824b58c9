import assert from "node:assert/strict";
import { ALICE, MGMT } from "./helpers.js";
import { NETWORKS, createCoreOn, type NetHarness } from "./networks.js";

// The core's own bookkeeping: the networks with hooks suffice (the real connector's end of a login is
// an unbinding at the gatekeeper, which its own tests cover).
for (const nut of NETWORKS) {
  // The loopback network never ends a login by itself.
  (nut.endLogin ? describe : describe.skip)(
    `core: a login's state after the network ended the one before, on ${nut.label}`,
    function () {
      let h: NetHarness;
      beforeEach(async function () {
        h = await createCoreOn(nut);
      });
      afterEach(async function () {
        await h.dispose();
      });

      async function endLogin(): Promise<void> {
        const state = { code: "logged-out" as const, message: "The number was bound elsewhere." };
        await nut.endLogin?.(h.network, ALICE, state);
      }

      it("a new login is not shown as logged out, and the network ending it again is told again", async function () {
        await nut.logIn(h);
        await endLogin();
        const told = h.matrix.notices(MGMT).filter((n) => /You were logged out/.test(n)).length;
        assert.equal(told, 1, "the first end is told");
        await nut.logIn(h);
        assert.notEqual(h.core.provisioning.loginStateOf(ALICE)?.code, "logged-out");
        const [status] = await h.say("status");
        assert.doesNotMatch(status ?? "", /logged-out/, status);
        await endLogin();
        assert.equal(
          h.matrix.notices(MGMT).filter((n) => /You were logged out/.test(n)).length,
          2,
          "the second end is told too",
        );
      });
    },
  );
}
