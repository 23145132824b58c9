import assert from "node:assert/strict";
import { ReorderBuffer } from "../../../src/interop/provider/reorder.js";
import type { BareJid } from "../../../src/util/ids.js";
import { describeOnBackends } from "../../helpers/db.js";
import { FakeGatekeeper } from "./fake-gatekeeper.js";
import { GatekeeperUsers, type GkUser } from "./peers.js";
import { eventually, ready, startBridge, uniqueBridgeJid, type Bridge } from "./world.js";

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** After the buffer's own setImmediate: immediates run in the order they were queued. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("reorder buffer (P15, E23)", function () {
  let dues = 0;
  let buffer: ReorderBuffer;
  beforeEach(function () {
    dues = 0;
    buffer = new ReorderBuffer({ holdMs: 100, onDue: () => dues++ });
  });
  afterEach(function () {
    buffer.stop();
  });

  it("takes the first seq of a conversation as it comes and the next ones in order", function () {
    assert.equal(buffer.admit("c", 10), "now");
    assert.equal(buffer.admit("c", 11), "now");
    assert.equal(buffer.admit("other", 3), "now", "conversations are independent");
  });

  it("holds a later seq until the gap fills, then calls for it", async function () {
    buffer.admit("c", 2);
    assert.equal(buffer.admit("c", 4), "hold");
    assert.equal(buffer.admit("c", 4), "hold", "offered again while the gap is open");
    assert.equal(buffer.admit("c", 3), "now");
    await turn();
    assert.equal(dues, 1, "the held one is called for");
    assert.equal(buffer.admit("c", 4), "now");
    assert.deepEqual(buffer.heldOf("c"), []);
  });

  it("our own accepted message fills the gap", async function () {
    buffer.admit("c", 2);
    assert.equal(buffer.admit("c", 4), "hold");
    buffer.observe("c", 3);
    await turn();
    assert.equal(dues, 1);
    assert.equal(buffer.admit("c", 4), "now");
  });

  it("after the deadline lets what is held go in seq order; a gap that never fills does not block", async function () {
    buffer.admit("c", 1);
    assert.equal(buffer.admit("c", 5), "hold");
    assert.equal(buffer.admit("c", 4), "hold");
    await pause(150);
    assert.equal(dues, 1, "the deadline calls for the held ones");
    assert.equal(buffer.admit("c", 5), "hold", "4 goes first");
    assert.equal(buffer.admit("c", 4), "now");
    assert.equal(buffer.admit("c", 5), "now");
    assert.equal(buffer.admit("c", 6), "now", "after the gap, order goes on from there");
    assert.equal(buffer.admit("c", 2), "now", "a late one is shown rather than lost");
  });

  it("is bounded: beyond maxHeld the oldest gap is given up at once", async function () {
    const small = new ReorderBuffer({ holdMs: 60_000, maxHeld: 2, onDue: () => dues++ });
    small.admit("c", 1);
    small.admit("c", 3);
    small.admit("c", 4);
    assert.equal(dues, 0);
    small.admit("c", 5);
    await turn();
    assert.equal(dues, 1);
    assert.equal(small.admit("c", 3), "now");
    small.stop();
  });
});

describeOnBackends("provider engine: history in seq order (P15, E23)", (get) => {
  let fake: FakeGatekeeper;
  let users: GatekeeperUsers;
  let alice: BareJid;
  let bob: GkUser;
  let bridge: Bridge | undefined;

  beforeEach(async function () {
    fake = await FakeGatekeeper.start();
    users = await GatekeeperUsers.create(fake);
    alice = uniqueBridgeJid();
    bob = await users.addUser([1]);
  });
  afterEach(async function () {
    await bridge?.engine.halt();
    await fake.stop();
    await users.dispose();
  });

  async function readyBridge(reorderHoldMs: number): Promise<Bridge> {
    bridge = startBridge(fake.service, get().db.knex, { timing: { reorderHoldMs } });
    await ready(bridge);
    await bridge.engine.createUser(alice);
    return bridge;
  }

  const order = (b: Bridge): (number | undefined)[] => b.sink.of("message").map((e) => e.seq);
  const text = (t: string) => [{ kind: "body" as const, text: t }];

  it("hands seq 4 delivered before seq 3 over after it; both are acked", async function () {
    const b = await readyBridge(10_000);
    const first = await users.encryptTo(bob, 1, alice, text("two"), { seq: 2 });
    const third = await users.encryptTo(bob, 1, alice, text("three"), { seq: 3 });
    const fourth = await users.encryptTo(bob, 1, alice, text("four"), { seq: 4 });
    fake.send(first.stanza);
    await eventually(() => order(b).length === 1, "seq 2");
    fake.send(fourth.stanza);
    await eventually(() => fake.acked.includes(fourth.stanzaId), "seq 4 acked while held");
    assert.deepEqual(order(b), [2], "seq 4 waits for seq 3");
    fake.send(third.stanza);
    await eventually(() => order(b).length === 3, "seq 3 and 4");
    assert.deepEqual(order(b), [2, 3, 4]);
  });

  it("a gap that never fills holds the later seqs only until the deadline, then in seq order", async function () {
    const b = await readyBridge(300);
    const first = await users.encryptTo(bob, 1, alice, text("one"), { seq: 1 });
    const fifth = await users.encryptTo(bob, 1, alice, text("five"), { seq: 5 });
    const sixth = await users.encryptTo(bob, 1, alice, text("six"), { seq: 6 });
    fake.send(first.stanza);
    await eventually(() => order(b).length === 1, "seq 1");
    fake.send(sixth.stanza);
    fake.send(fifth.stanza);
    await eventually(() => fake.acked.includes(fifth.stanzaId), "seq 5 acked while held");
    assert.deepEqual(order(b), [1]);
    await eventually(() => order(b).length === 3, "the held ones after the deadline");
    assert.deepEqual(order(b), [1, 5, 6]);
  });
});
