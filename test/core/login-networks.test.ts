import assert from "node:assert/strict";
import { matrixUserId, roomId } from "../../src/util/ids.js";
import { Writable } from "node:stream";
import { createLogger } from "../../src/util/log.js";
import { ALICE, MGMT, STRANGER, restartedCore } from "./helpers.js";
import { WITH_INTEROP, createCoreOn, literal, type NetHarness } from "./networks.js";

for (const nut of WITH_INTEROP) {
  describe(`core: greeting, login and logout, on ${nut.label}`, function () {
    let h: NetHarness;
    beforeEach(async function () {
      h = await createCoreOn(nut);
    });
    afterEach(async function () {
      await h.dispose();
    });

    it("an invite from a permitted user is joined and greeted; the room becomes the management room", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      assert.ok(h.matrix.calls.includes(`join ${MGMT} ${h.matrix.botUserId}`));
      assert.match(h.matrix.lastNotice(MGMT), /Send `login` to start/);
      assert.equal((await h.tables.users.get(ALICE))?.managementRoom, MGMT);
    });

    it("an invite from a user without permission is refused with a notice saying why, logged, and nothing is stored", async function () {
      await h.dispose();
      const lines: string[] = [];
      const destination = new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      });
      h = await createCoreOn(
        nut,
        undefined,
        createLogger({ level: "info", format: "json", destination }),
      );
      const room = MGMT.replace("mgmt", "other") as typeof MGMT;
      await h.core.onBotInvited(STRANGER, room);
      const bot = h.matrix.botUserId;
      const order = h.matrix.calls.filter((call) => call.includes(room));
      assert.deepEqual(
        order.filter((call) => call.startsWith("join") || call.startsWith("leave")),
        [`join ${room} ${bot}`, `leave ${room} ${bot}`],
      );
      assert.match(h.matrix.lastNotice(room), new RegExp(`${STRANGER} may not use this bridge`));
      assert.ok(
        lines.some((line) => line.includes("invite refused") && line.includes(STRANGER)),
        `logged: ${lines.join("")}`,
      );
      assert.equal(await h.tables.users.get(STRANGER), undefined);
      const before = h.matrix.notices(room).length;
      await h.say("help", STRANGER, room);
      assert.equal(h.matrix.notices(room).length, before, "no command answered");
    });

    it("help lists only permitted commands, and commands still work during a login", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      const [help] = await h.say("help");
      assert.ok(help?.includes(`start-chat <${h.core.network.identifier.argument}>`));
      assert.doesNotMatch(help ?? "", /stats/);
      const [adminHelp] = await h.say("help", "@boss:example.org" as typeof ALICE);
      assert.match(adminHelp ?? "", /stats/);
    });

    it("logout tells the network and forgets the login in one notice that offers to clean up; clean-up leaves the portals and takes them off the space", async function () {
      await nut.logIn(h);
      await nut.addUser(h.network, nut.bob);
      await h.say(`start-chat ${nut.bob.typed}`);
      const [portal] = await h.tables.portalRows.listByUser(ALICE);
      const answers = await h.say("logout");
      assert.equal(answers.length, 1, "one notice");
      assert.match(
        answers[0] ?? "",
        /Logged out.*keys were deleted.*1 chat\(s\) are kept.*`clean-up`/,
      );
      await h.network.settled();
      assert.ok(h.network.actions.includes(`logout ${ALICE}`));
      assert.equal(h.core.provisioning.logins.get(ALICE), undefined);
      const user = await h.tables.users.get(ALICE);
      assert.equal(user?.loginState, "logged-out");
      assert.equal(user?.address, null);
      assert.ok(!h.matrix.calls.some((c) => c.startsWith("leave !room")), "the chat is kept");
      assert.equal((await h.tables.portalRows.listByUser(ALICE)).length, 1);

      assert.deepEqual(await h.say("clean-up"), [
        `Left 1 chat(s) and removed them from your ${nut.name} space.`,
      ]);
      assert.ok(
        h.matrix.calls.some((c) => c.startsWith("leave !room") && c.endsWith(h.matrix.botUserId)),
      );
      assert.ok(
        h.matrix.calls.some(
          (c) => c.startsWith("space-child-removed") && c.endsWith(String(portal?.roomId)),
        ),
        "the space no longer lists the portal",
      );
      assert.deepEqual(await h.tables.portalRows.listByUser(ALICE), []);
      assert.deepEqual(await h.say("logout"), ["You are not logged in."]);
    });

    it("the greeting and the login warning name the network and its own security points", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      assert.match(h.matrix.lastNotice(MGMT), new RegExp(`to ${nut.name} contacts`));
      const [warning] = await h.say("login");
      for (const [i, note] of h.core.network.securityNotes.entries()) {
        assert.ok(warning?.includes(`${i + 1}. ${note}`), `point ${i + 1} is shown`);
      }
      assert.match(warning ?? "", nut.flowChoice);
      // Other networks: the phone-numbered fake imitates WhatsApp, so it is no other network here.
      for (const other of WITH_INTEROP.filter(
        (n) => n.name !== nut.name && n.backend === nut.backend,
      )) {
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
      const again = await restartedCore(h);
      assert.ok(again.provisioning.logins.get(ALICE));
      await again.handleManagementMessage(ALICE, MGMT, "logout");
      assert.match(h.matrix.lastNotice(MGMT), new RegExp(`^Logged out: ${nut.name} was told`));
      await h.network.settled();
      assert.ok(h.network.actions.includes(`logout ${ALICE}`));
    });

    it("cancel stops a login in progress", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      await h.say(h.network.loginFlows()[0]?.id ?? assert.fail("no login flow"));
      assert.deepEqual(await h.say("cancel"), ["Login cancelled."]);
      assert.equal((await h.tables.users.get(ALICE))?.loginState, "logged-out");
      assert.deepEqual(await h.say("cancel"), ["No login is in progress."]);
      // A new login goes through to the end.
      await nut.logIn(h);
      assert.ok(h.core.provisioning.logins.get(ALICE), "logged in after the cancel");
    });

    it("an unknown reply to the warning lists the choices again", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      const [again] = await h.say("maybe");
      for (const flow of h.network.loginFlows()) {
        assert.ok(again?.includes(`\`${flow.id}\``), `${flow.id} is offered: ${again}`);
      }
    });

    /** Alice logged in, and the network ended her login (interop: the number bound elsewhere). */
    async function loginEndedByNetwork(): Promise<void> {
      await nut.logIn(h);
      const state = { code: "logged-out" as const, message: "The number was bound elsewhere." };
      await nut.endLogin?.(h.network, ALICE, state);
    }

    // The loopback network never ends a login by itself.
    (nut.endLogin ? it : it.skip)(
      "after the network ended the login, login starts a new one",
      async function () {
        await loginEndedByNetwork();
        const [answer] = await h.say("login");
        assert.doesNotMatch(answer ?? "", /already logged in/);
        assert.match(answer ?? "", nut.flowChoice);
      },
    );

    (nut.endLogin ? it : it.skip)(
      "after the network ended the login, the provisioning API starts a new one too",
      async function () {
        await loginEndedByNetwork();
        const flow = h.network.loginFlows()[0] ?? assert.fail("a login flow");
        const { outcome } = await h.core.provisioning.logins.startStructured(ALICE, flow.id);
        assert.ok(outcome.type === "input" || outcome.type === "complete", JSON.stringify(outcome));
      },
    );

    /** A second core on the same database and connector, whose loads of stored logins fail. */
    async function restartFailingLoads(retry?: { initialMs: number; maxMs: number }) {
      await nut.logIn(h);
      nut.failLoads(h.network, true);
      return restartedCore(h, retry);
    }

    it("a stored login that fails to load is reported by status, and logout still logs out", async function () {
      const again = await restartFailingLoads();
      try {
        assert.equal(again.provisioning.logins.get(ALICE), undefined);
        await again.handleManagementMessage(ALICE, MGMT, "status");
        assert.match(h.matrix.lastNotice(MGMT), /stored login could not be loaded/);
        await again.handleManagementMessage(ALICE, MGMT, "logout");
        assert.match(
          h.matrix.lastNotice(MGMT),
          new RegExp(`could not be loaded to tell ${nut.name}`),
        );
        assert.equal((await h.tables.users.get(ALICE))?.loginState, "logged-out");
      } finally {
        nut.failLoads(h.network, false);
        await again.stop();
      }
    });

    it("a stored login that fails to load is kept as failed, shown by status, and loads on a later retry once the fault is gone", async function () {
      const again = await restartFailingLoads({ initialMs: 20, maxMs: 40 });
      try {
        assert.equal(again.provisioning.logins.get(ALICE), undefined);
        assert.equal(again.health.failedLogins(), 1);
        await again.handleManagementMessage(ALICE, MGMT, "status");
        assert.match(h.matrix.lastNotice(MGMT), /stored login could not be loaded/);
        assert.match(
          h.matrix.lastNotice(MGMT),
          /stored keys unreadable; tried \d+ time\(s\), next try in/,
        );
        // Still failing: retried, not dropped.
        await waitFor(() => (again.health.loginFailure(ALICE)?.attempts ?? 0) >= 2);
        nut.failLoads(h.network, false);
        await waitFor(() => again.provisioning.logins.get(ALICE) !== undefined);
        assert.equal(again.health.failedLogins(), 0);
        await again.handleManagementMessage(ALICE, MGMT, "status");
        assert.match(
          h.matrix.lastNotice(MGMT),
          new RegExp(`Logged in as ${literal(nut.loggedInAs)}`),
        );
      } finally {
        nut.failLoads(h.network, false);
        await again.stop();
      }
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
      await nut.addUser(h.network, nut.bob);
      const dm = roomId("!dm:example.org");
      await h.core.onGhostInvited(ALICE, dm, matrixUserId(nut.bob.ghost), true);
      assert.equal((await h.tables.portalRows.get(ALICE, nut.bob.id))?.roomId, dm);
      assert.equal(h.matrix.ghosts.get(nut.bob.ghost as never), nut.bob.ghostName);
    });

    it("the ghost namespace is the network's: its ghosts are recognised, other users are not", function () {
      assert.ok(h.core.isOwnUser(nut.bob.ghost));
      for (const other of WITH_INTEROP.filter(
        (n) => n.name !== nut.name && n.backend === nut.backend,
      )) {
        assert.ok(!h.core.isOwnUser(other.bob.ghost), `${other.bob.ghost} is not a ghost here`);
      }
      assert.ok(!h.core.isOwnUser("@bob:example.org"));
    });
  });
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
