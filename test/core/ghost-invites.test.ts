import assert from "node:assert/strict";
import type { RemoteMessageId } from "../../src/core/network.js";
import { eventId, matrixUserId, roomId, type MatrixUserId } from "../../src/util/ids.js";
import { ALICE, MGMT, STRANGER } from "./helpers.js";
import { WITH_INTEROP, createCoreOn, literal, type NetHarness } from "./networks.js";

const DM = roomId("!alices-dm:example.org");

for (const nut of WITH_INTEROP) {
  const { bob, carol } = nut;
  const BOB_ID = bob.id;
  const GHOST = matrixUserId(bob.ghost);
  const logIn = (h: NetHarness) => nut.logIn(h);

  describe(`core: inviting a ghost to a room starts or links that chat (as mautrix does), on ${nut.label}`, function () {
    let h: NetHarness;
    beforeEach(async function () {
      h = await createCoreOn(nut);
    });
    afterEach(async function () {
      await h.dispose();
    });

    const invite = (user: MatrixUserId = ALICE, isDirect = true, room = DM) =>
      h.core.onGhostInvited(user, room, GHOST, isDirect);
    const ghostSaid = (room = DM): string[] =>
      h.matrix.events.filter((e) => e.room === room && e.sender === GHOST).map((e) => e.text);
    const ghostLeft = (room = DM): boolean => h.matrix.calls.includes(`leave ${room} ${GHOST}`);

    it("a reachable address: the ghost joins, brings the bot, and the room is the chat both ways", async function () {
      await logIn(h);
      await nut.addUser(h.network, bob);
      await invite();
      assert.ok(h.matrix.calls.includes(`join ${DM} ${GHOST}`));
      assert.ok(h.matrix.calls.includes(`join ${DM} ${h.matrix.botUserId}`));
      assert.equal(ghostLeft(), false);
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.equal(portal?.roomId, DM);
      assert.ok(portal);
      await h.core.router.fromMatrix.message(ALICE, portal, eventId("$hi"), {
        type: "text",
        text: { text: "hi bob", spans: [] },
      });
      await h.network.settled();
      assert.equal(h.network.sent[0]?.to, BOB_ID);
      await h.network.report(ALICE, {
        kind: "message",
        from: BOB_ID,
        id: "bob-1" as RemoteMessageId,
        sentAt: new Date(),
        order: 1,
        content: { type: "text", text: { text: "hi alice", spans: [] } },
        isRequest: false,
      });
      assert.deepEqual(ghostSaid(), ["hi alice"]);
    });

    it("an unreachable address: the ghost says so in the room and leaves", async function () {
      await logIn(h);
      await invite();
      assert.equal(ghostSaid().length, 1);
      assert.match(ghostSaid()[0] ?? "", new RegExp(`${literal(bob.shown)} cannot be reached`));
      assert.ok(ghostLeft());
      assert.equal(await h.tables.portalRows.get(ALICE, BOB_ID), undefined);
    });

    it("not logged in, not permitted or not a direct chat: the ghost says why and leaves", async function () {
      await invite();
      assert.match(ghostSaid()[0] ?? "", /not logged in/);
      assert.ok(ghostLeft());
      const other = roomId("!strangers:elsewhere.example");
      await invite(STRANGER, true, other);
      assert.match(ghostSaid(other)[0] ?? "", /does not serve your account/);
      assert.ok(ghostLeft(other));
      await logIn(h);
      await nut.addUser(h.network, bob);
      const group = roomId("!group:example.org");
      await invite(ALICE, false, group);
      // A room of several people is a group's counterpart: the bot, brought in by the ghost,
      // offers to make it one (bridgev2's create-group); the ghost stays for that.
      assert.match(
        h.matrix.lastNotice(group),
        new RegExp(
          `not a direct chat.*\`${literal(h.core.network.commandPrefix)} create-group <group name>\``,
          "s",
        ),
      );
      assert.equal(ghostLeft(group), false);
      assert.equal(await h.tables.portalRows.get(ALICE, BOB_ID), undefined);
    });

    it("a chat that already has its room: the ghost points there and leaves", async function () {
      await logIn(h);
      await nut.addUser(h.network, bob);
      await h.say(`start-chat ${bob.typed}`);
      const existing = (await h.tables.portalRows.get(ALICE, BOB_ID))?.roomId;
      assert.ok(existing);
      await invite();
      assert.match(ghostSaid()[0] ?? "", new RegExp(`already have a chat .*${existing}`));
      assert.ok(ghostLeft());
      assert.equal((await h.tables.portalRows.get(ALICE, BOB_ID))?.roomId, existing);
    });

    it("a room the bridge already uses (another chat, the management room): refused, nothing rerouted", async function () {
      await logIn(h);
      await nut.addUser(h.network, bob);
      await nut.addUser(h.network, carol);
      await h.say(`start-chat ${carol.typed}`);
      const carols = (await h.tables.portalRows.get(ALICE, carol.id))?.roomId;
      assert.ok(carols);
      for (const room of [carols, MGMT]) {
        await invite(ALICE, true, room);
        assert.match(ghostSaid(room)[0] ?? "", /already used by the bridge/);
        assert.ok(ghostLeft(room));
        assert.equal(
          (await h.tables.portalRows.byRoom(room))?.contact ?? undefined,
          room === MGMT ? undefined : carol.id,
        );
      }
      assert.equal((await h.tables.portalRows.get(ALICE, BOB_ID))?.roomId ?? null, null);
    });
  });
}
