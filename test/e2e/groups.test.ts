import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import type { DeviceId } from "../../src/util/ids.js";
import { phoneNumber } from "../../src/util/ids.js";
import { eventually, type E2e, type WhatsAppUser } from "./harness.js";
import { FaultWorld, timeline, waitFor } from "../faults/world.js";
import { GroupBurst, loginAt, portalReceiver, whatsAppReceiver } from "./group-burst.js";
import {
  bodyOfEntry,
  countInRoom,
  createGroup,
  GroupE2e,
  groupSend,
  roomMessages,
} from "./group-world.js";

/**
 * Issue #17's end-to-end proof: two Matrix users of the bridge (alice, bob), two simulated WhatsApp
 * users (wa1 creates the group, wa2) and carol at a second provider domain, in one group. One world
 * for the whole file; the tests run in order and each builds on the group as the one before left
 * it (a member removed, a device added, a new subject), as a conversation would.
 */
describe("groups end to end: two Matrix users, WhatsApp users and a second provider in one group", function () {
  this.timeout(300_000);
  let w: GroupE2e;
  let alice: E2e;
  let bob: E2e;
  let wa1: WhatsAppUser;
  let wa2: WhatsAppUser;
  let group = "";
  let portal = "";
  /** alice's first message: its sender key (distribution id) before the removal. */
  let aliceFirst = "";

  before(async function () {
    w = await GroupE2e.start();
    ({ alice, bob } = w);
    wa1 = await w.whatsappUser("+491701111111");
    wa2 = await w.whatsappUser("+491702222222");
  });

  after(async function () {
    await w?.stop();
  });

  const inPortal = (user: E2e, what: string, match: (e: sdk.MatrixEvent) => boolean) =>
    user.sees(portal, what, match);

  it("a group a WhatsApp user creates with both Matrix users is one portal they share, with ghosts for the others and the second provider's member labelled with its domain", async function () {
    const invitesBefore = [new Set(alice.invites()), new Set(bob.invites())];
    group = await w.createGroup(wa1, "Trip planning", [
      wa2.jid,
      alice.myJid,
      bob.myJid,
      w.carol.jid,
    ]);
    const state = await w.groupState(group);
    assert.equal(state.participants.length, 5, JSON.stringify(state));
    // Added by someone else: a message request (§17.1), accepted by joining.
    const roomA = await alice.newInvite(invitesBefore[0] as Set<string>, "alice's group invite");
    const roomB = await bob.newInvite(invitesBefore[1] as Set<string>, "bob's group invite");
    assert.equal(roomB, roomA, "one portal per group per bridge, shared by its users");
    portal = roomA;
    await alice.client.joinRoom(portal);
    await bob.client.joinRoom(portal);
    const room = await eventually(() => {
      const r = alice.client.getRoom(portal);
      return r?.name === "Trip planning" ? r : undefined;
    }, "the portal named after the subject");
    const members = await eventually(() => {
      const joined = room.getJoinedMembers();
      return joined.length >= 6 ? joined : undefined;
    }, "every member in the portal (5 members and the bot)");
    const ids = members.map((m) => m.userId);
    assert.ok(ids.includes(alice.ghostOf(wa1)), ids.join(", "));
    assert.ok(ids.includes(alice.ghostOf(wa2)), ids.join(", "));
    assert.ok(ids.includes(alice.me) && ids.includes(bob.me), "the Matrix users as themselves");
    const carolGhost = members.find((m) => m.name.includes("other.example"));
    assert.ok(
      carolGhost !== undefined,
      `no member labelled other.example: ${members.map((m) => m.name).join(", ")}`,
    );
    // Names are never shared: the WhatsApp ghosts show their numbers.
    const ghost1 = members.find((m) => m.userId === alice.ghostOf(wa1));
    assert.match(ghost1?.name ?? "", /491701111111|170 1111111|1701111111/);
  });

  it("a message from each of the five members is seen exactly once by every other member", async function () {
    const run = Math.random().toString(36).slice(2, 7);
    const body = (who: string) => `${who} says hi ${run}`;
    await alice.text(portal, body("alice"));
    await bob.text(portal, body("bob"));
    await w.groupSend(wa1, group, body("wa1"));
    await w.groupSend(wa2, group, body("wa2"));
    await w.carol.send(group, body("carol"));
    const everyone = ["alice", "bob", "wa1", "wa2", "carol"];
    // Matrix: one event per message in the shared portal, as each of the two clients sees it.
    for (const user of w.matrixUsers) {
      await eventually(
        () =>
          everyone.every((who) => countInRoom(user, portal, body(who)) >= 1) ? true : undefined,
        `all five messages in ${user.me}'s view of the portal`,
      );
    }
    // WhatsApp side: each member got the four others' messages, and not its own.
    const expect = async (user: WhatsAppUser, self: string) =>
      eventually(async () => {
        for (const who of everyone) {
          if (who === self) continue;
          if ((await w.countAt(user, group, body(who))) < 1) return undefined;
        }
        return true;
      }, `everything at ${self}`).catch(async (err: unknown) => {
        const got = (await w.receivedIn(user, group)).map(bodyOfEntry);
        const failed = await user.received("undecryptable");
        const notices = roomMessages(alice, portal)
          .filter((e) => e.getSender() === alice.bot)
          .map((e) => String(e.getContent()["body"]));
        throw new Error(
          `${String(err)}; ${self} has ${JSON.stringify(got)}; undecryptable: ` +
            `${JSON.stringify(failed)}; the bot said in the portal: ${JSON.stringify(notices)}`,
        );
      });
    await expect(wa1, "wa1");
    await expect(wa2, "wa2");
    await eventually(
      () =>
        everyone
          .filter((x) => x !== "carol")
          .every((who) => w.carol.bodies(group).includes(body(who)))
          ? true
          : undefined,
      "everything at carol (second provider)",
    );
    // A quiet period for late duplicates, then exact counts.
    await new Promise((r) => setTimeout(r, 3000));
    for (const user of w.matrixUsers) {
      for (const who of everyone) {
        assert.equal(
          countInRoom(user, portal, body(who)),
          1,
          `${who}'s message in ${user.me}'s view`,
        );
      }
    }
    for (const [user, self] of [
      [wa1, "wa1"],
      [wa2, "wa2"],
    ] as const) {
      for (const who of everyone) {
        assert.equal(
          await w.countAt(user, group, body(who)),
          who === self ? 0 : 1,
          `${who} at ${self}`,
        );
      }
    }
    for (const who of everyone) {
      const n = w.carol.bodies(group).filter((b) => b === body(who)).length;
      assert.equal(n, who === "carol" ? 0 : 1, `${who} at carol`);
    }
    assert.deepEqual(w.carol.failures, [], "carol decrypted everything");
    // The Matrix users' own messages are their own events, never posted again by a ghost.
    const aliceEvents = roomMessages(alice, portal).filter(
      (e) => e.getContent()["body"] === body("alice"),
    );
    assert.equal(aliceEvents[0]?.getSender(), alice.me);
    const first = w.carol.messages.find((m) => m.body === body("alice"));
    assert.ok(first?.distributionId !== undefined);
    aliceFirst = first.distributionId;
  });

  it("a removed member cannot decrypt the next message while the others read it: the bridge rotated its sender key first", async function () {
    await w.change(wa1, group, "remove", [wa2.jid]);
    await inPortal(
      alice,
      "wa2's ghost leaving the portal",
      (e) =>
        e.getType() === "m.room.member" &&
        e.getStateKey() === alice.ghostOf(wa2) &&
        ["leave", "ban"].includes(String(e.getContent()["membership"])),
    );
    await w.bridgeQueueEmpty();
    const text = "after wa2 was removed";
    await alice.text(portal, text);
    const atCarol = await eventually(
      () => w.carol.messages.find((m) => m.body === text),
      "alice's message at carol",
    );
    await eventually(
      async () => ((await w.countAt(wa1, group, text)) === 1 ? true : undefined),
      "alice's message at wa1",
    );
    await bob.sees(portal, "alice's message in bob's view", (e) => e.getContent()["body"] === text);
    // Rotation (§17.5): a new sender key, distributed to the remaining members with the message.
    assert.notEqual(atCarol.distributionId, aliceFirst, "alice's sender key was rotated");
    assert.ok(
      w.carol.skdms.some(
        (s) => s.originId === atCarol.originId && s.distributionId === atCarol.distributionId,
      ),
      "the new key came in the message's header",
    );
    // wa2 got nothing, and with every key it holds it cannot read the ciphertext the others got.
    assert.equal(await w.countAt(wa2, group, text), 0);
    const captured = w.carol.ciphertexts.get(atCarol.originId);
    assert.ok(captured !== undefined);
    for (const device of await w.devicesOf(wa2)) {
      assert.equal(
        await w.tryDecryptAs(wa2, device, group, captured.sender, captured.ciphertext),
        "NoSenderKeyError",
      );
    }
    // The WhatsApp side rotates too: wa1's next message reaches Matrix and carol.
    await w.groupSend(wa1, group, "wa1 after the removal");
    await inPortal(
      alice,
      "wa1's message after the removal",
      (e) => e.getContent()["body"] === "wa1 after the removal",
    );
    await eventually(
      () => (w.carol.bodies(group).includes("wa1 after the removal") ? true : undefined),
      "at carol",
    );
  });

  it("a device added mid-conversation reads the bridge's next message, and what it sends reaches Matrix", async function () {
    const before = await w.devicesOf(wa1);
    const answer = await wa1.request("POST", `/users/${wa1.digits}/devices`);
    assert.equal(answer.status, 201);
    const added = Number(answer.json["device"]) as DeviceId;
    assert.ok(!before.includes(added));
    // The bridge learns of it by devices-changed (§17.3); once it acked that, it sends.
    await w.bridgeQueueEmpty();
    const undecryptableBefore = (await wa1.received("undecryptable")).length;
    const text = "bob after wa1's new device";
    await bob.text(portal, text);
    await eventually(
      async () => ((await w.countAt(wa1, group, text)) === 1 ? true : undefined),
      "bob's message at wa1",
    );
    const atCarol = await eventually(
      () => w.carol.messages.find((m) => m.body === text),
      "at carol",
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(
      (await wa1.received("undecryptable")).slice(undecryptableBefore),
      [],
      "no device failed",
    );
    // The new device decrypted it itself: it already used that message key.
    const captured = w.carol.ciphertexts.get(atCarol.originId);
    assert.ok(captured !== undefined);
    assert.equal(
      await w.tryDecryptAs(wa1, added, group, captured.sender, captured.ciphertext),
      "DuplicateMessageError",
    );
    // From the new device: the bridge takes its sender key from the header.
    await alice.world.sim.users.sendToGroup(
      phoneNumber(wa1.phone),
      group as never,
      [{ kind: "body", text: "from wa1's new device" }],
      { device: added },
    );
    for (const user of w.matrixUsers) {
      await user.sees(
        portal,
        "the new device's message",
        (e) => e.getContent()["body"] === "from wa1's new device",
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(countInRoom(alice, portal, "from wa1's new device"), 1);
  });

  it("subject and admins change both ways", async function () {
    // WhatsApp -> Matrix: the subject becomes the room name, an admin gets power level 50.
    await w.setSubject(wa1, group, "Trip 2027");
    await eventually(
      () => (alice.client.getRoom(portal)?.name === "Trip 2027" ? true : undefined),
      "the new room name",
    );
    await w.change(wa1, group, "promote", [alice.myJid]);
    await eventually(
      () =>
        alice.client.getRoom(portal)?.getMember(alice.me)?.powerLevel === 50 ? true : undefined,
      "alice at power level 50",
    );
    // Matrix -> WhatsApp: the room name becomes the subject, power level 50 makes an admin.
    await alice.client.setRoomName(portal, "Renamed on Matrix");
    await eventually(
      async () => ((await w.groupState(group)).subject === "Renamed on Matrix" ? true : undefined),
      "the subject at the gatekeeper",
    );
    await eventually(async () => {
      const events = await wa1.received("group-event");
      return events.some(
        (e) => e.data["type"] === "subject-changed" && e.data["by"] === alice.myJid,
      )
        ? true
        : undefined;
    }, "wa1 told of alice's subject change");
    // Power level 50 may raise another member to 50 (not lower an equal one: Matrix's rules).
    const carolGhost = alice.client
      .getRoom(portal)
      ?.getJoinedMembers()
      .find((m) => m.name.includes("other.example"));
    assert.ok(carolGhost !== undefined);
    await alice.client.setPowerLevel(portal, carolGhost.userId, 50);
    await eventually(async () => {
      const p = (await w.groupState(group)).participants.find((x) => x.jid === w.carol.jid);
      return p?.role === "admin" ? true : undefined;
    }, "carol promoted at the gatekeeper");
    // WhatsApp -> Matrix: a demotion lowers the power level again.
    await w.change(wa1, group, "demote", [alice.myJid]);
    await eventually(
      () =>
        (alice.client.getRoom(portal)?.getMember(alice.me)?.powerLevel ?? 0) < 50
          ? true
          : undefined,
      "alice below power level 50",
    );
  });

  it("a group created from Matrix with create-group reaches the WhatsApp users, both ways", async function () {
    const before = new Set(alice.client.getRooms().map((r) => r.roomId));
    // bridgev2's naming and argument order: the numbers first, then the name (spaces allowed).
    const answer = await alice.command(
      `create-group ${wa1.phone} ${wa2.phone} Made on Matrix`,
      /group|usage|error|not/i,
    );
    assert.match(answer, /^Created the group "Made on Matrix"/, answer);
    const created = await eventually(
      () => w.groupWithSubject("Made on Matrix"),
      "the new group at the gatekeeper",
    );
    const state = await w.groupState(created);
    const jids = state.participants.map((p) => p.jid).sort();
    assert.deepEqual(jids, [alice.myJid, wa1.jid, wa2.jid].sort());
    assert.equal(state.participants.find((p) => p.jid === alice.myJid)?.role, "admin");
    const room = await eventually(() => {
      const r = alice.client
        .getRooms()
        .find((x) => !before.has(x.roomId) && x.name === "Made on Matrix");
      return r;
    }, "the new portal in alice's client");
    if (room.getMyMembership() === sdk.KnownMembership.Invite)
      await alice.client.joinRoom(room.roomId);
    await w.groupSend(wa1, created, "hello Matrix-made group");
    await alice.sees(
      room.roomId,
      "wa1's message in the new portal",
      (e) => e.getContent()["body"] === "hello Matrix-made group",
    );
    await alice.text(room.roomId, "hello from the creator");
    for (const user of [wa1, wa2]) {
      await eventually(async () => {
        const got = await w.receivedIn(user, created);
        return got.some((e) => bodyOfEntry(e) === "hello from the creator") ? true : undefined;
      }, `the creator's message at ${user.phone}`);
    }
  });
});

/**
 * The bridge as a real process (test/faults/world.ts), killed with SIGKILL in the middle of a
 * burst of 500 group messages: alice and bob (Matrix) and wa1 and wa2 (WhatsApp) send 125 each,
 * concurrently; the bridge dies after 50 of each, stays down while 25 more of each are sent, and
 * is started again. Every member must get every other member's messages once, in each sender's
 * order; the shared portal must show each of the 500 once.
 */
describe("groups end to end: kill -9 of the bridge in a burst of 500 group messages", function () {
  this.timeout(600_000);
  const PER_SENDER = 125;
  const KILL_AT = 50;
  const RESTART_AT = 75;
  let world: FaultWorld;

  before(async function () {
    world = await FaultWorld.start();
    await world.startBridge();
  });

  after(async function () {
    await world?.stop();
  });

  it("0 lost, 0 duplicated, order kept per sender, at every member", async function () {
    const alice = await loginAt(world, "alice", "+491700000001");
    const bob = await loginAt(world, "bob", "+491700000002");
    const wa1 = world.whatsApp("+491701111111");
    const wa2 = world.whatsApp("+491702222222");
    await wa1.create();
    await wa2.create();
    const invites = [new Set(await alice.me.invites()), new Set(await bob.me.invites())];
    const group = await createGroup(wa1, "Burst", [wa2.jid, alice.jid, bob.jid]);
    const portal = await waitFor("alice's group invite", async () =>
      (await alice.me.invites()).find((r) => !invites[0]?.has(r)),
    );
    await waitFor("bob's group invite", async () =>
      (await bob.me.invites()).includes(portal) ? true : undefined,
    );
    await alice.me.join(portal);
    await bob.me.join(portal);
    const burst = new GroupBurst(
      [
        {
          name: "alice",
          send: (b) => alice.me.send(portal, "m.room.message", { msgtype: "m.text", body: b }),
        },
        {
          name: "bob",
          send: (b) => bob.me.send(portal, "m.room.message", { msgtype: "m.text", body: b }),
        },
        { name: "wa1", send: (b) => groupSend(wa1, group, b) },
        { name: "wa2", send: (b) => groupSend(wa2, group, b) },
      ],
      [
        portalReceiver("portal", alice.me, portal, ["alice", "bob", "wa1", "wa2"]),
        whatsAppReceiver(wa1, group, ["alice", "bob", "wa2"]),
        whatsAppReceiver(wa2, group, ["alice", "bob", "wa1"]),
      ],
      PER_SENDER,
    );
    let downFor = 0;
    let down = 0;
    await burst.send(async (n) => {
      if (n === KILL_AT) {
        await world.killBridge();
        down = Date.now();
      } else if (n === RESTART_AT) {
        await world.startBridge();
        downFor = Date.now() - down;
      }
    });
    // What the gatekeeper accepted per sender: tells a message the bridge never sent from one
    // the gatekeeper did not deliver.
    const accepted = async () => {
      const rows = (await world.sim.gatekeeper.ctx
        .knex("gk_group_messages")
        .where({ group_jid: group, has_group: true })
        .select("sender")
        .count({ n: "*" })
        .groupBy("sender")) as { sender: string; n: number }[];
      return rows.map((r) => `${r.sender}: ${r.n}`).join(", ");
    };
    const tally = await burst.settle(world).catch(async (err: unknown) => {
      process.stdout.write(`      accepted at the gatekeeper: ${await accepted()}\n`);
      for (const user of [wa1, wa2]) {
        const failed = await user.received("undecryptable");
        process.stdout.write(
          `      undecryptable at ${user.phone}: ${JSON.stringify(failed.map((e) => e.data))}\n`,
        );
      }
      throw err;
    });
    process.stdout.write(
      `      bridge killed after ${KILL_AT} messages of each of 4 senders, down ${downFor} ms\n` +
        `      ${GroupBurst.describe(tally)}\n`,
    );
    for (const [receiver, bySender] of Object.entries(tally)) {
      for (const [sender, c] of Object.entries(bySender)) {
        assert.deepEqual(c.missing, [], `${sender} -> ${receiver} lost`);
        assert.deepEqual(c.duplicated, [], `${sender} -> ${receiver} duplicated`);
        assert.equal(c.outOfOrder, 0, `${sender} -> ${receiver} order`);
      }
    }
    const failures = (await timeline(alice.me, portal)).filter(
      (e) =>
        e.content["msgtype"] === "m.notice" &&
        /^Not (delivered|sent)/.test(String(e.content["body"])),
    );
    assert.deepEqual(
      failures.map((e) => e.content["body"]),
      [],
      "failure notices",
    );
  });
});
