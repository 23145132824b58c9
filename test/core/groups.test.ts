import assert from "node:assert/strict";
import type { OpenGroupPortal } from "../../src/core/groups.js";
import type { GroupMember, RemoteMessageId, RemoteUserId } from "../../src/core/network.js";
import { GroupPortalsTable } from "../../src/db/groups.js";
import {
  matrixUserId,
  roomId,
  type EventId,
  type MatrixUserId,
  type RemoteGroupId,
  type RoomId,
} from "../../src/util/ids.js";
import { HeldRequestError } from "../../src/core/rate-limits.js";
import { ALICE, MGMT, testConfig } from "./helpers.js";
import { WITH_INTEROP, createCoreOn, literal, withHooks, type NetHarness } from "./networks.js";

const BOB = matrixUserId("@bob:example.org");
const BOB_MGMT = roomId("!bobmgmt:example.org");

function text(body: string) {
  return { type: "text" as const, text: { text: body, spans: [] } };
}

let counter = 0;
function groupMessage(group: RemoteGroupId, from: RemoteUserId, body: string, id?: string) {
  counter += 1;
  return {
    kind: "message" as const,
    group,
    from,
    id: (id ?? `g-${counter}`) as RemoteMessageId,
    sentAt: new Date(1_700_000_000_000 + counter),
    order: counter,
    content: text(body),
    isRequest: false,
  };
}

const member = (id: RemoteUserId, admin = false, displayName: string = id): GroupMember => ({
  id,
  admin,
  displayName,
});

for (const nut of WITH_INTEROP) {
  /** A member at the network, an admin of the test's group. */
  const wa = nut.contact(1);
  const WA_ID = wa.id;
  const WA_GHOST = matrixUserId(wa.ghost);
  const dave = nut.contact(2);
  const DAVE_ID = dave.id;
  const DAVE_GHOST = matrixUserId(dave.ghost);
  /** On interop, a member at another provider: no phone number, shown with the connector's label. */
  const carol = nut.outsider;
  const CAROL_ID = carol.id;
  const CAROL_GHOST = matrixUserId(carol.ghost);

  describe(`core: group portals, on ${nut.label}`, function () {
    let h: NetHarness;
    let group: RemoteGroupId;
    /** The network ids of ALICE's and BOB's logins. */
    let aliceId: RemoteUserId;
    let bobId: RemoteUserId;

    beforeEach(async function () {
      h = await createCoreOn(nut);
      aliceId = await nut.logInAs(h, ALICE, MGMT);
      bobId = await nut.logInAs(h, BOB, BOB_MGMT);
      await nut.addUser(h.network, wa);
      if (nut.outsider.typed === nut.outsider.id) await nut.addUser(h.network, carol);
      group = await h.network.newGroup("Trip", [
        member(aliceId, true),
        member(bobId),
        member(WA_ID, true),
        member(CAROL_ID, false, carol.displayName),
      ]);
    });
    afterEach(async function () {
      try {
        // The network's own reports (echoes of changes) must all have been handled.
        await h.network.settled();
      } finally {
        await h.dispose();
      }
    });

    async function reportInfo(user: MatrixUserId, addedBy?: RemoteUserId) {
      await h.network.report(user, {
        kind: "group-info",
        group,
        info: h.network.groupInfo(group),
        ...(addedBy === undefined ? {} : { addedBy }),
      });
    }

    async function portal(): Promise<OpenGroupPortal> {
      const row = await h.tables.groups.byRemote(group);
      assert.ok(row?.roomId, "the group has a portal room");
      return { ...row, roomId: row.roomId };
    }

    const contentIn = (room: RoomId) =>
      h.matrix.events.filter((e) => e.room === room && e.kind === "content");

    it("one room for the group, shared by both local members; a message both logins report is posted once", async function () {
      await reportInfo(ALICE);
      await reportInfo(BOB);
      const { roomId: room } = await portal();
      assert.equal(h.matrix.calls.filter((c) => c.startsWith("create-group")).length, 1);
      assert.equal(h.matrix.rooms.get(room)?.name, "Trip");
      assert.ok(h.matrix.calls.includes(`invite ${room} ${ALICE} by ${h.matrix.botUserId}`));
      assert.ok(h.matrix.calls.includes(`invite ${room} ${BOB} by ${h.matrix.botUserId}`));
      assert.ok(h.matrix.calls.includes(`join ${room} ${WA_GHOST}`));
      // The member at another provider (interop) is a ghost named by the connector's label,
      // without a number; a member with an address is named as in a direct chat.
      assert.ok(h.matrix.calls.includes(`join ${room} ${CAROL_GHOST}`));
      assert.equal(h.matrix.ghosts.get(CAROL_GHOST), carol.ghostName);
      // Admins have 50 (the network admin's ghost and Alice), the bot 100, Bob nothing.
      assert.deepEqual(h.matrix.powerLevels.get(room), {
        [ALICE]: 50,
        [WA_GHOST]: 50,
        [h.matrix.botUserId]: 100,
      });

      const message = groupMessage(group, WA_ID, "hello both");
      await Promise.all([h.network.report(ALICE, message), h.network.report(BOB, message)]);
      const posted = contentIn(room);
      assert.deepEqual(
        posted.map((e) => [e.sender, e.text]),
        [[WA_GHOST, "hello both"]],
      );
      // A later redelivery through either login changes nothing either.
      await h.network.report(BOB, message);
      assert.equal(contentIn(room).length, 1);
    });

    it("a group message both logins report as their first hand-over is still posted once", async function () {
      await reportInfo(ALICE);
      await reportInfo(BOB);
      const { roomId: room } = await portal();
      // Each login's own receiver saw it first; only the core's look-up knows the other did.
      const message = {
        ...groupMessage(group, WA_ID, "new to both"),
        firstHandOver: true as const,
      };
      await Promise.all([h.network.report(ALICE, message), h.network.report(BOB, message)]);
      assert.deepEqual(
        contentIn(room).map((e) => e.text),
        ["new to both"],
      );
    });

    /** Alice's message to the group as the network has it. */
    async function sendAsAlice(open: OpenGroupPortal) {
      await h.core.router.fromMatrix.message(
        ALICE,
        open,
        "$alice-1" as EventId,
        text("from alice"),
      );
      await h.network.settled();
      const sent = h.network.sent.at(-1);
      assert.equal(sent?.from, ALICE);
      assert.equal(sent?.to, group);
      assert.ok(sent);
      return sent;
    }

    it("a local user's message is sent through their own login and never posted again", async function () {
      await reportInfo(ALICE);
      await reportInfo(BOB);
      const open = await portal();
      const sent = await sendAsAlice(open);
      // Bob's login receives Alice's message from the network: it is in the room already.
      await h.network.report(BOB, groupMessage(group, aliceId, "from alice", sent.id));
      assert.deepEqual(contentIn(open.roomId), []);
      // A network member's reply to it names Alice's network id as author.
      await h.network.report(BOB, {
        ...groupMessage(group, WA_ID, "reply"),
        replyTo: { author: aliceId, id: sent.id },
      });
      assert.equal(contentIn(open.roomId)[0]?.replyTo, "$alice-1");
    });

    withHooks(nut, "a local user's message the bridge never sent, reported on demand")(
      "a local user's message the bridge has no mapping for is not posted either",
      async function () {
        await reportInfo(ALICE);
        await reportInfo(BOB);
        const open = await portal();
        await sendAsAlice(open);
        // A redelivery after a lost mapping.
        await h.network.report(BOB, groupMessage(group, aliceId, "unmapped"));
        assert.deepEqual(contentIn(open.roomId), []);
      },
    );

    it("a message either way reads one member row, not the group's whole member list (issue #17)", async function () {
      await reportInfo(ALICE);
      const open = await portal();
      // The core has a table object of its own: its class is counted.
      const proto = GroupPortalsTable.prototype;
      const whole = proto.members;
      let wholeReads = 0;
      proto.members = function (this: GroupPortalsTable, portalId: number) {
        wholeReads += 1;
        return whole.call(this, portalId);
      };
      try {
        await h.core.router.fromMatrix.message(ALICE, open, "$per-1" as EventId, text("out"));
        await h.network.report(ALICE, groupMessage(group, CAROL_ID, "in"));
      } finally {
        proto.members = whole;
      }
      assert.equal(h.network.sent.at(-1)?.to, group);
      assert.deepEqual(
        contentIn(open.roomId).map((e) => [e.sender, e.text]),
        [[CAROL_GHOST, "in"]],
      );
      assert.equal(wholeReads, 0, "per-message work must not grow with the group's size");
    });

    /** The test's group, made again without Bob. */
    async function groupWithoutBob() {
      group = await h.network.newGroup("Trip", [
        member(aliceId, true),
        member(WA_ID, true),
        member(CAROL_ID, false, carol.displayName),
      ]);
    }

    it("a user without a login, or not a member, is told so and nothing is sent", async function () {
      await groupWithoutBob();
      await reportInfo(ALICE);
      const open = await portal();
      const before = h.network.sent.length;
      const eve = matrixUserId("@eve:example.org");
      await h.core.router.fromMatrix.message(eve, open, "$eve-1" as EventId, text("hi"));
      assert.match(h.matrix.lastNotice(open.roomId), /not logged in/i);
      // Bob has a login but is no member of the group.
      await h.core.router.fromMatrix.message(BOB, open, "$bob-1" as EventId, text("hi"));
      assert.match(h.matrix.lastNotice(open.roomId), /not a member of this group/);
      await h.network.settled();
      assert.equal(h.network.sent.length, before);
    });

    withHooks(
      nut,
      "stale and repeated versions, a change by nobody and a snapshot after a gap on demand",
    )(
      "changes apply in version order: stale ones are ignored, group-info reconciles",
      async function () {
        await reportInfo(ALICE);
        const { roomId: room } = await portal();
        await h.network.report(ALICE, {
          kind: "group-change",
          group,
          version: 3,
          by: WA_ID,
          change: "added",
          members: [member(DAVE_ID)],
        });
        assert.ok(h.matrix.calls.includes(`join ${room} ${DAVE_GHOST}`));
        // Version 2 arrives late: older than the room's 3, so Carol stays.
        await h.network.report(ALICE, {
          kind: "group-change",
          group,
          version: 2,
          by: WA_ID,
          change: "removed",
          members: [member(CAROL_ID)],
        });
        assert.ok(!h.matrix.calls.includes(`leave ${room} ${CAROL_GHOST}`));
        await h.network.report(ALICE, {
          kind: "group-subject",
          group,
          version: 4,
          by: WA_ID,
          subject: "Trip 2",
        });
        assert.equal(h.matrix.rooms.get(room)?.name, "Trip 2");
        await h.network.report(ALICE, {
          kind: "group-subject",
          group,
          version: 4,
          by: WA_ID,
          subject: "Repeated",
        });
        assert.equal(h.matrix.rooms.get(room)?.name, "Trip 2");
        await h.network.report(ALICE, {
          kind: "group-change",
          group,
          version: 5,
          by: null,
          change: "demoted",
          members: [member(WA_ID)],
        });
        assert.equal(h.matrix.powerLevels.get(room)?.[WA_GHOST], undefined);
        // A snapshot after a gap: Carol is gone, the subject is the network's.
        h.network.groups.get(group)!.members = h.network.groups
          .get(group)!
          .members.filter((m) => m.id !== CAROL_ID);
        h.network.groups.get(group)!.version = 7;
        h.network.groups.get(group)!.subject = "Trip 3";
        await reportInfo(ALICE);
        assert.ok(h.matrix.calls.includes(`leave ${room} ${CAROL_GHOST}`));
        assert.equal(h.matrix.rooms.get(room)?.name, "Trip 3");
      },
    );

    it("a network member's changes reach the room in turn: an added member, a new subject, a demoted admin", async function () {
      await reportInfo(ALICE);
      const { roomId: room } = await portal();
      const version = h.network.groups.get(group)!.version;
      await nut.addUser(h.network, dave);
      await h.network.report(ALICE, {
        kind: "group-change",
        group,
        version: version + 1,
        by: WA_ID,
        change: "added",
        members: [member(DAVE_ID)],
      });
      assert.ok(h.matrix.calls.includes(`join ${room} ${DAVE_GHOST}`));
      await h.network.report(ALICE, {
        kind: "group-subject",
        group,
        version: version + 2,
        by: WA_ID,
        subject: "Trip 2",
      });
      assert.equal(h.matrix.rooms.get(room)?.name, "Trip 2");
      assert.equal(h.matrix.powerLevels.get(room)?.[ALICE], 50);
      await h.network.report(ALICE, {
        kind: "group-change",
        group,
        version: version + 3,
        by: WA_ID,
        change: "demoted",
        members: [member(aliceId)],
      });
      assert.equal(h.matrix.powerLevels.get(room)?.[ALICE], undefined);
      assert.equal(h.matrix.powerLevels.get(room)?.[WA_GHOST], 50);
    });

    it("membership both ways: inviting and kicking a ghost add and remove at the network; a removal there kicks the user", async function () {
      await reportInfo(ALICE);
      await reportInfo(BOB);
      const open = await portal();
      await nut.addUser(h.network, dave);
      await h.core.router.groups.onGhostInvited(ALICE, open, DAVE_GHOST);
      await h.network.settled();
      assert.ok(h.network.groups.get(group)!.members.some((m) => m.id === DAVE_ID));
      assert.ok(h.matrix.calls.includes(`join ${open.roomId} ${DAVE_GHOST}`));
      await h.core.router.groups.onGhostKicked(ALICE, await portal(), CAROL_GHOST);
      await h.network.settled();
      assert.ok(!h.network.groups.get(group)!.members.some((m) => m.id === CAROL_ID));
      // The network reports the removal Alice made: already applied, so nothing happens twice.
      await h.network.settled();
      const version = h.network.groups.get(group)!.version;
      const calls = h.matrix.calls.length;
      await h.network.report(ALICE, {
        kind: "group-change",
        group,
        version,
        by: aliceId,
        change: "removed",
        members: [member(CAROL_ID)],
      });
      assert.equal(h.matrix.calls.length, calls);
      // A network admin removes Bob: he is taken out of the room.
      const g = h.network.groups.get(group)!;
      g.members = g.members.filter((m) => m.id !== bobId);
      g.version = version + 1;
      await h.network.report(ALICE, {
        kind: "group-change",
        group,
        version: version + 1,
        by: WA_ID,
        change: "removed",
        members: [member(bobId)],
      });
      assert.ok(h.matrix.calls.includes(`kick ${open.roomId} ${BOB} by ${h.matrix.botUserId}`));
      assert.equal(await h.tables.groups.user(open.id, BOB), undefined);
      // Alice leaving the room leaves the group.
      await h.core.router.groups.onUserMembership(ALICE, open, "leave");
      await h.network.settled();
      assert.ok(h.network.actions.includes(`leave ${group}`));
    });

    it("logout keeps the user's group portals; clean-up takes the user out of them, and the room stays the other members'", async function () {
      await reportInfo(ALICE);
      await reportInfo(BOB);
      const open = await portal();
      const [loggedOut] = await h.say("logout");
      assert.match(loggedOut ?? "", /Your 1 chat\(s\) are kept/);
      assert.ok(await h.tables.groups.user(open.id, ALICE), "kept until the clean-up");
      assert.deepEqual(await h.say("clean-up"), [
        `Left 1 chat(s) and removed them from your ${nut.name} space.`,
      ]);
      assert.ok(h.matrix.calls.includes(`kick ${open.roomId} ${ALICE} by ${h.matrix.botUserId}`));
      assert.equal(await h.tables.groups.user(open.id, ALICE), undefined);
      assert.ok(await h.tables.groups.user(open.id, BOB), "Bob stays in the group's room");
      await h.network.settled();
      assert.ok(!h.network.actions.includes(`leave ${group}`), "no leave at the network");
      // The kick's leave event coming back from the homeserver changes nothing either.
      await h.core.router.groups.onUserMembership(ALICE, open, "leave");
      await h.network.settled();
      assert.ok(!h.network.actions.includes(`leave ${group}`));
    });

    it("a change the network refuses is undone in the room with a notice saying why", async function () {
      await reportInfo(ALICE);
      await reportInfo(BOB);
      const open = await portal();
      // Bob is no admin: renaming is refused and the old name comes back.
      await h.core.router.groups.onRenamed(BOB, open, "Bob's name");
      assert.equal(h.matrix.rooms.get(open.roomId)?.name, "Trip");
      assert.match(
        h.matrix.lastNotice(open.roomId),
        /Not changed at the network \(renaming the group\): Only the group's admins can do that\. The change was undone here\./,
      );
      // Nor may he make Carol an admin: her power level goes back.
      await h.core.router.groups.onPowerLevels(
        BOB,
        open,
        { users: { [CAROL_GHOST]: 50, [WA_GHOST]: 50 }, usersDefault: 0 },
        { users: { [WA_GHOST]: 50 }, usersDefault: 0 },
      );
      assert.equal(h.matrix.powerLevels.get(open.roomId)?.[CAROL_GHOST], undefined);
      assert.match(h.matrix.lastNotice(open.roomId), /making an admin/);
      // An admin's invite the network refuses: the ghost is taken out again.
      const unfill = nut.fillGroup(h.network, group);
      await nut.addUser(h.network, dave);
      await h.core.router.groups.onGhostInvited(ALICE, open, DAVE_GHOST);
      assert.ok(
        h.matrix.calls.includes(`kick ${open.roomId} ${DAVE_GHOST} by ${h.matrix.botUserId}`),
      );
      assert.match(h.matrix.lastNotice(open.roomId), /The group is full/);
      // Alice (an admin) may rename.
      unfill();
      await h.core.router.groups.onRenamed(ALICE, open, "Alice's name");
      await h.network.settled();
      assert.equal(h.network.groups.get(group)?.subject, "Alice's name");
    });

    it("added by someone else: the user is invited as a request; joining accepts, rejecting leaves the group", async function () {
      await reportInfo(ALICE, WA_ID);
      const open = await portal();
      assert.match(
        h.matrix.lastNotice(open.roomId),
        new RegExp(`${literal(wa.shown)}.* added you to this group`),
      );
      assert.equal((await h.tables.groups.user(open.id, ALICE))?.requestState, "incoming-pending");
      // No read receipts while it is a request.
      await h.network.report(ALICE, groupMessage(group, WA_ID, "welcome", "w-1"));
      const welcome = contentIn(open.roomId)[0];
      assert.ok(welcome);
      await h.core.router.fromMatrix.read(ALICE, open, welcome.eventId);
      await h.network.settled();
      assert.ok(!h.network.actions.some((a) => a.startsWith("read")));
      await h.core.router.groups.onUserMembership(ALICE, open, "join");
      assert.equal((await h.tables.groups.user(open.id, ALICE))?.requestState, "accepted");
      await h.core.router.fromMatrix.read(ALICE, open, welcome.eventId);
      await h.network.settled();
      assert.ok(h.network.actions.includes(`read ${group} w-1`));

      // Bob is added too and rejects the invite: he leaves the group at the network.
      await reportInfo(BOB, WA_ID);
      await h.core.router.groups.onUserMembership(BOB, open, "leave");
      await h.network.settled();
      assert.ok(h.network.actions.includes(`leave ${group}`));
      assert.ok(!h.network.groups.get(group)!.members.some((m) => m.id === bobId));
    });

    /** A core that takes one message request an hour, and groups "One" and "Two" WA added ALICE to. */
    async function limitedToOne() {
      await h.dispose();
      h = await createCoreOn(nut, testConfig({ limits: { message_requests_per_hour: 1 } }));
      aliceId = await nut.logInAs(h, ALICE, MGMT);
      await nut.addUser(h.network, wa);
      const addedBy = (g: typeof group) =>
        h.network.report(ALICE, {
          kind: "group-info",
          group: g,
          info: h.network.groupInfo(g),
          addedBy: WA_ID,
        });
      const first = await h.network.newGroup("One", [member(aliceId), member(WA_ID, true)]);
      const second = await h.network.newGroup("Two", [member(aliceId), member(WA_ID, true)]);
      return { addedBy, first, second };
    }

    it("adds by others count against the hourly message-request limit: over it the add is held, not lost, and the user told", async function () {
      const { addedBy, first, second } = await limitedToOne();
      await addedBy(first);
      // The same add again (a redelivery) is no second request.
      await addedBy(first);
      await assert.rejects(addedBy(second), HeldRequestError);
      assert.equal((await h.tables.groups.byRemote(second))?.roomId ?? null, null, "no room yet");
      assert.ok(!h.matrix.calls.some((c) => c.startsWith("create-group") && c.includes("Two")));
      assert.match(h.matrix.lastNotice(MGMT), /held, not lost/);
      // A group made by a local user is no request: not limited.
      const own = await h.network.newGroup("Own", [member(aliceId, true), member(WA_ID)]);
      await h.network.report(ALICE, {
        kind: "group-info",
        group: own,
        info: h.network.groupInfo(own),
        addedBy: aliceId,
      });
      assert.ok((await h.tables.groups.byRemote(own))?.roomId);
    });

    withHooks(nut, "a held message's error reaches the connector, which keeps it in its inbox")(
      "a held group's first message does not bring the user in past the limit either",
      async function () {
        const { addedBy, first, second } = await limitedToOne();
        await addedBy(first);
        await assert.rejects(addedBy(second), HeldRequestError);
        await assert.rejects(
          h.network.report(ALICE, groupMessage(second, WA_ID, "are you there?", "t-1")),
          HeldRequestError,
        );
        assert.equal((await h.tables.groups.byRemote(second))?.roomId ?? null, null, "still none");
      },
    );

    it("added by a network member while another local user reported it first: still a request", async function () {
      await groupWithoutBob();
      const g = h.network.groups.get(group)!;
      await reportInfo(ALICE);
      const open = await portal();
      // Alice's login reports that WA added Bob before Bob's own login says anything.
      await h.network.report(ALICE, {
        kind: "group-change",
        group,
        version: g.version + 1,
        by: WA_ID,
        change: "added",
        members: [member(bobId)],
      });
      assert.equal((await h.tables.groups.user(open.id, BOB))?.requestState, "incoming-pending");
      assert.match(h.matrix.lastNotice(open.roomId), /added you to this group/);
    });

    it("a local user invited without a known adder becomes a request when their own login says so", async function () {
      // Alice's info creates the room and invites Bob (who added him is not known to her login).
      await reportInfo(ALICE);
      const open = await portal();
      assert.equal((await h.tables.groups.user(open.id, BOB))?.requestState, "none");
      await reportInfo(BOB, WA_ID);
      assert.equal((await h.tables.groups.user(open.id, BOB))?.requestState, "incoming-pending");
      assert.match(h.matrix.lastNotice(open.roomId), /added you to this group/);
    });

    /** The homeserver fails the next join of `ghost` once (a 5xx), as a real one may. */
    function failJoinOnce(ghost: MatrixUserId) {
      const join = h.matrix.join.bind(h.matrix);
      let failed = false;
      h.matrix.join = async (as: MatrixUserId, room: RoomId) => {
        if (as === ghost && !failed) {
          failed = true;
          throw new Error("M_UNKNOWN: 502 Bad Gateway");
        }
        await join(as, room);
      };
    }

    withHooks(nut, "the failed hand-over's error reaches the connector's retry, not the test")(
      "a change whose join failed is applied again when redelivered, not dropped as stale",
      async function () {
        await reportInfo(ALICE);
        const { roomId: room } = await portal();
        const added = {
          kind: "group-change" as const,
          group,
          version: 3,
          by: WA_ID,
          change: "added" as const,
          members: [member(DAVE_ID)],
        };
        failJoinOnce(DAVE_GHOST);
        await assert.rejects(h.network.report(ALICE, added), /502/);
        assert.ok(!h.matrix.calls.includes(`join ${room} ${DAVE_GHOST}`));
        await h.network.report(ALICE, added);
        assert.ok(h.matrix.calls.includes(`join ${room} ${DAVE_GHOST}`));
      },
    );

    it("a new group's room whose ghost join failed brings the ghost in when the info is redelivered", async function () {
      failJoinOnce(WA_GHOST);
      await assert.rejects(reportInfo(ALICE), /502/);
      const { roomId: room } = await portal();
      assert.ok(!h.matrix.calls.includes(`join ${room} ${WA_GHOST}`));
      await reportInfo(ALICE);
      assert.ok(h.matrix.calls.includes(`join ${room} ${WA_GHOST}`));
      assert.ok(h.matrix.calls.includes(`join ${room} ${CAROL_GHOST}`));
    });

    it("a power-levels change acts only on the levels it changed: raising the bot demotes no admin", async function () {
      await reportInfo(ALICE);
      const open = await portal();
      // A room whose levels never showed the network admin (as a user's room made a group may):
      // Alice raises only the bot. WA stays an admin at the network.
      const before = { users: { [ALICE]: 100 }, usersDefault: 0 };
      const after = { users: { [ALICE]: 100, [h.matrix.botUserId]: 100 }, usersDefault: 0 };
      await h.core.router.groups.onPowerLevels(ALICE, open, after, before);
      await h.network.settled();
      assert.ok(!h.network.actions.some((a) => a.includes("demote")), h.network.actions.join("\n"));
      assert.equal(h.network.groups.get(group)?.members.find((m) => m.id === WA_ID)?.admin, true);
      // A users_default raised to 50 does make the (non-admin) ghosts admins: it changed their level.
      await h.core.router.groups.onPowerLevels(ALICE, open, { ...after, usersDefault: 50 }, after);
      await h.network.settled();
      assert.equal(
        h.network.groups.get(group)?.members.find((m) => m.id === CAROL_ID)?.admin,
        true,
      );
    });

    it("create-group makes the group at the network and its room, naming the numbers not added", async function () {
      await nut.addUser(h.network, dave);
      await nut.refuseGroups(h.network, dave);
      const replies = await h.say(`create-group ${wa.typed} ${dave.typed} Weekend trip`);
      assert.match(replies[0] ?? "", /Created the group "Weekend trip"/);
      assert.match(replies[0] ?? "", new RegExp(`Not added: ${literal(dave.shown)}`));
      await h.network.settled();
      const created = [...h.network.groups.entries()].find(([, g]) => g.subject === "Weekend trip");
      assert.ok(created);
      const row = await h.tables.groups.byRemote(created[0]);
      assert.ok(row?.roomId);
      assert.equal(h.matrix.rooms.get(row.roomId)?.name, "Weekend trip");
      assert.ok(h.matrix.calls.includes(`invite ${row.roomId} ${ALICE} by ${h.matrix.botUserId}`));
      assert.match(
        h.matrix.lastNotice(row.roomId),
        new RegExp(`Could not add ${literal(dave.shown)}`),
      );
      // The creator is the group's admin in the room.
      assert.equal(h.matrix.powerLevels.get(row.roomId)?.[ALICE], 50);
      assert.match((await h.say("create-group Weekend"))[0] ?? "", /^Usage: `create-group/);
    });

    it("a ghost invited into a room of the user's offers a group; create-group there makes the room the group's", async function () {
      const room = roomId("!alices-room:example.org");
      const prefix = h.core.network.commandPrefix;
      await h.core.onGhostInvited(ALICE, room, WA_GHOST, false);
      assert.match(
        h.matrix.lastNotice(room),
        new RegExp(`To make it a group with ${literal(wa.shown)}`),
      );
      h.matrix.members.set(room, [ALICE, WA_GHOST, h.matrix.botUserId]);
      await h.core.createGroupHere(ALICE, room, `${prefix} create-group`);
      assert.match(
        h.matrix.lastNotice(room),
        new RegExp(`^Usage: \`${literal(prefix)} create-group <group name>\``),
      );
      await h.core.createGroupHere(ALICE, room, `${prefix} create-group Book club`);
      assert.match(h.matrix.lastNotice(room), /This room is now the group "Book club"/);
      const row = await h.tables.groups.byRoom(room);
      assert.ok(row);
      await h.network.settled();
      const created = h.network.groups.get(row.remoteId);
      assert.equal(created?.subject, "Book club");
      assert.deepEqual(
        created?.members.map((m) => m.id),
        [aliceId, WA_ID],
      );
      // The room is a group portal now: Alice's messages go to the group.
      await h.core.router.fromMatrix.message(ALICE, row, "$here-1" as EventId, text("first"));
      await h.network.settled();
      assert.equal(h.network.sent.at(-1)?.to, row.remoteId);
      // Twice is refused: the room is the group's already.
      await h.core.createGroupHere(ALICE, room, `${prefix} create-group Again`);
      assert.match(h.matrix.lastNotice(room), /a group's room already/);
    });

    it("reactions, edits and deletions of group messages use the group's mapping", async function () {
      await reportInfo(ALICE);
      await reportInfo(BOB);
      const open = await portal();
      await h.network.report(ALICE, groupMessage(group, WA_ID, "original", "m-1"));
      const original = contentIn(open.roomId)[0];
      assert.ok(original);
      const edit = {
        kind: "edit" as const,
        group,
        from: WA_ID,
        target: { author: WA_ID, id: "m-1" as RemoteMessageId },
        content: text("edited"),
        order: 99,
      };
      await h.network.report(ALICE, edit);
      assert.equal(contentIn(open.roomId).at(-1)?.edits, original.eventId);
      await h.core.router.fromMatrix.reaction(
        ALICE,
        open,
        "$r-1" as EventId,
        original.eventId,
        "👍",
      );
      await h.network.settled();
      assert.ok(h.network.actions.includes(`reactions ${group} m-1 [👍]`));
      // Bob may not delete Alice's message: only its sender's login can.
      if (!nut.supports.retract) return;
      await h.core.router.fromMatrix.message(ALICE, open, "$a-2" as EventId, text("mine"));
      await h.core.router.fromMatrix.redaction(BOB, open, "$a-2" as EventId);
      await h.network.settled();
      assert.ok(!h.network.actions.some((a) => a.startsWith("retract")));
      await h.core.router.fromMatrix.redaction(ALICE, open, "$a-2" as EventId);
      await h.network.settled();
      assert.ok(h.network.actions.some((a) => a.startsWith(`retract ${group}`)));
    });
  });
}
