import assert from "node:assert/strict";
import type { BareJid } from "../../src/util/ids.js";
import { ALICE, BOB, errorOf, PROVIDER } from "./harness.js";
import { eventually, GK, PHONE } from "./world.js";
import {
  CAROL,
  eventsFor,
  GK2,
  groupOf,
  groupOps as ops,
  makeGroupWorld,
  PHONE2,
  ackGroup,
  type GroupWorld,
} from "./group-world.js";

const UNKNOWN = "491700000009@wa.example" as BareJid;

describe("simulator groups: management (§17.1, §17.2)", function () {
  this.timeout(20_000);
  let w: GroupWorld;
  afterEach(async () => w?.close());

  const create = async (participants: BareJid[], subject = "Trip") =>
    groupOf(await ops.create(w.provider, ALICE, participants, subject));

  it("create makes the creator admin, lists rejected participants and sends `created` with version 1", async () => {
    w = await makeGroupWorld();
    const g = await create([GK, BOB as BareJid, UNKNOWN, CAROL]);
    assert.match(g.jid, /^[a-z0-9-]+@g\.wa\.example$/);
    assert.equal(g.version, 1);
    assert.equal(g.creator, ALICE);
    assert.equal(g.subject, "Trip");
    assert.deepEqual(
      g.participants.map((p) => [p.jid, p.role]),
      [
        [ALICE, "admin"],
        [GK, "member"],
        [BOB, "member"],
      ],
    );
    // Carol is at another provider: only gatekeeper users or her own provider's users add her.
    assert.deepEqual(
      g.rejected.map((r) => [r.jid, r.reason]),
      [
        [UNKNOWN, "not-reachable"],
        [CAROL, "not-reachable"],
      ],
    );
    for (const to of [ALICE, BOB]) {
      const [created] = await eventually(async () => {
        const e = eventsFor(w.provider, to, g.jid);
        return e.length > 0 ? e : undefined;
      });
      assert.equal(created?.type, "created");
      assert.equal(created?.version, 1);
      assert.equal(created?.group?.participants.length, 3);
    }
    const logged = await w.sim.users.received(PHONE, "group-event");
    assert.equal(logged[0]?.data.type, "created");
  });

  it("a WhatsApp user adds provider users of two domains; events reach every provider member with increasing versions", async () => {
    w = await makeGroupWorld();
    const g = await w.sim.users.createGroup(PHONE, "Mixed", [ALICE as BareJid, CAROL]);
    assert.deepEqual(g.rejected, []);
    const added = await w.sim.users.changeGroup(PHONE, g.jid, {
      op: "add",
      participants: [BOB as BareJid, GK2],
    });
    assert.equal(added.version, 2);
    const carolEvents = await eventually(async () => {
      const e = eventsFor(w.other, CAROL, g.jid);
      return e.length >= 2 ? e : undefined;
    });
    assert.deepEqual(
      carolEvents.map((e) => [e.type, e.version]),
      [
        ["created", 1],
        ["participants-added", 2],
      ],
    );
    const bobEvents = await eventually(async () => {
      const e = eventsFor(w.provider, BOB, g.jid);
      return e.length >= 1 ? e : undefined;
    });
    assert.equal(bobEvents[0]?.type, "participants-added");
    // Events are queued deliveries by g.wa.example: acked to that domain, they leave the queue.
    const deliveries = w.provider.received.filter((s) => s.attrs.from === g.jid);
    await ackGroup(w.provider, deliveries);
    await eventually(async () =>
      (await w.sim.gatekeeper.services.queue.depth(PROVIDER.domain)) === 0 ? true : undefined,
    );
  });

  it("info is for members only; an unknown group answers the same not-member", async () => {
    w = await makeGroupWorld();
    const g = await create([GK]);
    assert.equal(groupOf(await ops.info(w.provider, ALICE, g.jid)).jid, g.jid);
    const outsider = errorOf(await ops.info(w.provider, BOB, g.jid));
    const unknown = errorOf(await ops.info(w.provider, BOB, "nosuchgroup@g.wa.example"));
    for (const e of [outsider, unknown]) {
      assert.deepEqual([e.condition, e.type, e.app?.name], ["forbidden", "cancel", "not-member"]);
    }
  });

  it("add, remove, promote, demote and subject need an admin: not-admin for members", async () => {
    w = await makeGroupWorld();
    const g = await create([BOB as BareJid, GK]);
    const attempts = [
      ops.change(w.provider, BOB, g.jid, "add", [GK2]),
      ops.change(w.provider, BOB, g.jid, "remove", [GK]),
      ops.change(w.provider, BOB, g.jid, "promote", [GK]),
      ops.change(w.provider, BOB, g.jid, "demote", [ALICE as BareJid]),
      ops.subject(w.provider, BOB, g.jid, "hijack"),
    ];
    for (const a of attempts) {
      const e = errorOf(await a);
      assert.deepEqual([e.condition, e.app?.name], ["forbidden", "not-admin"]);
    }
    assert.equal(groupOf(await ops.info(w.provider, ALICE, g.jid)).version, 1);
  });

  it("an admin's add, remove, promote, demote and subject each raise the version by one with their event", async () => {
    w = await makeGroupWorld();
    const g = await create([GK]);
    assert.equal(
      groupOf(await ops.change(w.provider, ALICE, g.jid, "add", [BOB as BareJid])).version,
      2,
    );
    assert.equal(
      groupOf(await ops.change(w.provider, ALICE, g.jid, "promote", [BOB as BareJid])).version,
      3,
    );
    assert.equal(
      groupOf(await ops.change(w.provider, ALICE, g.jid, "demote", [BOB as BareJid])).version,
      4,
    );
    const s = groupOf(await ops.subject(w.provider, ALICE, g.jid, "New name"));
    assert.deepEqual([s.version, s.subject], [5, "New name"]);
    const r = groupOf(await ops.change(w.provider, ALICE, g.jid, "remove", [BOB as BareJid]));
    assert.equal(r.version, 6);
    assert.ok(!r.participants.some((p) => p.jid === BOB));
    const bob = await eventually(async () => {
      const e = eventsFor(w.provider, BOB, g.jid);
      return e.length >= 5 ? e : undefined;
    });
    // The removed member hears of its removal too.
    assert.deepEqual(
      bob.map((e) => [e.type, e.version]),
      [
        ["participants-added", 2],
        ["admins-promoted", 3],
        ["admins-demoted", 4],
        ["subject-changed", 5],
        ["participants-removed", 6],
      ],
    );
    assert.equal(bob[3]?.subject, "New name");
    const e = errorOf(await ops.info(w.provider, BOB, g.jid));
    assert.equal(e.app?.name, "not-member");
  });

  it("exceeding max-group-size fails with not-allowed + group-full", async () => {
    w = await makeGroupWorld({ limits: { "max-group-size": 3 } });
    const g = await create([GK, BOB as BareJid]);
    const e = errorOf(await ops.change(w.provider, ALICE, g.jid, "add", [GK2]));
    assert.deepEqual([e.condition, e.type, e.app?.name], ["not-allowed", "cancel", "group-full"]);
    const big = errorOf(await ops.create(w.provider, ALICE, [GK, BOB as BareJid, GK2]));
    assert.equal(big.app?.name, "group-full");
  });

  it("a WhatsApp user who blocked the requester or opted out is rejected with refused / not-reachable", async () => {
    w = await makeGroupWorld();
    await w.sim.users.block(PHONE, ALICE as BareJid);
    await w.sim.users.setOptIn(PHONE2, false);
    const g = await create([GK, GK2]);
    assert.deepEqual(
      g.rejected.map((r) => [r.jid, r.reason]),
      [
        [GK, "refused"],
        [GK2, "not-reachable"],
      ],
    );
  });

  it("adding WhatsApp users without a conversation counts as lookups; over the quota the whole request fails", async () => {
    w = await makeGroupWorld({ limits: { "lookups-per-day-unverified": 1 } });
    const e = errorOf(await ops.create(w.provider, ALICE, [GK, GK2]));
    assert.deepEqual(
      [e.condition, e.app?.name, e.app?.attrs.scope],
      ["resource-constraint", "rate-limited", "lookup"],
    );
    assert.equal((await w.sim.gatekeeper.groupStore.list()).length, 0);
  });

  it("group changes are limited by group-changes-per-hour (scope groups)", async () => {
    w = await makeGroupWorld({ limits: { "group-changes-per-hour": 2 } });
    const g = await create([GK]);
    await ops.subject(w.provider, ALICE, g.jid, "two");
    const e = errorOf(await ops.subject(w.provider, ALICE, g.jid, "three"));
    assert.deepEqual([e.app?.name, e.app?.attrs.scope], ["rate-limited", "groups"]);
  });

  it("the last admin leaving makes the longest-standing member admin, by g.wa.example", async () => {
    w = await makeGroupWorld();
    const g = await create([BOB as BareJid, GK]);
    const left = await ops.leave(w.provider, ALICE, g.jid);
    assert.equal(left.attrs.type, "result");
    const bob = await eventually(async () => {
      const e = eventsFor(w.provider, BOB, g.jid);
      return e.length >= 3 ? e : undefined;
    });
    assert.deepEqual(
      bob.slice(1).map((e) => [e.type, e.by, e.version, e.participants[0]?.jid]),
      [
        ["participant-left", ALICE, 2, ALICE],
        ["admins-promoted", "g.wa.example", 3, BOB],
      ],
    );
    // Alice hears of her own leave, and is no longer a member.
    await eventually(async () =>
      eventsFor(w.provider, ALICE, g.jid).some((e) => e.type === "participant-left")
        ? true
        : undefined,
    );
    assert.equal(errorOf(await ops.leave(w.provider, ALICE, g.jid)).app?.name, "not-member");
  });

  it("a provider that did not negotiate groups gets service-unavailable; its users are not addable", async () => {
    w = await makeGroupWorld({ otherFeatures: [] });
    const e = errorOf(await ops.create(w.other, CAROL, [GK]));
    assert.equal(e.condition, "service-unavailable");
    const g = await w.sim.users.createGroup(PHONE, "x", [CAROL]);
    assert.deepEqual(g.rejected, [{ jid: CAROL, reason: "not-reachable" }]);
  });
});
