import assert from "node:assert/strict";
import { pino } from "pino";
import { BACKENDS } from "../helpers/db.js";
import { ALICE, MGMT, createCore, logIn, restartedCore, type CoreHarness } from "./helpers.js";

// The login flows of the phone-numbered fake (phone and code, country codes, unverified
// usernames, the fake's own journal and states): WhatsApp's own. What holds on every network
// (cancel, an unknown reply, a login the network ended, load failures) is in
// login-networks.test.ts.
for (const backend of BACKENDS) {
  describe(`core: the bot and the login conversation [${backend}]`, function () {
    let h: CoreHarness;
    beforeEach(async function () {
      h = await createCore(undefined, undefined, backend);
    });
    afterEach(async function () {
      await h.dispose();
    });

    it("login shows the security warning before anything else, stating what §19 requires", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      const [warning] = await h.say("login");
      assert.ok(warning !== undefined);
      assert.match(warning, /decrypts them/);
      assert.match(warning, /re-encrypts/);
      assert.match(warning, /gatekeeper sees metadata/);
      assert.match(warning, /contacts see your phone number/i);
      assert.match(warning, /matrix-bridge-example/, "the label shows the provider name");
      assert.match(warning, /block/);
      assert.match(warning, /report/);
      assert.match(warning, /`phone`.*`username`/);
      assert.equal((await h.tables.users.get(ALICE))?.loginState, "warned");
      assert.equal(h.network.actions.length, 0, "nothing reached the network before acceptance");
    });

    it("phone login: number, wrong code with attempts left, right code, logged in", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      assert.match((await h.say("phone"))[0] ?? "", /Send your phone number/);
      assert.notEqual((await h.tables.users.get(ALICE))?.warningAcceptedAt, null);
      assert.match((await h.say("+491709876543"))[0] ?? "", /Send your code/);
      assert.deepEqual(h.network.actions, ["request-code +491709876543"]);
      const [wrong] = await h.say("000000");
      assert.match(wrong ?? "", /wrong; 4 attempts left/);
      assert.match(wrong ?? "", /Send your code/);
      assert.match((await h.say("12"))[0] ?? "", /not a valid code/);
      assert.match((await h.say("123456"))[0] ?? "", /Logged in/);
      const user = await h.tables.users.get(ALICE);
      assert.equal(user?.loginState, "logged-in");
      assert.equal(user?.address, "+491709876543");
      assert.ok(h.core.provisioning.logins.get(ALICE));
      assert.match(
        (await h.say("status"))[0] ?? "",
        /Logged in as \+49 170 9876543 \(verified\); connection: connected/,
      );
    });

    it("the login's address is the field whose role says so, whatever the network calls it", async function () {
      h.network.addressFieldId = "msisdn";
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      await h.say("phone");
      assert.match((await h.say("+4917098765"))[0] ?? "", /Send your code/);
      assert.match((await h.say("123456"))[0] ?? "", /Logged in/);
      assert.equal((await h.tables.users.get(ALICE))?.address, "+4917098765");
    });

    it("a number outside the allowed country codes is refused with the reason, before the network", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      await h.say("phone");
      const [refusal] = await h.say("+12025550123");
      assert.match(refusal ?? "", /European Economic Area/);
      assert.match(refusal ?? "", /\+49/);
      assert.deepEqual(h.network.actions, []);
      assert.equal((await h.tables.users.get(ALICE))?.loginState, "verifying");
    });

    it("the username flow logs in as unverified", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      await h.say("username");
      await h.say("alice");
      const user = await h.tables.users.get(ALICE);
      assert.equal(user?.loginState, "logged-in");
      assert.equal(user?.handle, "alice");
      assert.match((await h.say("status"))[0] ?? "", /as alice \(unverified\)/);
    });

    it("cancel tells the network", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      await h.say("phone");
      assert.deepEqual(await h.say("cancel"), ["Login cancelled."]);
      assert.ok(h.network.actions.includes("cancel-login"));
    });

    it("a login's ups and downs are not logged at info, one per login; the end of a login is", async function () {
      const lines: { msg: string; state?: string }[] = [];
      const log = pino(
        { level: "info" },
        {
          write: (line: string) => lines.push(JSON.parse(line) as { msg: string; state?: string }),
        },
      );
      const logged = await createCore(undefined, log, backend);
      try {
        await logIn(logged);
        for (const code of ["connecting", "connected"] as const) {
          const state = { code, message: code };
          logged.network.loginStates.set(ALICE, state);
          await logged.network.report(ALICE, { kind: "state", state });
        }
        const changes = () => lines.filter((l) => l.msg === "login state changed");
        assert.deepEqual(
          changes(),
          [],
          "a shared connection's reconnect is the connector's to log",
        );
        const out = { code: "logged-out" as const, message: "revoked" };
        logged.network.loginStates.set(ALICE, out);
        await logged.network.report(ALICE, { kind: "state", state: out });
        assert.deepEqual(
          changes().map((l) => l.state),
          ["logged-out"],
        );
      } finally {
        await logged.dispose();
      }
    });

    it("stored logins are loaded again at start-up", async function () {
      await h.core.onBotInvited(ALICE, MGMT);
      await h.say("login");
      await h.say("username");
      await h.say("alice");
      const again = await restartedCore(h);
      assert.ok(again.provisioning.logins.get(ALICE));
    });
  });
}
