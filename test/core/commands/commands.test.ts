import assert from "node:assert/strict";
import type { RemoteMessageId } from "../../../src/core/network.js";
import type { RoomId } from "../../../src/util/ids.js";
import { ADMIN, ALICE, MGMT } from "../helpers.js";
import { WITH_INTEROP, createCoreOn, withHooks, type NetHarness } from "../networks.js";

/** A string as a regular expression matching it literally. */
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

for (const nut of WITH_INTEROP) {
  const BOB = nut.bob.typed;
  const BOB_ID = nut.bob.id;
  const GHOST = nut.bob.ghost;
  const SHOWN = literal(nut.bob.shown);

  describe(`core: bot commands with good and bad arguments, on ${nut.label}`, function () {
    let h: NetHarness;
    let arg = "";
    beforeEach(async function () {
      h = await createCoreOn(nut);
      await nut.logIn(h);
      await nut.addUser(h.network, nut.bob);
      arg = `<${h.core.network.identifier.argument}>`;
    });
    afterEach(async function () {
      await h.dispose();
    });

    async function bobWrites(n: number): Promise<void> {
      for (let i = 1; i <= n; i++) {
        await h.network.report(ALICE, {
          kind: "message",
          from: BOB_ID,
          id: `b${i}` as RemoteMessageId,
          sentAt: new Date(1000 * i),
          order: i,
          content: { type: "text", text: { text: `msg ${i}`, spans: [] } },
          isRequest: false,
        });
      }
    }

    it("commands that need a login say so when logged out", async function () {
      await h.say("logout");
      assert.deepEqual(await h.say(`start-chat ${BOB}`), [
        "You are not logged in. Send `login` to start.",
      ]);
      assert.deepEqual(await h.say(`block ${BOB}`), [
        "You are not logged in. Send `login` to start.",
      ]);
    });

    it("help lists the commands the user may use; it takes no arguments", async function () {
      const [list] = await h.say("help");
      for (const name of [
        "login",
        "logout",
        "status",
        "start-chat",
        "resolve-identifier",
        "contacts",
        "name",
        "block",
        "unblock",
        "report",
        "verify",
        "settings",
        "ping",
      ]) {
        assert.match(list ?? "", new RegExp(`\`${name}[ \`]`), `help lists ${name}`);
      }
      assert.match(list ?? "", new RegExp(`\`start-chat ${literal(arg)}\` \\(or \`pm\`\\)`));
      assert.doesNotMatch(list ?? "", /`stats`/, "stats is for admins only");
      assert.match(
        (await h.say("help", ADMIN, "!admin:example.org" as RoomId))[0] ?? "",
        /`stats`/,
      );
      assert.deepEqual(await h.say("help me"), ["Usage: `help`"]);
    });

    it("login starts over with the warning when logged out; it takes no arguments", async function () {
      assert.deepEqual(await h.say("login +491709876543"), ["Usage: `login`"]);
      await h.say("logout");
      assert.match((await h.say("login"))[0] ?? "", nut.flowChoice);
      assert.match((await h.say("status"))[0] ?? "", /login is in progress/);
    });

    it("logout keeps the chats and offers clean-up; a second logout says not logged in", async function () {
      await h.say(`start-chat ${BOB}`);
      assert.deepEqual(await h.say("logout now"), ["Usage: `logout`"]);
      assert.deepEqual(await h.say("clean-up"), [
        "You are logged in and your chats are in use; send `logout` first.",
      ]);
      assert.match(
        (await h.say("logout"))[0] ?? "",
        /^Logged out: .*1 chat\(s\) are kept.*`clean-up`/,
      );
      assert.deepEqual(await h.say("logout"), ["You are not logged in."]);
    });

    it("status tells logged in with the number, or logged out", async function () {
      assert.match(
        (await h.say("status"))[0] ?? "",
        new RegExp(`^Logged in as ${literal(nut.loggedInAs)};`),
      );
      assert.deepEqual(await h.say("status please"), ["Usage: `status`"]);
      await h.say("logout");
      assert.deepEqual(await h.say("status"), ["You are not logged in."]);
    });

    it("start-chat (or pm) opens a portal for a reachable number and refuses anything else", async function () {
      assert.match((await h.say(`start-chat ${BOB}`))[0] ?? "", /^Invited you to a new chat/);
      assert.ok(await h.tables.portalRows.get(ALICE, BOB_ID));
      assert.match((await h.say(`pm ${BOB}`))[0] ?? "", /already have a chat/);
      assert.match((await h.say(`pm ${nut.nobody}`))[0] ?? "", /cannot be reached/);
      assert.deepEqual(await h.say("start-chat"), [`Usage: \`start-chat ${arg}\``]);
      assert.deepEqual(await h.say("start-chat bob"), [`Usage: \`start-chat ${arg}\``]);
      assert.deepEqual(await h.say(`pm ${BOB} ${BOB}`), [`Usage: \`start-chat ${arg}\``]);
    });

    it("resolve-identifier answers reachable with the ghost, or the neutral refusal", async function () {
      assert.match(
        (await h.say(`resolve-identifier ${BOB}`))[0] ?? "",
        new RegExp(`reachable: ${GHOST}`),
      );
      assert.match((await h.say(`resolve-identifier ${nut.nobody}`))[0] ?? "", /cannot be reached/);
      assert.deepEqual(await h.say("resolve-identifier"), [`Usage: \`resolve-identifier ${arg}\``]);
      assert.deepEqual(await h.say("resolve-identifier bob"), [
        `Usage: \`resolve-identifier ${arg}\``,
      ]);
    });

    it("name sets a local name shown next to the number in this user's portal only", async function () {
      await h.say(`start-chat ${BOB}`);
      const room = (await h.tables.portalRows.get(ALICE, BOB_ID))?.roomId as RoomId;
      assert.match((await h.say(`name ${BOB} Uncle Bob`))[0] ?? "", /shown to you as "Uncle Bob"/);
      assert.equal(h.matrix.roomNames.get(`${room} ${GHOST}`), `Uncle Bob · ${nut.bob.ghostName}`);
      assert.equal(h.matrix.ghosts.get(GHOST as never), nut.bob.ghostName, "global name unchanged");
      assert.deepEqual(await h.say(`name ${BOB}`), [`Usage: \`name ${arg} <name>\``]);
      assert.deepEqual(await h.say("name Bob Builder"), [`Usage: \`name ${arg} <name>\``]);
    });

    it("contacts lists chats with their local names, blocks and request states", async function () {
      assert.match((await h.say("contacts"))[0] ?? "", new RegExp(`no ${nut.name} contacts yet`));
      await h.say(`start-chat ${BOB}`);
      await h.say(`name ${BOB} Bob`);
      assert.equal((await h.say("contacts"))[0], `${nut.bob.shown} ("Bob", outgoing pending)`);
      assert.deepEqual(await h.say("contacts all"), ["Usage: `contacts`"]);
    });

    it("block and unblock go to the network and are remembered", async function () {
      assert.match((await h.say(`block ${BOB}`))[0] ?? "", new RegExp(`Blocked ${SHOWN}`));
      await h.network.settled();
      assert.ok(h.network.actions.includes(`block ${BOB_ID}`));
      assert.equal((await h.tables.contacts.get(ALICE, BOB_ID))?.blocked, true);
      assert.match((await h.say(`unblock ${BOB}`))[0] ?? "", /Unblocked/);
      assert.equal((await h.tables.contacts.get(ALICE, BOB_ID))?.blocked, false);
      assert.deepEqual(await h.say("block"), [`Usage: \`block ${arg}\``]);
      assert.deepEqual(await h.say("unblock 12345"), [`Usage: \`unblock ${arg}\``]);
    });

    it("report discloses only the number of latest messages the user chose", async function () {
      await bobWrites(3);
      if (!nut.supports.report) {
        assert.deepEqual(await h.say(`report ${BOB} 2`), [
          "Reporting is not supported by this network connection.",
        ]);
        return;
      }
      assert.match((await h.say(`report ${BOB}`))[0] ?? "", /no messages disclosed/);
      await h.network.settled();
      assert.ok(h.network.actions.includes(`report ${BOB_ID} spam [] false`));
      assert.match((await h.say(`report ${BOB} 2`))[0] ?? "", /disclosing their last 2/);
      await h.network.settled();
      assert.ok(h.network.actions.includes(`report ${BOB_ID} spam [b3,b2] false`));
      assert.deepEqual(await h.say(`report ${BOB} 6`), [`Usage: \`report ${arg} [0-5]\``]);
      assert.deepEqual(await h.say(`report ${BOB} two`), [`Usage: \`report ${arg} [0-5]\``]);
    });

    // The safety number is the fakes' fixed digits, and changing it is their hook.
    withHooks(nut, "fixed safety-number digits")(
      "verify shows the safety number in groups of five; confirm marks verified",
      async function () {
        if (!nut.supports.safetyNumbers) {
          assert.deepEqual(await h.say(`verify ${BOB}`), [
            "Safety numbers is not supported by this network connection.",
          ]);
          return;
        }
        const [shown] = await h.say(`verify ${BOB}`);
        assert.match(
          shown ?? "",
          /Safety number with \+49 170 1234567:\n12345 67890 12345 67890 12345 67890\n/,
        );
        assert.match(shown ?? "", /verify \+491701234567 confirm/);
        assert.match((await h.say(`verify ${BOB} confirm`))[0] ?? "", /marked as verified/);
        assert.ok(h.network.actions.includes(`verified ${BOB_ID}`));
        // The network keeps the mark; `contacts` shows it from there.
        await h.say(`start-chat ${BOB}`);
        assert.match((await h.say("contacts"))[0] ?? "", /\(verified, outgoing pending\)/);
        assert.deepEqual(await h.say(`verify ${BOB} yes`), [`Usage: \`verify ${arg} [confirm]\``]);
      },
    );

    withHooks(nut, "a safety number changed on demand")(
      "verify confirm marks the safety number the user was shown, never a key that changed since",
      async function () {
        if (!nut.supports.safetyNumbers) this.skip();
        assert.match((await h.say(`verify ${BOB} confirm`))[0] ?? "", /First send `verify/);
        await h.say(`verify ${BOB}`);
        // The contact's identity key changes between showing and confirming.
        (h.network as unknown as { safetyDigits: string }).safetyDigits = "9".repeat(60);
        const [refused] = await h.say(`verify ${BOB} confirm`);
        assert.match(refused ?? "", /changed since it was shown/);
        assert.ok(!h.network.actions.includes(`verified ${BOB_ID}`), "nothing was marked");
        await h.say(`verify ${BOB}`);
        assert.match((await h.say(`verify ${BOB} confirm`))[0] ?? "", /marked as verified/);
      },
    );

    it("settings shows and switches read receipts and typing", async function () {
      assert.match((await h.say("settings"))[0] ?? "", /read-receipts: on; typing: on/);
      assert.deepEqual(await h.say("settings typing off"), ["typing is now off."]);
      assert.equal((await h.tables.users.get(ALICE))?.typingNotifications, false);
      assert.deepEqual(await h.say("settings typing maybe"), [
        "Usage: `settings [read-receipts|typing on|off]`",
      ]);
      assert.deepEqual(await h.say("settings colour blue"), [
        "Usage: `settings [read-receipts|typing on|off]`",
      ]);
    });

    it("ping answers with the login state; stats is for admins only", async function () {
      assert.match(
        (await h.say("ping"))[0] ?? "",
        new RegExp(`^Pong\\. Logged in as ${literal(nut.loggedInAs)};`),
      );
      assert.deepEqual(await h.say("ping now"), ["Usage: `ping`"]);
      assert.deepEqual(await h.say("stats"), ["You do not have permission to use `stats`."]);
      const [stats] = await h.say("stats", ADMIN, "!admin:example.org" as RoomId);
      assert.match(stats ?? "", /Users: 1 logged in/);
      assert.deepEqual(await h.say("stats all", ADMIN, "!admin:example.org" as RoomId), [
        "Usage: `stats`",
      ]);
    });

    it("a command in a portal applies to the portal's contact", async function () {
      await bobWrites(1);
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal?.roomId);
      const prefix = h.core.network.commandPrefix;
      await h.core.handlePortalCommand(ALICE, portal, `${prefix} block`);
      await h.network.settled();
      assert.ok(h.network.actions.includes(`block ${BOB_ID}`));
      assert.match(h.matrix.lastNotice(portal.roomId), new RegExp(`Blocked ${SHOWN}`));
      if (!nut.supports.report) return;
      await h.core.handlePortalCommand(ALICE, portal, `${prefix} report 1`);
      await h.network.settled();
      assert.ok(h.network.actions.includes(`report ${BOB_ID} spam [b1] false`));
    });

    it("unknown commands and stray text in the management room point to help", async function () {
      assert.match((await h.say("hello there"))[0] ?? "", /Unknown command `hello`/);
      assert.equal(h.matrix.notices(MGMT).length > 0, true);
    });
  });
}
