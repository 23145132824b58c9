import assert from "node:assert/strict";
import { Outbox } from "../../../src/interop/provider/outbox.js";
import { ReorderBuffer } from "../../../src/interop/provider/reorder.js";
import type { BareJid } from "../../../src/util/ids.js";
import { describeOnBackends } from "../../helpers/db.js";
import { FakeGatekeeper } from "./fake-gatekeeper.js";
import { GatekeeperUsers, uniquePhoneJid, type GkUser } from "./peers.js";
import { eventually, ready, startBridge, uniqueBridgeJid, type Bridge } from "./world.js";

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** After the buffer's own setImmediate: immediates run in the order they were queued. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("reorder buffer (P15, E23)", function () {
  let dues = 0;
  let dueKeys: string[] = [];
  let buffer: ReorderBuffer;
  beforeEach(function () {
    dues = 0;
    dueKeys = [];
    buffer = new ReorderBuffer({
      holdMs: 100,
      onDue: (conversation) => {
        dues++;
        dueKeys.push(conversation);
      },
    });
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
    await pause(100);
    await eventually(() => dues === 1, "the deadline to call for the held ones", 2000);
    assert.equal(buffer.admit("c", 5), "hold", "4 goes first");
    assert.equal(buffer.admit("c", 4), "now");
    assert.equal(buffer.admit("c", 5), "now");
    assert.equal(buffer.admit("c", 6), "now", "after the gap, order goes on from there");
    assert.equal(buffer.admit("c", 2), "now", "a late one is shown rather than lost");
  });

  it("calls for the conversation whose gap filled, not for every one", async function () {
    buffer.admit("c", 2);
    buffer.admit("d", 7);
    assert.equal(buffer.admit("c", 4), "hold");
    assert.equal(buffer.admit("d", 9), "hold");
    assert.equal(buffer.admit("c", 3), "now");
    await turn();
    assert.deepEqual(dueKeys, ["c"]);
  });

  it("a seq settled above a gap (ours, or discarded) does not close the gap before it", async function () {
    buffer.admit("c", 2);
    buffer.observe("c", 5);
    assert.equal(buffer.admit("c", 4), "hold", "3 is still missing");
    assert.equal(buffer.admit("c", 3), "now");
    await turn();
    assert.equal(dues, 1);
    assert.equal(buffer.admit("c", 4), "now");
    assert.equal(buffer.admit("c", 6), "now", "5 is settled: 6 does not wait for it");
  });

  it("forgets a conversation idle for idleMs with nothing held, keeps one that holds", function () {
    let now = 0;
    const clocked = new ReorderBuffer({
      holdMs: 60_000,
      idleMs: 1000,
      now: () => now,
      onDue: () => undefined,
    });
    clocked.admit("idle", 1);
    clocked.admit("holding", 1);
    clocked.admit("holding", 3);
    now = 1500;
    clocked.admit("new", 1);
    assert.equal(clocked.size, 2, "the idle one is dropped");
    assert.deepEqual(clocked.heldOf("holding"), [3]);
    clocked.stop();
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

  it("a release offers the held ones of its conversation without reading inbound_pending", async function () {
    const b = await readyBridge(10_000);
    const second = await users.encryptTo(bob, 1, alice, text("two"), { seq: 2 });
    const third = await users.encryptTo(bob, 1, alice, text("three"), { seq: 3 });
    const fourth = await users.encryptTo(bob, 1, alice, text("four"), { seq: 4 });
    fake.send(second.stanza);
    await eventually(() => order(b).length === 1, "seq 2");
    let scans = 0;
    const allPending = b.engine.inbox.allPending.bind(b.engine.inbox);
    b.engine.inbox.allPending = () => {
      scans++;
      return allPending();
    };
    fake.send(fourth.stanza);
    await eventually(() => fake.acked.includes(fourth.stanzaId), "seq 4 acked while held");
    fake.send(third.stanza);
    await eventually(() => order(b).length === 3, "seq 3 and 4");
    assert.deepEqual(order(b), [2, 3, 4]);
    assert.equal(scans, 0, "no whole-table read per release");
  });

  it("a discarded envelope's seq does not make the next message wait the deadline", async function () {
    const b = await readyBridge(10_000);
    const first = await users.encryptTo(bob, 1, alice, text("one"), { seq: 1 });
    const misbound = await users.encryptTo(bob, 1, alice, text("not for alice"), {
      seq: 2,
      envelopeTo: uniquePhoneJid(),
    });
    const third = await users.encryptTo(bob, 1, alice, text("three"), { seq: 3 });
    fake.send(first.stanza);
    await eventually(() => order(b).length === 1, "seq 1");
    fake.send(misbound.stanza);
    await eventually(() => fake.acked.includes(misbound.stanzaId), "the discarded one acked");
    fake.send(third.stanza);
    // Well inside the 10 s deadline: seq 3 goes at once, the discarded seq 2 settled its place.
    await eventually(() => order(b).length === 2, "seq 3", 3000);
    assert.deepEqual(order(b), [1, 3]);
  });

  it("after a restart hands deliveries held 6-then-5 over as 5, 6", async function () {
    const b = await readyBridge(10_000);
    const first = await users.encryptTo(bob, 1, alice, text("one"), { seq: 1 });
    const fifth = await users.encryptTo(bob, 1, alice, text("five"), { seq: 5 });
    const sixth = await users.encryptTo(bob, 1, alice, text("six"), { seq: 6 });
    fake.send(first.stanza);
    await eventually(() => order(b).length === 1, "seq 1");
    fake.send(sixth.stanza);
    await eventually(() => fake.acked.includes(sixth.stanzaId), "seq 6 acked while held");
    fake.send(fifth.stanza);
    await eventually(() => fake.acked.includes(fifth.stanzaId), "seq 5 acked while held");
    assert.deepEqual(order(b), [1]);
    await b.engine.halt();
    const again = startBridge(fake.service, get().db.knex, { timing: { reorderHoldMs: 10_000 } });
    bridge = again;
    await ready(again);
    await eventually(() => order(again).length === 2, "the held ones after the restart", 5000);
    assert.deepEqual(order(again), [5, 6]);
  });

  it("after a restart hands a delivery sent right after hello over behind the held ones", async function () {
    const b = await readyBridge(10_000);
    const first = await users.encryptTo(bob, 1, alice, text("one"), { seq: 1 });
    const fifth = await users.encryptTo(bob, 1, alice, text("five"), { seq: 5 });
    const sixth = await users.encryptTo(bob, 1, alice, text("six"), { seq: 6 });
    const seventh = await users.encryptTo(bob, 1, alice, text("seven"), { seq: 7 });
    fake.send(first.stanza);
    await eventually(() => order(b).length === 1, "seq 1");
    fake.send(sixth.stanza);
    fake.send(fifth.stanza);
    await eventually(
      () => fake.acked.includes(fifth.stanzaId) && fake.acked.includes(sixth.stanzaId),
      "seq 5 and 6 acked while held",
    );
    await b.engine.halt();
    // The gatekeeper's queue goes out right behind its hello answer (§15.5): seq 7 is read while
    // the bridge still does its work after hello (slow here: many rows to retransmit, say),
    // before it replays what it held.
    const afterHello = Object.getOwnPropertyDescriptor(Outbox.prototype, "afterHello")!;
    Outbox.prototype.afterHello = async function (this: Outbox): Promise<void> {
      fake.send(seventh.stanza);
      await pause(300);
      return (afterHello.value as () => Promise<void>).call(this);
    };
    let again: Bridge;
    try {
      again = startBridge(fake.service, get().db.knex, { timing: { reorderHoldMs: 10_000 } });
      bridge = again;
      await ready(again);
      await eventually(() => fake.acked.includes(seventh.stanzaId), "seq 7 handled");
    } finally {
      Object.defineProperty(Outbox.prototype, "afterHello", afterHello);
    }
    await eventually(() => order(again).length === 3, "5, 6 and 7 after the restart", 5000);
    assert.deepEqual(order(again), [5, 6, 7]);
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
