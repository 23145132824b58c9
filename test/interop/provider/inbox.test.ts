import assert from "node:assert/strict";
import { openDatabase } from "../../../src/db/database.js";
import { randomUUID } from "node:crypto";
import { SqlRunner, runnerStats, type Tx } from "../../../src/db/sql.js";
import type { InboundKey } from "../../../src/interop/crypto/types.js";
import { encodeEnvelope } from "../../../src/interop/codec/envelope.js";
import type { StoredEvent } from "../../../src/interop/provider/types.js";
import {
  encodeDevicesChanged,
  encodePreKeysLow,
} from "../../../src/interop/codec/key-notifications.js";
import { encodeReceived, encodeRequestAccepted } from "../../../src/interop/codec/delivery.js";
import { buildDelivery } from "../../../src/interop/codec/message-builders.js";
import { parseXml, xml, type XmlElement } from "../../../src/interop/codec/xml.js";
import {
  messageId,
  type BareJid,
  type DeviceId,
  type MessageId,
  type StanzaId,
} from "../../../src/util/ids.js";
import { describeOnBackends } from "../../helpers/db.js";
import { BRIDGE_DOMAIN, FakeGatekeeper, newStanzaId } from "./fake-gatekeeper.js";
import { GatekeeperUsers, type Delivery, type GkUser } from "./peers.js";
import {
  EventSink,
  eventually,
  ready,
  startBridge,
  uniqueBridgeJid,
  type Bridge,
} from "./world.js";
import { watchRunner, watchedTx } from "../../helpers/sql-trace.js";

const body = (text: string) => [{ kind: "body" as const, text }];

/** The same delivery under another stanza-id, as a second gatekeeper record would carry it. */
function withStanzaId(stanza: XmlElement, id: StanzaId): XmlElement {
  const copy = parseXml(stanza.toString());
  for (const child of copy.children) {
    if (typeof child !== "string" && child.name === "stanza-id") child.attrs.id = id;
  }
  return copy;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Makes the first decrypt of `sender`'s messages to `local` wait (before the crypto layer sees it)
 * until `release` is called; `started` counts the decrypts of that sender that began.
 */
async function holdDecrypts(
  b: Bridge,
  local: BareJid,
  sender: BareJid,
): Promise<{ started: () => number; release: () => void }> {
  const [own] = await b.crypto.localDevices(local);
  assert.ok(own !== undefined, "the local user has a device");
  const { sessions } = await b.crypto.device(local, own);
  const decrypt = sessions.decrypt.bind(sessions);
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started = 0;
  sessions.decrypt = async <T>(
    inbound: InboundKey,
    onPlaintext: (plaintext: Uint8Array, trx: Tx) => Promise<T>,
  ): Promise<T> => {
    if (inbound.senderJid === sender && ++started === 1) await released;
    return decrypt(inbound, onPlaintext);
  };
  return { started: () => started, release };
}

describeOnBackends("provider engine: receiving", (get) => {
  let fake: FakeGatekeeper;
  let users: GatekeeperUsers;
  const bridges: Bridge[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let alice: BareJid;
  let bob: GkUser;

  async function readyBridge(sink?: EventSink, knex = get().db.knex): Promise<Bridge> {
    const b = startBridge(fake.service, knex, sink === undefined ? {} : { sink });
    bridges.push(b);
    await ready(b);
    await b.engine.createUser(alice);
    return b;
  }

  const receipts = (originId: string): XmlElement[] =>
    fake
      .messages()
      .filter((m) => m.msg.payload.kind === "receipt")
      .filter(
        (m) =>
          m.msg.payload.kind === "receipt" && m.msg.payload.receipts.some((r) => r.id === originId),
      )
      .map((m) => m.stanza);

  const messagesFor = (b: Bridge, originId: string) =>
    b.sink.of("message").filter((e) => e.originId === originId);

  /** The first hand-over's completion (after the core took the event) fails; the count of fails. */
  function failCompletionOnce(b: Bridge, message: string): () => number {
    const { inbox } = b.engine;
    const complete = inbox.completePending.bind(inbox);
    let failures = 0;
    inbox.completePending = async (tx, stanzaId) => {
      if (failures === 0) {
        failures++;
        throw Object.assign(new Error(message), { code: "EINJECTED" });
      }
      return complete(tx, stanzaId);
    };
    return () => failures;
  }

  beforeEach(async function () {
    fake = await FakeGatekeeper.start();
    users = await GatekeeperUsers.create(fake);
    alice = uniqueBridgeJid();
    bob = await users.addUser([1]);
  });

  afterEach(async function () {
    await Promise.all(bridges.splice(0).map((b) => b.engine.halt()));
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await fake.stop();
    await users.dispose();
  });

  it("decrypts a message, hands it over once, acks it after the hand-over and sends one <received>", async function () {
    const b = await readyBridge();
    const delivery = await users.encryptTo(bob, 1, alice, body("hello alice"), { seq: 41 });
    fake.send(delivery.stanza);
    await eventually(() => fake.acked.includes(delivery.stanzaId), "the ack");
    const [event] = messagesFor(b, delivery.originId);
    assert.ok(event !== undefined, "handed over");
    assert.deepEqual(event.envelope.content, body("hello alice"));
    assert.equal(event.from, bob.jid);
    assert.equal(event.local, alice);
    assert.equal(event.seq, 41, "the gatekeeper's seq orders history");
    await eventually(() => receipts(delivery.originId).length === 1, "the receipt");
    const [receipt] = receipts(delivery.originId);
    assert.equal(receipt?.attrs.to, bob.jid);
    assert.equal(receipt?.attrs.from, `${alice}/1`);

    const ackCount = fake.acked.length;
    fake.send(delivery.stanza);
    fake.send(withStanzaId(delivery.stanza, newStanzaId()));
    await eventually(() => fake.acked.length >= ackCount + 2, "duplicates acked too");
    await pause(100);
    assert.equal(messagesFor(b, delivery.originId).length, 1, "no second hand-over");
    assert.equal(receipts(delivery.originId).length, 1, "no second receipt");
  });

  it("a new 1:1 message is recorded without a look-up before its inserts, a redelivery still found", async function () {
    const b = await readyBridge();
    let lookups = 0;
    const { inbox } = b.engine;
    const seen = inbox.seen.bind(inbox);
    const decrypted = inbox.decrypted.bind(inbox);
    inbox.seen = (...args) => {
      lookups++;
      return seen(...args);
    };
    inbox.decrypted = (...args) => {
      lookups++;
      return decrypted(...args);
    };
    const delivery = await users.encryptTo(bob, 1, alice, body("no look-up"));
    fake.send(delivery.stanza);
    await eventually(() => fake.acked.includes(delivery.stanzaId), "acked after the hand-over");
    assert.equal(lookups, 0, "the inserts of the decrypt transaction are the checks (#15)");
    const acks = fake.acked.length;
    fake.send(delivery.stanza);
    await eventually(() => fake.acked.length > acks, "the redelivery acked again");
    await pause(100);
    assert.equal(messagesFor(b, delivery.originId).length, 1, "no second hand-over");
    assert.equal(receipts(delivery.originId).length, 1, "no second receipt");
  });

  it("acks nothing while the core fails, and hands the redelivery over exactly once", async function () {
    const sink = new EventSink();
    const b = await readyBridge(sink);
    sink.mode = "fail";
    const delivery = await users.encryptTo(bob, 1, alice, body("are you there?"));
    fake.send(delivery.stanza);
    await eventually(
      async () =>
        (await get()
          .db.knex("inbox")
          .whereNotNull("pending_since")
          .where({ stanza_id: delivery.stanzaId })
          .first()) !== undefined,
      "the committed event",
    );
    await pause(150);
    assert.equal(fake.acked.includes(delivery.stanzaId), false, "not acked before the hand-over");
    sink.mode = "ok";
    fake.send(delivery.stanza);
    await eventually(() => fake.acked.includes(delivery.stanzaId), "acked after the hand-over");
    assert.equal(messagesFor(b, delivery.originId).length, 1);
  });

  it("a conversation whose hand-over hangs does not hold back another conversation", async function () {
    const carol = await users.addUser([1]);
    const sink = new EventSink();
    const deliver = sink.handler;
    // Bob's messages never reach Matrix (a stuck room, say); everything else does.
    (sink as { handler: EventSink["handler"] }).handler = (event) =>
      event.kind === "message" && event.from === bob.jid
        ? new Promise<void>(() => undefined)
        : deliver(event);
    const b = await readyBridge(sink);
    const stuck = await users.encryptTo(bob, 1, alice, body("stuck"));
    fake.send(stuck.stanza);
    const flowing = await users.encryptTo(carol, 1, alice, body("flowing"));
    fake.send(flowing.stanza);
    await eventually(() => fake.acked.includes(flowing.stanzaId), "carol's message acked");
    assert.equal(messagesFor(b, flowing.originId).length, 1, "carol's message handed over");
    assert.equal(fake.acked.includes(stuck.stanzaId), false, "bob's stays unacked");
  });

  it("a message whose decrypt is slow holds back only its own conversation: another conversation's is decrypted, handed over and acked meanwhile", async function () {
    const carol = await users.addUser([1]);
    const b = await readyBridge();
    const bobs = await holdDecrypts(b, alice, bob.jid);
    try {
      const slow = await users.encryptTo(bob, 1, alice, body("slow"));
      fake.send(slow.stanza);
      await eventually(() => bobs.started() === 1, "bob's decrypt begun");
      const fast = await users.encryptTo(carol, 1, alice, body("fast"));
      fake.send(fast.stanza);
      await eventually(() => fake.acked.includes(fast.stanzaId), "carol's message acked");
      assert.equal(messagesFor(b, fast.originId).length, 1, "carol's message handed over");
      assert.equal(fake.acked.includes(slow.stanzaId), false, "bob's not acked before its commit");
      assert.equal(messagesFor(b, slow.originId).length, 0);
      bobs.release();
      await eventually(() => fake.acked.includes(slow.stanzaId), "bob's message acked");
      assert.equal(messagesFor(b, slow.originId).length, 1, "bob's message handed over once");
    } finally {
      bobs.release();
    }
  });

  it("a conversation's messages are decrypted and handed over in their order while another conversation's go past them", async function () {
    // No seq: the reorder buffer lets everything through as it comes, so the order seen is the
    // order the receiver processed the conversation's deliveries in.
    const carol = await users.addUser([1]);
    const b = await readyBridge();
    const bobs = await holdDecrypts(b, alice, bob.jid);
    try {
      const fromBob: Delivery[] = [];
      for (const text of ["one", "two", "three"]) {
        const delivery = await users.encryptTo(bob, 1, alice, body(text));
        fromBob.push(delivery);
        fake.send(delivery.stanza);
      }
      await eventually(() => bobs.started() >= 1, "bob's first decrypt begun");
      const fromCarol = await users.encryptTo(carol, 1, alice, body("meanwhile"));
      fake.send(fromCarol.stanza);
      await eventually(() => fake.acked.includes(fromCarol.stanzaId), "carol's message acked");
      assert.equal(bobs.started(), 1, "bob's later messages wait for the first");
      assert.equal(b.sink.of("message").filter((e) => e.from === bob.jid).length, 0);
      bobs.release();
      await eventually(
        () => fromBob.every((d) => fake.acked.includes(d.stanzaId)),
        "bob's messages acked",
      );
      assert.deepEqual(
        b.sink
          .of("message")
          .filter((e) => e.from === bob.jid)
          .map((e) => e.originId),
        fromBob.map((d) => d.originId),
        "handed over in the order they came",
      );
    } finally {
      bobs.release();
    }
  });

  it("redeliveries of messages held behind a seq gap do not starve the bridge: the gap's timer still fires and all are handed over in order", async function () {
    // After a restart the gatekeeper resends every unacked delivery, many times while the bridge
    // is slow to ack (seen in the kill -9 fault test). Each redelivery of a held message used to
    // chain another hand-over that re-checked every older held one without ever leaving the
    // microtask queue, so no timer ran: not the hold timer that releases the gap, not the ack
    // timer that stops the resends. Delivery stopped in both directions.
    this.timeout(90_000);
    const sink = new EventSink();
    const b = await readyBridge(sink);
    const count = 400;
    const first = await users.encryptTo(bob, 1, alice, body("m1"), { seq: 1 });
    const later = [];
    for (let seq = 3; seq <= count; seq++) {
      later.push(await users.encryptTo(bob, 1, alice, body(`m${seq}`), { seq }));
    }
    fake.send(first.stanza);
    await eventually(() => messagesFor(b, first.originId).length === 1, "the first message");
    // How long the event loop went without a turn, counted in CPU time: a chain of microtasks
    // that never yields burns it all along, while a loaded machine that does not schedule this
    // process for a while (a CI runner) burns none. The wall-clock lag failed so (2013 ms and
    // 1210 ms, 2 of 11 runs under load) where the CPU time between turns stays near 100 ms.
    let stall = 0;
    let cpu = process.cpuUsage();
    const probe = setInterval(() => {
      const used = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      stall = Math.max(stall, (used.user + used.system) / 1000);
    }, 20);
    const ours = new Set([first, ...later].map((d) => d.originId));
    // Distinct, in the order of first hand-over. A hand-over whose completion failed after the
    // core took the event hands it over again, and the core keeps one by its message mapping: the
    // duplicate once seen in CI came so, from a pool exhausted by deadlocked ack statements
    // (fixed since). What this test holds is that every message comes, in seq order, and the
    // event loop keeps running.
    const seen = () => [
      ...new Set(
        b.sink
          .of("message")
          .map((e) => e.originId)
          .filter((id) => ours.has(id)),
      ),
    ];
    try {
      // Seq 2 never comes: the rest is held for the gap, and redelivered again and again.
      for (let round = 0; round < 6; round++) for (const d of later) fake.send(d.stanza);
      await eventually(
        () => seen().length === count - 1,
        "every later message once the gap's timer fired",
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: ${seen().length} of ${count - 1} seen`);
      });
    } finally {
      clearInterval(probe);
    }
    assert.deepEqual(
      seen(),
      [first, ...later].map((d) => d.originId),
      "each, in seq order",
    );
    assert.ok(stall < 1000, `the event loop stalled for ${Math.round(stall)} ms of CPU time`);
  });

  it("a hand-over whose completion lost the database connection completes in place: the event is handed over once", async function () {
    const sink = new EventSink();
    const b = await readyBridge(sink);
    const message = await users.encryptTo(bob, 1, alice, body("once"));
    // The statement that ends the event's pending state fails once, as on a cut connection.
    let failed = false;
    const restore = watchRunner(SqlRunner.of(get().db.knex), "connection", (text) => {
      if (failed || !text.startsWith("update inbox set local_jid = null")) return;
      failed = true;
      return Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    });
    try {
      fake.send(message.stanza);
      await eventually(() => fake.acked.includes(message.stanzaId), "the message acked");
    } finally {
      restore();
    }
    assert.ok(failed, "the completion failed once");
    assert.equal(messagesFor(b, message.originId).length, 1, "handed over once");
  });

  it("a delivery waiting to retry a lost database connection is not processed after the engine halted", async function () {
    const b = await readyBridge();
    const message = await users.encryptTo(bob, 1, alice, body("after the halt?"));
    // The decrypt transaction loses its connection once; its retry waits with backoff.
    let failed = false;
    const restore = watchRunner(SqlRunner.of(get().db.knex), "transaction", (text) => {
      // The statement that writes the pending event (the record with it, since 0021).
      if (failed || !/pending_since/.test(text)) return;
      failed = true;
      return Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    });
    try {
      fake.send(message.stanza);
      await eventually(() => failed, "the decrypt transaction failed");
    } finally {
      restore();
    }
    // A crash now: what the delivery left must stay as it is, for the next run to take.
    await b.engine.halt();
    await pause(600);
    const stored = await get().db.knex("inbox").where({ stanza_id: message.stanzaId }).first();
    assert.equal(stored, undefined, "nothing recorded after the halt");
  });

  it("a message whose hand-over failed is handed over before the next one of its conversation", async function () {
    const sink = new EventSink();
    const b = await readyBridge(sink);
    sink.mode = "fail";
    const first = await users.encryptTo(bob, 1, alice, body("first"));
    fake.send(first.stanza);
    await eventually(
      async () =>
        (await get()
          .db.knex("inbox")
          .whereNotNull("pending_since")
          .where({ stanza_id: first.stanzaId })
          .first()) !== undefined,
      "the first message committed",
    );
    await pause(50);
    sink.mode = "ok";
    const second = await users.encryptTo(bob, 1, alice, body("second"));
    fake.send(second.stanza);
    await eventually(() => fake.acked.includes(second.stanzaId), "the second acked");
    const order = b.sink
      .of("message")
      .map((e) => e.originId)
      .filter((id) => id === first.originId || id === second.originId);
    assert.deepEqual(order, [first.originId, second.originId]);
    assert.ok(fake.acked.includes(first.stanzaId), "the first acked too");
  });

  it("a delivery receipt is handed over before anything of it is stored, then acked with its inbox row only", async function () {
    const sink = new EventSink();
    const deliver = sink.handler;
    let hold = true;
    // The core is slow to take receipts at first: nothing of the receipt may be stored meanwhile.
    (sink as { handler: EventSink["handler"] }).handler = async (event) => {
      while (event.kind === "delivered" && hold) await pause(20);
      return deliver(event);
    };
    const b = await readyBridge(sink);
    const stanzaId = newStanzaId();
    const ref = { id: "3f2a6c1e-8d4b-4c1a-9e7f-0a1b2c3d4e5f" as MessageId, author: alice };
    fake.send(
      buildDelivery({
        id: "r1",
        type: "chat",
        from: `${bob.jid}/1`,
        to: alice,
        payload: [encodeReceived(ref)],
        originId: "9a8b7c6d-1e2f-4a3b-8c4d-5e6f7a8b9c0d" as MessageId,
        stanzaId: { id: stanzaId, by: "wa.example" as BareJid },
      }),
    );
    await pause(300);
    const { knex } = get().db;
    assert.equal(
      await knex("inbox").whereNotNull("pending_since").where({ stanza_id: stanzaId }).first(),
      undefined,
    );
    assert.equal(fake.acked.includes(stanzaId), false, "not acked before the hand-over");
    hold = false;
    await eventually(() => fake.acked.includes(stanzaId), "acked after the hand-over");
    const delivered = b.sink.of("delivered");
    assert.equal(delivered.length, 1);
    assert.deepEqual(delivered[0]?.refs, [ref]);
    assert.notEqual(await knex("inbox").where({ stanza_id: stanzaId }).first(), undefined);
  });

  it("a 1:1 delivery receipt is recorded without a look-up before its insert; a redelivery is acked again", async function () {
    const b = await readyBridge();
    let lookups = 0;
    const { inbox } = b.engine;
    const seen = inbox.seen.bind(inbox);
    inbox.seen = (...args) => {
      lookups++;
      return seen(...args);
    };
    const stanzaId = newStanzaId();
    const ref = { id: "5b1f0c2e-7d3a-4b2c-8e1f-1a2b3c4d5e6f" as MessageId, author: alice };
    const receipt = buildDelivery({
      id: "r2",
      type: "chat",
      from: `${bob.jid}/1`,
      to: alice,
      payload: [encodeReceived(ref)],
      originId: "6c2a1d3f-8e4b-4c3d-9f2a-2b3c4d5e6f7a" as MessageId,
      stanzaId: { id: stanzaId, by: "wa.example" as BareJid },
    });
    fake.send(receipt);
    await eventually(() => fake.acked.includes(stanzaId), "acked after the hand-over");
    assert.equal(lookups, 0, "the inbox insert is the record; no select before it (#15)");
    assert.equal(b.sink.of("delivered").length, 1);
    const { knex } = get().db;
    assert.notEqual(await knex("inbox").where({ stanza_id: stanzaId }).first(), undefined);
    const acks = fake.acked.filter((id) => id === stanzaId).length;
    fake.send(receipt);
    await eventually(
      () => fake.acked.filter((id) => id === stanzaId).length > acks,
      "the redelivery acked again",
    );
    const rows = await knex("inbox").where({ stanza_id: stanzaId });
    assert.equal(rows.length, 1, "recorded once");
  });

  it("a crash between receipt and hand-over redelivers without loss or duplication", async function () {
    const hanging = new EventSink();
    hanging.mode = "hang";
    const first = await readyBridge(hanging);
    const delivery = await users.encryptTo(bob, 1, alice, body("survive this"));
    fake.send(delivery.stanza);
    await eventually(
      async () =>
        (await get()
          .db.knex("inbox")
          .whereNotNull("pending_since")
          .where({ stanza_id: delivery.stanzaId })
          .first()) !== undefined,
      "the decrypted message committed",
    );
    // The process dies: no clean stop, no ack; the next run opens the database anew.
    await first.engine.halt();
    assert.equal(fake.acked.includes(delivery.stanzaId), false);
    const reopened = await openDatabase(get().options);
    cleanups.push(() => reopened.close());
    const second = await readyBridge(new EventSink(), reopened.knex);
    // The gatekeeper redelivers every unacked stanza after the new hello (§15.5).
    fake.send(delivery.stanza);
    await eventually(() => fake.acked.includes(delivery.stanzaId), "acked by the second run");
    await pause(100);
    const events = messagesFor(second, delivery.originId);
    assert.equal(events.length, 1, "handed over once");
    assert.deepEqual(events[0]?.envelope.content, body("survive this"));
    assert.equal(receipts(delivery.originId).length, 1, "one receipt");
  });

  it("a message's hand-over opens no transaction of its own: its receipt row and the end of its pending record are two statements", async function () {
    const b = await readyBridge();
    const delivery = await users.encryptTo(bob, 1, alice, body("one commit"));
    await pause(200);
    const groups = runnerStats.groups;
    fake.send(delivery.stanza);
    await eventually(() => fake.acked.includes(delivery.stanzaId), "acked after the hand-over");
    await eventually(() => receipts(delivery.originId).length === 1, "the receipt");
    assert.equal(messagesFor(b, delivery.originId).length, 1);
    assert.equal(
      runnerStats.groups - groups,
      1,
      "the decrypt transaction only; the hand-over ran without BEGIN/COMMIT (#15)",
    );
  });

  it("the <accepted> answer to a receipt resolves its row with one statement, not a read and an update", async function () {
    await readyBridge();
    const { knex } = get().db;
    const texts: string[] = [];
    const restore = watchRunner(SqlRunner.of(knex), "connection", (text) => {
      texts.push(text);
    });
    try {
      const delivery = await users.encryptTo(bob, 1, alice, body("a receipt answered"));
      fake.send(delivery.stanza);
      await eventually(() => receipts(delivery.originId).length === 1, "the receipt");
      await eventually(async () => {
        const rows = (await knex("outbox").where({ kind: "receipt" })) as {
          stanza: string;
          state: string;
        }[];
        return rows.some((r) => r.stanza.includes(delivery.originId) && r.state === "accepted");
      }, "the receipt's row resolved by its answer");
    } finally {
      restore();
    }
    const acceptance = texts.filter(
      (t) => t.includes("state = 'accepted'") || t.includes("select o.id"),
    );
    assert.equal(acceptance.length, 1, acceptance.join("\n"));
    assert.match(acceptance[0] ?? "", /kind <> 'message' returning/);
  });

  it("a message's decrypt transaction records its stanza-id and its pending event in one statement (#15)", async function () {
    const b = await readyBridge();
    const delivery = await users.encryptTo(bob, 1, alice, body("one statement less"));
    // Every statement of the delivery's decrypt transaction, in order.
    const sql = SqlRunner.of(get().db.knex);
    const transaction = sql.transaction.bind(sql);
    const statements: string[] = [];
    sql.transaction = <T>(fn: (tx: Tx) => Promise<T>): Promise<T> =>
      transaction((tx) => {
        statements.length = 0; // a group commit may run it again: its last run counts
        return fn(watchedTx(tx, (text) => void statements.push(text)));
      });
    try {
      fake.send(delivery.stanza);
      await eventually(() => fake.acked.includes(delivery.stanzaId), "acked after the hand-over");
    } finally {
      sql.transaction = transaction;
    }
    assert.equal(messagesFor(b, delivery.originId).length, 1);
    const inboxWrites = statements.filter((text) => /\binbox\b|inbound_pending/.test(text));
    assert.equal(inboxWrites.length, 1, `one statement for the inbox: ${inboxWrites.join(" | ")}`);
    assert.match(inboxWrites[0]!, /^insert into inbox .*event_enc/);
  });

  it("a copy of a message handed over before, decrypted anew under another stanza-id, is acked and leaves nothing to hand over later", async function () {
    const b = await readyBridge();
    const first = await users.encryptTo(bob, 1, alice, body("only once"));
    fake.send(first.stanza);
    await eventually(() => fake.acked.includes(first.stanzaId), "the first acked");
    const copy = await users.encryptTo(bob, 1, alice, body("only once"), {
      originId: first.originId,
    });
    fake.send(copy.stanza);
    await eventually(() => fake.acked.includes(copy.stanzaId), "the copy acked");
    const pending = await get().db.knex("inbox").whereNotNull("pending_since");
    assert.deepEqual(pending, [], "nothing pending");
    // A replay (hello, the slow timer, a restart) finds nothing of it either.
    await b.engine.receiver.replayPending();
    await pause(100);
    assert.equal(messagesFor(b, first.originId).length, 1, "handed over once");
  });

  it("a hand-over failing after its receipt row was written sends that receipt once, on its retry", async function () {
    const b = await readyBridge();
    const failures = failCompletionOnce(b, "injected: the process died here");
    const delivery = await users.encryptTo(bob, 1, alice, body("after a failure"));
    fake.send(delivery.stanza);
    await eventually(() => fake.acked.includes(delivery.stanzaId), "acked after the retry");
    assert.equal(failures(), 1, "the first hand-over failed");
    await eventually(() => receipts(delivery.originId).length >= 1, "the receipt");
    await pause(200);
    assert.equal(receipts(delivery.originId).length, 1, "one receipt");
    const { knex } = get().db;
    const rows = (await knex("outbox").where({ kind: "receipt" })) as { stanza: string }[];
    assert.equal(rows.filter((r) => r.stanza.includes(delivery.originId)).length, 1, "one row");
    assert.equal(
      await knex("inbox")
        .whereNotNull("pending_since")
        .where({ stanza_id: delivery.stanzaId })
        .first(),
      undefined,
    );
  });

  it("a halted engine hands over nothing more: a next run on the same database takes its pending event and acks it", async function () {
    // Seen in CI under load: a halted engine's queued replay took a later run's pending event,
    // acked it into its closed session, and the gatekeeper's copy stayed unacked.
    const first = await readyBridge();
    await first.engine.halt();
    const second = await readyBridge();
    const failures = failCompletionOnce(second, "injected: the hand-over failed");
    const delivery = await users.encryptTo(bob, 1, alice, body("for the second run"));
    fake.send(delivery.stanza);
    await eventually(() => failures() === 1, "the failed hand-over");
    // What a halted engine still had queued (a replay, a retry of its own) runs now.
    await first.engine.receiver.replayPending();
    assert.equal(messagesFor(first, delivery.originId).length, 0, "nothing after the halt");
    await eventually(() => fake.acked.includes(delivery.stanzaId), "acked by the second run");
    assert.equal(messagesFor(second, delivery.originId).length >= 1, true);
  });

  it("ignores gatekeeper-only elements from a non-gatekeeper JID", async function () {
    const b = await readyBridge();
    const evil = fake.server.attachLocal("evil.example", () => undefined);
    cleanups.push(async () => evil.detach());
    fake.policy = "manual";
    const originId = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("x") });
    await eventually(() => fake.messages().some((m) => m.msg.originId === originId), "sent");
    const spoofs = [
      xml(
        "message",
        { from: "evil.example", to: `${alice}/1`, id: "s1" },
        xml("accepted", {
          xmlns: "urn:interop:delivery:0",
          "origin-id": originId,
          "stanza-id": "01SPOOF",
          stamp: new Date().toISOString(),
          seq: "1",
          conversation: bob.jid,
        }),
      ),
      withFrom(fake.notification(alice, encodeRequestAccepted(bob.jid)).stanza, "evil.example"),
      withFrom(
        fake.notification(alice, encodePreKeysLow({ device: 1 as DeviceId, ec: 0, kyber: 0 }))
          .stanza,
        "mallory@evil.example",
      ),
    ];
    const uploadsBefore = fake.directory.replenished.length;
    for (const spoof of spoofs) evil.send(spoof);
    await pause(200);
    const row = (await get().db.knex("outbox").where({ origin_id: originId }).first()) as {
      state: string;
    };
    assert.equal(row.state, "sent", "a spoofed <accepted> does not resolve the message");
    assert.equal(b.sink.of("accepted").length, 0);
    assert.equal(b.sink.of("request-accepted").length, 0, "a spoofed notification is not honoured");
    assert.equal(
      fake.directory.replenished.length,
      uploadsBefore,
      "a spoofed prekeys-low publishes nothing",
    );
    assert.equal(fake.acked.length, 0, "nor acked");
  });

  it("asks for a retry when a message does not decrypt and hands over the re-send once", async function () {
    const b = await readyBridge();
    const broken = await users.encryptTo(bob, 1, alice, body("second try"), { corrupt: true });
    fake.send(broken.stanza);
    await eventually(() => fake.acked.includes(broken.stanzaId), "the broken delivery acked");
    const request = fake.messages().find((m) => m.msg.payload.kind === "retry");
    assert.ok(request !== undefined && request.msg.payload.kind === "retry", "a retry request");
    assert.equal(request.stanza.attrs.to, `${bob.jid}/1`, "to the sending device");
    assert.equal(request.msg.payload.retry.id, broken.originId);
    assert.equal(request.msg.payload.retry.count, 1);
    assert.equal(b.sink.of("message").length, 0, "nothing handed over for the broken message");

    const resend = await users.answerRetry(
      bob,
      1,
      { jid: alice, device: 1 as DeviceId },
      broken.originId,
      1,
    );
    fake.send(resend.stanza);
    await eventually(() => fake.acked.includes(resend.stanzaId), "the re-send acked");
    const events = messagesFor(b, broken.originId);
    assert.equal(events.length, 1);
    assert.deepEqual(events[0]?.envelope.content, body("second try"));
    await eventually(() => receipts(broken.originId).length === 1, "a receipt for the re-send");
  });

  it("gives up after two retry requests and reports the message undecryptable", async function () {
    const b = await readyBridge();
    const broken = await users.encryptTo(bob, 1, alice, body("lost"), { corrupt: true });
    for (let i = 0; i < 3; i++) fake.send(withStanzaId(broken.stanza, newStanzaId()));
    await eventually(() => b.sink.of("undecryptable").length === 1, "undecryptable");
    const requests = (): ReturnType<typeof fake.messages> =>
      fake.messages().filter((m) => m.msg.payload.kind === "retry");
    await eventually(() => requests().length === 2, "two retry requests");
    await pause(100);
    assert.deepEqual(
      requests().map((r) => (r.msg.payload.kind === "retry" ? r.msg.payload.retry.count : 0)),
      [1, 2],
    );
    assert.equal(b.sink.of("undecryptable")[0]?.originId, broken.originId);
  });

  it("answers an authorised retry request with the stored envelope for that device only", async function () {
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("retry me"),
    });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === originId), "accepted");
    const request = users.retryRequest(bob, 1, `${alice}/1`, originId, 1);
    fake.send(request.stanza);
    await eventually(() => fake.acked.includes(request.stanzaId), "the retry request acked");
    const resends = (): XmlElement[] =>
      fake
        .messages()
        .filter((m) => m.msg.originId === originId && m.msg.payload.kind === "encrypted")
        .filter((m) => m.msg.payload.kind === "encrypted" && m.msg.payload.encrypted.retry === 1)
        .map((m) => m.stanza);
    await eventually(() => resends().length === 1, "the re-send");
    const [resend] = resends();
    assert.ok(resend !== undefined);
    assert.equal(resend.attrs.to, `${bob.jid}/1`, "to the requesting device");
    assert.ok(resend.toString().includes('kex="true"'), "a fresh session: a PreKeySignalMessage");
    assert.deepEqual((await users.decrypt(bob, 1, resend)).content, body("retry me"));

    const again = users.retryRequest(bob, 1, `${alice}/1`, originId, 1);
    fake.send(again.stanza);
    await eventually(() => fake.acked.includes(again.stanzaId), "the repeated request acked");
    await pause(100);
    assert.equal(resends().length, 1, "a count is answered once");
  });

  it("replenishes prekeys on prekeys-low and acks the notification", async function () {
    await readyBridge();
    const uploadsBefore = fake.directory.replenished.length;
    const notice = fake.notification(
      alice,
      encodePreKeysLow({ device: 1 as DeviceId, ec: 3, kyber: 2 }),
    );
    fake.send(notice.stanza);
    await eventually(() => fake.acked.includes(notice.stanzaId), "acked");
    const published = fake.directory.replenished.slice(uploadsBefore);
    // Up to 100 of each kind, at most max-kyber-prekeys-per-publish (50) Kyber keys at once.
    assert.deepEqual(published, [{ jid: alice, device: 1, ec: 97, kyber: 50 }]);
  });

  it("after devices-changed the next message covers the added device without a stale-device-list", async function () {
    const b = await readyBridge();
    const before = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("one") });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === before), "accepted");
    await users.addDevice(bob, 2);
    const notice = fake.notification(
      alice,
      encodeDevicesChanged({
        jid: bob.jid,
        version: fake.directory.list(bob.jid)?.version ?? 0,
        devices: [
          { id: 1 as DeviceId, change: undefined },
          { id: 2 as DeviceId, change: "added" },
        ],
        removed: [],
      }),
    );
    fake.send(notice.stanza);
    await eventually(() => fake.acked.includes(notice.stanzaId), "the notification acked");
    const after = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("two") });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === after), "accepted");
    const stanza = fake.messages().find((m) => m.msg.originId === after)?.stanza;
    assert.ok(stanza !== undefined);
    assert.deepEqual((await users.decrypt(bob, 2, stanza)).content, body("two"));
    assert.deepEqual((await users.decrypt(bob, 1, stanza)).content, body("two"));
  });

  /** Bob's device 1 gets a new identity key and the gatekeeper says so (devices-changed, acked). */
  async function bobChangesIdentity(): Promise<void> {
    await users.resetIdentity(bob, 1);
    const notice = fake.notification(
      alice,
      encodeDevicesChanged({
        jid: bob.jid,
        version: fake.directory.list(bob.jid)?.version ?? 0,
        devices: [{ id: 1 as DeviceId, change: "identity-changed" }],
        removed: [],
      }),
    );
    fake.send(notice.stanza);
    await eventually(() => fake.acked.includes(notice.stanzaId), "the notification acked");
  }

  it("reports an identity change announced by devices-changed, and encrypts to the new identity", async function () {
    const b = await readyBridge();
    const before = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("old") });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === before), "accepted");
    await bobChangesIdentity();
    await eventually(
      () => b.sink.of("identity-changed").some((e) => e.contact === bob.jid && e.local === alice),
      "the security-code notice",
    );
    const after = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("new") });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === after), "accepted");
    const stanza = fake.messages().find((m) => m.msg.originId === after)?.stanza;
    assert.ok(stanza !== undefined);
    assert.deepEqual((await users.decrypt(bob, 1, stanza)).content, body("new"));
  });

  it("an identity change whose hand-over failed is handed over after the core recovers, once (#16)", async function () {
    const sink = new EventSink();
    const b = await readyBridge(sink);
    const before = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("old") });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === before), "accepted");
    // The core fails (the homeserver answers 500, say) while the change is recorded.
    sink.mode = "fail";
    await bobChangesIdentity();
    await pause(300);
    assert.equal(sink.of("identity-changed").length, 0, "the core took nothing yet");
    sink.mode = "ok";
    await eventually(
      () => sink.of("identity-changed").some((e) => e.contact === bob.jid && e.local === alice),
      "the security-code notice after the failure",
    );
    await pause(700);
    assert.equal(sink.of("identity-changed").length, 1, "handed over exactly once");
    const left = await get().db.knex("inbox").where("stanza_id", "like", "local:%");
    assert.deepEqual(left, [], "its pending record removed once handled, inbox row and all");
  });

  it("an identity change committed but not handed over before a crash is handed over by the next run", async function () {
    const sink = new EventSink();
    const b = await readyBridge(sink);
    const first = await users.encryptTo(bob, 1, alice, body("old identity"));
    fake.send(first.stanza);
    await eventually(() => fake.acked.includes(first.stanzaId), "the first acked");
    sink.mode = "hang";
    await users.resetIdentity(bob, 1);
    const second = await users.encryptTo(bob, 1, alice, body("new identity"));
    fake.send(second.stanza);
    const pendingRows = () =>
      get().db.knex("inbox").whereNotNull("pending_since").select("stanza_id");
    await eventually(async () => (await pendingRows()).length === 2, "both committed");
    await b.engine.halt();
    const next = await readyBridge();
    await eventually(
      () => fake.acked.includes(second.stanzaId),
      "the message acked by the next run",
    );
    const kinds = next.sink.events
      .filter((e) => e.kind === "identity-changed" || e.kind === "message")
      .map((e) => (e.kind === "message" ? e.originId : e.kind));
    assert.deepEqual(kinds, ["identity-changed", second.originId]);
    await eventually(async () => (await pendingRows()).length === 0, "nothing left pending");
  });

  it("a message the previous version committed and did not hand over is handed over after the upgrade, decoded from its stored bytes (#16)", async function () {
    const b = await readyBridge();
    await b.engine.halt();
    const originId = messageId(randomUUID());
    const stanzaId = newStanzaId();
    const envelopeXml = encodeEnvelope({
      id: originId,
      from: bob.jid,
      to: alice,
      time: new Date("2026-01-02T03:04:00.000Z"),
      content: body("written before the upgrade"),
    });
    // The JSON the previous version's PendingRecord stored: absent values as null, no envelope.
    const previous = {
      kind: "message",
      local: alice,
      from: bob.jid,
      device: 1,
      originId,
      stanzaId,
      seq: null,
      stamp: "2026-01-02T03:04:05.000Z",
      envelopeXml,
    };
    await SqlRunner.of(get().db.knex).transaction((tx) =>
      b.engine.inbox.addPending(
        tx,
        {
          stanzaId,
          by: "wa.example",
          event: previous as unknown as StoredEvent,
          receipt: { from: `${alice}/1`, to: bob.jid, id: originId },
        },
        Date.now(),
      ),
    );
    const next = await readyBridge();
    await eventually(() => messagesFor(next, originId).length === 1, "handed over by the next run");
    const [event] = messagesFor(next, originId);
    assert.deepEqual(event?.envelope.content, body("written before the upgrade"));
    assert.equal(event?.seq, undefined);
    assert.deepEqual(event?.stamp, new Date("2026-01-02T03:04:05.000Z"));
    await eventually(() => receipts(originId).length === 1, "its <received> sent");
    assert.equal(
      await get()
        .db.knex("inbox")
        .whereNotNull("pending_since")
        .where({ stanza_id: stanzaId })
        .first(),
      undefined,
    );
  });

  it("the first message from a new identity comes after its identity change, also when that failed once", async function () {
    const sink = new EventSink();
    let failures = 1;
    const deliver = sink.handler;
    (sink as { handler: EventSink["handler"] }).handler = async (event) => {
      if (event.kind === "identity-changed" && failures-- > 0) throw new Error("homeserver 500");
      return deliver(event);
    };
    const b = await readyBridge(sink);
    const first = await users.encryptTo(bob, 1, alice, body("old identity"));
    fake.send(first.stanza);
    await eventually(() => fake.acked.includes(first.stanzaId), "the first acked");
    await users.resetIdentity(bob, 1);
    const second = await users.encryptTo(bob, 1, alice, body("new identity"));
    fake.send(second.stanza);
    await eventually(() => fake.acked.includes(second.stanzaId), "the second acked");
    const kinds = b.sink.events
      .filter((e) => e.kind === "identity-changed" || e.kind === "message")
      .map((e) => (e.kind === "message" ? e.originId : e.kind));
    assert.deepEqual(kinds, [first.originId, "identity-changed", second.originId]);
  });

  it("acks a delivery whose only payload is unknown", async function () {
    await readyBridge();
    const stanzaId = newStanzaId();
    fake.send(
      xml(
        "message",
        { from: "wa.example", to: alice, id: "u1" },
        xml("future", { xmlns: "urn:interop:future:0" }),
        xml("stanza-id", { xmlns: "urn:xmpp:sid:0", id: stanzaId, by: "wa.example" }),
      ),
    );
    await eventually(() => fake.acked.includes(stanzaId), "acked");
    assert.ok(
      fake.received.some((r) => r.text.includes(stanzaId) && r.stanza.attrs.to === "wa.example"),
      "the ack goes to the by domain",
    );
    assert.equal(
      fake.received.find((r) => r.text.includes(stanzaId))?.stanza.attrs.from,
      BRIDGE_DOMAIN,
    );
  });
});

function withFrom(stanza: XmlElement, from: string): XmlElement {
  stanza.attrs.from = from;
  return stanza;
}
