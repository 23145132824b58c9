import assert from "node:assert/strict";
import type { RemoteEvent, RemoteMessageId, RemoteUserId } from "../../src/core/network.js";
import {
  isBlockCapable,
  isEditCapable,
  isGroupCapable,
  isReactionCapable,
  isReportCapable,
  isRetractCapable,
  isSafetyNumberCapable,
} from "../../src/core/network.js";
import { LoopbackNetwork, loopbackIdentifier } from "../../src/networks/loopback/index.js";
import { BridgeError } from "../../src/util/errors.js";
import { matrixUserId, type ContactAddress } from "../../src/util/ids.js";

const ALICE = matrixUserId("@alice:example.org");
const text = (body: string) => ({ type: "text" as const, text: { text: body, spans: [] } });

describe("the loopback network", function () {
  let reported: { user: string; event: RemoteEvent }[];
  let network: LoopbackNetwork;
  beforeEach(function () {
    reported = [];
    network = new LoopbackNetwork({
      report: async (user, event) => {
        reported.push({ user, event });
      },
    });
  });

  it("addresses are names at loop, kept as typed, and survive a ghost localpart both ways", function () {
    assert.equal(loopbackIdentifier.parse("alice@loop"), "alice@loop");
    for (const wrong of ["+491701234567", "Alice@loop", "alice@wa.example", "@loop", "alice"]) {
      assert.equal(loopbackIdentifier.parse(wrong), undefined, wrong);
    }
    const address = "bob.b-2@loop" as ContactAddress;
    const localpart = loopbackIdentifier.toLocalpart(address);
    assert.match(localpart, new RegExp(`^${loopbackIdentifier.localpartPattern}$`));
    assert.equal(loopbackIdentifier.fromLocalpart(localpart), address);
    assert.equal(loopbackIdentifier.fromLocalpart("Bob"), undefined);
  });

  it("offers edits, reactions and groups but no retractions, reports or safety numbers", async function () {
    const login = await network.loadLogin(ALICE);
    assert.ok(isEditCapable(login) && isReactionCapable(login) && isGroupCapable(login));
    assert.ok(!isRetractCapable(login));
    assert.ok(!isReportCapable(login));
    assert.ok(!isSafetyNumberCapable(login));
  });

  it("a remote user's first message is a request, later ones are not; a login's own message opens the conversation", async function () {
    const bob = network.remote("bob@loop");
    await bob.send(ALICE, "hi");
    await bob.send(ALICE, "again");
    const carol = network.remote("carol@loop");
    const login = await network.loadLogin(ALICE);
    await login.sendMessage(carol.id, text("hello carol"));
    await carol.send(ALICE, "hello alice");
    assert.deepEqual(
      reported.map((r) => r.event.kind === "message" && [r.event.from, r.event.isRequest]),
      [
        ["bob@loop", true],
        ["bob@loop", false],
        ["carol@loop", false],
      ],
    );
  });

  it("a blocked remote user's messages never reach the core, until unblocked", async function () {
    const bob = network.remote("bob@loop");
    const login = await network.loadLogin(ALICE);
    assert.ok(isBlockCapable(login));
    await login.block(bob.id);
    await bob.send(ALICE, "let me in");
    assert.equal(reported.length, 0);
    await login.unblock(bob.id);
    await bob.send(ALICE, "thanks");
    assert.equal(reported.length, 1);
  });

  it("sending is idempotent per key, and refused for an address nobody has", async function () {
    const bob = network.remote("bob@loop");
    const login = await network.loadLogin(ALICE);
    const first = await login.sendMessage(bob.id, text("once"), undefined, "$event");
    const again = await login.sendMessage(bob.id, text("once"), undefined, "$event");
    assert.equal(again, first);
    assert.equal(network.sent.length, 1);
    await assert.rejects(
      login.sendMessage("nobody@loop" as never, text("hello?")),
      (err: unknown) => err instanceof BridgeError && err.code === "not-reachable",
    );
    assert.deepEqual(await login.resolveAddress("nobody@loop" as ContactAddress), {
      reachable: false,
    });
    assert.deepEqual(await login.resolveAddress("bob@loop" as ContactAddress), {
      reachable: true,
      contact: "bob@loop",
    });
  });

  it("remote users edit, react, read and type through the core's callbacks", async function () {
    const bob = network.remote("bob@loop");
    const id = await bob.send(ALICE, "hi");
    const target = { author: bob.id, id: id as RemoteMessageId };
    await bob.edit(ALICE, id, "hi!");
    await bob.react(ALICE, target, ["👍"]);
    await bob.read(ALICE, target);
    await bob.typing(ALICE, true);
    assert.deepEqual(
      reported.map((r) => r.event.kind),
      ["message", "edit", "reactions", "read", "typing"],
    );
  });

  describe("groups", function () {
    const BOB = matrixUserId("@bob:example.org");
    /** The group events each Matrix user's login received, as `kind version change by`. */
    const groupEvents = (user: string) =>
      reported
        .filter((r) => r.user === user)
        .map(({ event: e }) =>
          e.kind === "group-change"
            ? `change ${e.version} ${e.change} ${e.members.map((m) => m.id).join(",")} by ${e.by}`
            : e.kind === "group-subject"
              ? `subject ${e.version} ${e.subject} by ${e.by}`
              : e.kind === "group-info"
                ? `info ${e.info.version} added by ${e.addedBy ?? "-"}`
                : `${e.kind} ${"from" in e ? e.from : ""}`,
        );

    async function logins() {
      const alice = await network.loadLogin(ALICE);
      const bob = await network.loadLogin(BOB);
      assert.ok(isGroupCapable(alice) && isGroupCapable(bob));
      return { alice, bob };
    }

    it("creating a group tells the other member logins who added them, refuses unknown and unwilling users, and its creator is admin", async function () {
      const { alice } = await logins();
      network.remote("carol@loop");
      network.remote("dave@loop");
      network.refusesGroups.add("dave@loop");
      const created = await alice.createGroup("Trip", [
        "bob@loop",
        "carol@loop",
        "dave@loop",
        "nobody@loop",
      ] as RemoteUserId[]);
      await network.settled();
      assert.deepEqual(
        created.info.members.map((m) => [m.id, m.admin, m.displayName]),
        [
          ["alice@loop", true, "alice@loop"],
          ["bob@loop", false, "bob@loop"],
          ["carol@loop", false, "carol@loop"],
        ],
      );
      assert.deepEqual(created.rejected, [
        { id: "dave@loop", reason: "refused" },
        { id: "nobody@loop", reason: "not-reachable" },
      ]);
      // The creator has the answer; Bob's login is told, with who added him.
      assert.deepEqual(groupEvents(ALICE), []);
      assert.deepEqual(groupEvents(BOB), ["info 1 added by alice@loop"]);
    });

    it("every change moves the version by one and reaches every member login, the removed one's included", async function () {
      const { alice, bob } = await logins();
      network.remote("carol@loop");
      const { info } = await alice.createGroup("Trip", ["bob@loop"] as RemoteUserId[]);
      await alice.addGroupMembers(info.id, ["carol@loop" as RemoteUserId]);
      await alice.setGroupSubject(info.id, "Trip 2");
      await alice.setGroupAdmins(info.id, ["carol@loop" as RemoteUserId], true);
      const after = await alice.removeGroupMembers(info.id, ["bob@loop" as RemoteUserId]);
      await network.settled();
      assert.equal(after.version, 5);
      assert.deepEqual(groupEvents(ALICE), [
        "change 2 added carol@loop by alice@loop",
        "subject 3 Trip 2 by alice@loop",
        "change 4 promoted carol@loop by alice@loop",
        "change 5 removed bob@loop by alice@loop",
      ]);
      assert.deepEqual(groupEvents(BOB), [
        "info 1 added by alice@loop",
        "change 2 added carol@loop by alice@loop",
        "subject 3 Trip 2 by alice@loop",
        "change 4 promoted carol@loop by alice@loop",
        "change 5 removed bob@loop by alice@loop",
      ]);
      // Bob is out: he can neither write nor ask.
      await assert.rejects(
        bob.sendMessage(info.id, text("still here?")),
        (err: unknown) => err instanceof BridgeError && err.code === "group-not-member",
      );
      await assert.rejects(bob.groupInfo(info.id), /not a member/);
    });

    it("only admins change a group; when the last admin leaves, the network promotes a member itself", async function () {
      const { alice, bob } = await logins();
      const { info } = await alice.createGroup("Trip", ["bob@loop"] as RemoteUserId[]);
      for (const call of [
        () => bob.setGroupSubject(info.id, "mine"),
        () => bob.removeGroupMembers(info.id, ["alice@loop" as RemoteUserId]),
        () => bob.setGroupAdmins(info.id, ["bob@loop" as RemoteUserId], true),
      ]) {
        await assert.rejects(
          call(),
          (err: unknown) => err instanceof BridgeError && err.code === "group-not-admin",
        );
      }
      assert.equal(network.groupInfo(info.id).version, 1, "a refused change changes nothing");
      await alice.leaveGroup(info.id);
      await network.settled();
      assert.deepEqual(
        network.groupInfo(info.id).members.map((m) => [m.id, m.admin]),
        [["bob@loop", true]],
      );
      assert.deepEqual(groupEvents(BOB).slice(1), [
        "change 2 left alice@loop by alice@loop",
        "change 3 promoted bob@loop by null",
      ]);
    });

    it("a group is full at the network's limit: the add is refused whole", async function () {
      const { alice } = await logins();
      network.maxGroupSize = 2;
      network.remote("carol@loop");
      const { info } = await alice.createGroup("Pair", ["bob@loop"] as RemoteUserId[]);
      await assert.rejects(
        alice.addGroupMembers(info.id, ["carol@loop" as RemoteUserId]),
        (err: unknown) => err instanceof BridgeError && err.code === "group-full",
      );
      assert.equal(network.groupInfo(info.id).members.length, 2);
    });

    it("a group message reaches every other member login once; the sender's own login gets no echo", async function () {
      const { alice } = await logins();
      const carol = network.remote("carol@loop");
      const { info } = await alice.createGroup("Trip", [
        "bob@loop",
        "carol@loop",
      ] as RemoteUserId[]);
      await alice.sendMessage(info.id, text("hello group"));
      await carol.sendToGroup(info.id, "hi all");
      await network.settled();
      assert.deepEqual(groupEvents(ALICE), ["message carol@loop"]);
      assert.deepEqual(groupEvents(BOB), [
        "info 1 added by alice@loop",
        "message alice@loop",
        "message carol@loop",
      ]);
      await assert.rejects(network.remote("eve@loop").sendToGroup(info.id, "let me in"));
    });

    it("an event the core refused is kept and named by settled(), not lost silently", async function () {
      network = new LoopbackNetwork({
        report: async () => {
          throw new Error("database down");
        },
      });
      const { alice } = await logins();
      await alice.createGroup("Trip", ["bob@loop"] as RemoteUserId[]);
      await assert.rejects(network.settled(), /refused group-info for @bob:example.org/);
      assert.equal(network.undelivered.length, 1);
    });
  });
});
