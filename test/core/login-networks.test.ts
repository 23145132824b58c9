import assert from "node:assert/strict";
import { BridgeCore } from "../../src/core/bridge-core.js";
import { matrixUserId, roomId } from "../../src/util/ids.js";
import { silentLogger } from "../../src/util/log.js";
import { ALICE, MGMT } from "./helpers.js";
import { NETWORKS, createCoreOn, type NetHarness } from "./networks.js";

for (const nut of NETWORKS) {
  describe(`core: greeting, login and logout, on ${nut.label}`, function () {
    let h: NetHarness;
    beforeEach(async function () {
      h = await createCoreOn(nut);
    });
    afterEach(async function () {
      await h.dispose();
    });

    it("the greeting and the login warning name the network and its own security points", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      assert.match(h.matrix.lastNotice(MGMT), new RegExp(`to ${nut.name} contacts`));
      const [warning] = await h.say("login");
      for (const [i, note] of h.core.network.securityNotes.entries()) {
        assert.ok(warning?.includes(`${i + 1}. ${note}`), `point ${i + 1} is shown`);
      }
      assert.match(warning ?? "", nut.flowChoice);
      for (const other of NETWORKS.filter((n) => n !== nut)) {
        assert.ok(!warning?.includes(other.name), `${other.name} is not named`);
      }
    });

    it("a login flow is chosen by its id even when a command has the same name", async function () {
      await nut.logIn(h);
      assert.ok(h.core.provisioning.logins.get(ALICE), "logged in");
      assert.match((await h.say("status"))[0] ?? "", /^Logged in as /);
    });

    it("stored logins are loaded again at start-up, and logout tells the network in one notice", async function () {
      await nut.logIn(h);
      const again = new BridgeCore({
        config: h.config,
        knex: h.db.db.knex,
        matrix: h.matrix,
        createConnector: () => h.network,
        log: silentLogger(),
      });
      await again.start();
      assert.ok(again.provisioning.logins.get(ALICE));
      await again.handleManagementMessage(ALICE, MGMT, "logout");
      assert.match(h.matrix.lastNotice(MGMT), new RegExp(`^Logged out: ${nut.name} was told`));
      assert.ok(h.network.actions.includes(`logout ${ALICE}`));
    });

    it("help names the network's portal prefix and its kind of address", async function () {
      await nut.logIn(h);
      const [help] = await h.say("help");
      const { commandPrefix, identifier } = h.core.network;
      assert.match(
        help ?? "",
        new RegExp(`prefix them with \`${commandPrefix}\`; the ${identifier.noun}`),
      );
      assert.ok(help?.includes(`\`block <${identifier.argument}>\``));
      assert.ok(help?.includes(`List your ${nut.name} chats`));
      assert.ok(!help?.includes("{"), "every term is filled in");
    });
  });

  describe(`core: ghosts of addresses, on ${nut.label}`, function () {
    let h: NetHarness;
    beforeEach(async function () {
      h = await createCoreOn(nut);
      await nut.logIn(h);
    });
    afterEach(async function () {
      await h.dispose();
    });

    it("inviting a contact's ghost to a direct room reads the address back from the ghost and links the chat", async function () {
      nut.addUser(h.network, nut.bob);
      const dm = roomId("!dm:example.org");
      await h.core.onGhostInvited(ALICE, dm, matrixUserId(nut.bob.ghost), true);
      assert.equal((await h.tables.portalRows.get(ALICE, nut.bob.id))?.roomId, dm);
      assert.equal(h.matrix.ghosts.get(nut.bob.ghost as never), nut.bob.ghostName);
    });

    it("the ghost namespace is the network's: its ghosts are recognised, other users are not", function () {
      assert.ok(h.core.isOwnUser(nut.bob.ghost));
      for (const other of NETWORKS.filter((n) => n !== nut)) {
        assert.ok(!h.core.isOwnUser(other.bob.ghost), `${other.bob.ghost} is not a ghost here`);
      }
      assert.ok(!h.core.isOwnUser("@bob:example.org"));
    });
  });
}
