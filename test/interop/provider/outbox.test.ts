import assert from "node:assert/strict";
import type { Knex } from "knex";
import { encodeRequestAccepted } from "../../../src/interop/codec/delivery.js";
import { decodeEncrypted } from "../../../src/interop/codec/e2ee.js";
import { interopError } from "../../../src/interop/codec/errors.js";
import { NS } from "../../../src/interop/codec/namespaces.js";
import { optionalChild } from "../../../src/interop/codec/read.js";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import { SqlRunner, type Tx } from "../../../src/db/sql.js";
import type { BareJid, DeviceId } from "../../../src/util/ids.js";
import { describeOnBackends } from "../../helpers/db.js";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { FakeGatekeeper } from "./fake-gatekeeper.js";
import { GatekeeperUsers, type GkUser } from "./peers.js";
import {
  eventually,
  ready,
  startBridge,
  uniqueBridgeJid,
  VAULT_KEY,
  type Bridge,
} from "./world.js";

const body = (text: string) => [{ kind: "body" as const, text }];

function keysOf(stanza: XmlElement): Map<number, string> {
  const el = optionalChild(stanza, "encrypted", NS.e2ee);
  assert.ok(el !== undefined, "an <encrypted> element");
  const keys = new Map<number, string>();
  for (const group of decodeEncrypted(el).keyGroups) {
    for (const key of group.keys) keys.set(key.rid, Buffer.from(key.ciphertext).toString("base64"));
  }
  return keys;
}

async function outboxRow(knex: Knex, originId: string): Promise<{ state: string; stanza: string }> {
  return (await knex("outbox").where({ origin_id: originId, kind: "message" }).first()) as {
    state: string;
    stanza: string;
  };
}

/**
 * Once: the transaction that stores a message row for a Matrix event commits, and its caller is
 * told the connection was lost, as when the answer to a COMMIT is lost with its connection. The
 * runner is the database's, shared by the file's tests: the returned function restores it.
 */
function loseCommitAnswerOnce(b: Bridge, knex: Knex): () => void {
  const runner = SqlRunner.of(knex);
  const outbox = b.engine.outbox;
  let stored = 0;
  const insert = outbox.insertSentIfAbsent.bind(outbox);
  outbox.insertSentIfAbsent = async (tx, row) => {
    const id = await insert(tx, row);
    stored += 1;
    return id;
  };
  const transaction = runner.transaction.bind(runner);
  const restore = (): void => {
    delete (runner as { transaction?: unknown }).transaction;
    outbox.insertSentIfAbsent = insert;
  };
  runner.transaction = async <T>(fn: (tx: Tx) => Promise<T>): Promise<T> => {
    let mine = false;
    const value = await transaction(async (tx) => {
      const before = stored;
      const result = await fn(tx);
      mine = stored > before;
      return result;
    });
    if (!mine) return value;
    restore();
    throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
  };
  return restore;
}

describeOnBackends("provider engine: the outbox", (get) => {
  let fake: FakeGatekeeper;
  let users: GatekeeperUsers;
  const bridges: Bridge[] = [];
  let alice: BareJid;
  let bob: GkUser;

  function bridge(options?: Parameters<typeof startBridge>[2]): Bridge {
    const b = startBridge(fake.service, get().db.knex, options);
    bridges.push(b);
    return b;
  }

  /** The bridge's message stanzas from `alice`, as the gatekeeper received them. */
  const sent = (originId: string): { text: string; stanza: XmlElement }[] =>
    fake
      .messages()
      .filter((m) => m.msg.originId === originId && m.msg.payload.kind === "encrypted")
      .map((m) => ({ text: m.text, stanza: m.stanza }));

  const first = (originId: string) => {
    const msg = fake.messages().find((m) => m.msg.originId === originId);
    assert.ok(msg !== undefined, `message ${originId} was sent`);
    return msg.msg;
  };

  beforeEach(async function () {
    fake = await FakeGatekeeper.start();
    users = await GatekeeperUsers.create(fake);
    alice = uniqueBridgeJid();
    bob = await users.addUser([1]);
  });

  afterEach(async function () {
    await Promise.all(bridges.splice(0).map((b) => b.engine.halt()));
    await fake.stop();
    await users.dispose();
  });

  async function readyBridge(options?: Parameters<typeof startBridge>[2]): Promise<Bridge> {
    const b = bridge(options);
    await ready(b);
    await b.engine.createUser(alice);
    return b;
  }

  it("publishes the bundle before the device list, and a message decrypts on the recipient's device", async function () {
    const b = await readyBridge();
    assert.deepEqual(
      fake.directory.publishes.filter((p) => p.includes(alice)),
      [`bundle:${alice}/1`, `devices:${alice}:1`],
    );
    // 100 Kyber keys exceed one publish (50): the rest follow before the list.
    assert.deepEqual(
      fake.directory.replenished.filter((r) => r.jid === alice),
      [{ jid: alice, device: 1, ec: 0, kyber: 50 }],
    );
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("hi bob"),
    });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === originId), "accepted");
    const [copy] = sent(originId);
    assert.ok(copy !== undefined);
    assert.equal(copy.stanza.attrs.from, `${alice}/1`);
    assert.equal(copy.stanza.attrs.id, originId, "message/@id is the origin-id");
    const envelope = await users.decrypt(bob, 1, copy.stanza);
    assert.deepEqual(envelope.content, body("hi bob"));
    assert.equal(envelope.id, originId);
    await eventually(
      async () => (await outboxRow(get().db.knex, originId)).state === "accepted",
      "the row marked accepted",
    );
  });

  it("a message is stored already sent, with its retransmission deadline, in the commit that stores it", async function () {
    const b = await readyBridge();
    // A first message lets the outbox's start-up pass run; the second is the one measured.
    const first = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("one") });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === first), "accepted");
    const before = Date.now();
    const originId = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("two") });
    // No pass over the outbox marks it afterwards: resolved means durably stored as sent.
    const row = (await get().db.knex("outbox").where({ origin_id: originId }).first()) as {
      state: string;
      attempts: number;
      first_sent_at: number | string | null;
      next_attempt_at: number | string;
    };
    assert.equal(row.state, "sent");
    assert.equal(row.attempts, 1);
    assert.ok(Number(row.first_sent_at) >= before, "first sent now");
    assert.ok(Number(row.next_attempt_at) > Date.now(), "retransmission later, not due now");
    await eventually(() => sent(originId).length === 1, "transmitted once");
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === originId), "accepted");
  });

  it("retransmits the identical bytes after a reconnect, and after a restart of the bridge, until accepted", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("again"),
    });
    await eventually(() => sent(originId).length === 1, "the first transmission");
    await fake.restartServer();
    await eventually(() => sent(originId).length === 2, "a retransmission after the new hello");
    await b.engine.halt();
    const restarted = bridge();
    await eventually(() => sent(originId).length === 3, "a retransmission by the restarted bridge");
    const texts = new Set(sent(originId).map((s) => s.text));
    assert.equal(texts.size, 1, "every transmission has the same bytes");
    fake.accept(first(originId));
    await eventually(
      () => restarted.sink.of("accepted").some((e) => e.originId === originId),
      "acceptance reported",
    );
    await eventually(
      async () => (await outboxRow(get().db.knex, originId)).state === "accepted",
      "the row marked accepted",
    );
    await fake.restartServer();
    await ready(restarted);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(sent(originId).length, 3, "an accepted message is not sent again");
  });

  it("transmits a stored stanza's bytes as they are, not parsed and serialised again", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("verbatim"),
    });
    await eventually(() => sent(originId).length === 1, "the first transmission");
    await b.engine.halt();
    // The same stanza in another serialisation (a single-quoted attribute), as a row written by
    // another version or library could hold it: §15.3 retransmits the stored bytes unchanged.
    const knex = get().db.knex;
    const row = await outboxRow(knex, originId);
    const stored = row.stanza.replace(' type="chat"', " type='chat'");
    assert.notEqual(stored, row.stanza);
    await knex("outbox").where({ origin_id: originId, kind: "message" }).update({ stanza: stored });
    const restarted = bridge();
    const written: string[] = [];
    const send = restarted.connection.send.bind(restarted.connection);
    restarted.connection.send = async (stanza: XmlElement): Promise<void> => {
      written.push(stanza.toString());
      await send(stanza);
    };
    await eventually(() => sent(originId).length === 2, "the restarted bridge's retransmission");
    assert.ok(written.includes(stored), "the stored bytes were written unchanged");
  });

  it("a message for the same Matrix event is queued once: a repeat returns the first origin-id", async function () {
    const b = await readyBridge();
    const message = { from: alice, to: bob.jid, content: body("once"), eventId: "$event-1" };
    const originId = await b.engine.sendMessage(message);
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === originId), "accepted");
    // The Matrix transaction handled again after a crash between the outbox and the mapping.
    const again = await b.engine.sendMessage(message);
    assert.equal(again, originId);
    const other = await b.engine.sendMessage({ ...message, eventId: "$event-2" });
    assert.notEqual(other, originId);
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === other), "accepted");
    assert.equal(sent(originId).length, 1, "sent once");
    const rows = (await get().db.knex("outbox").where({ origin_id: originId })) as unknown[];
    assert.equal(rows.length, 1, "one outbox row");
  });

  it("a message committed although its commit was reported failed goes out when its Matrix event is handled again, before the next one, and both decrypt", async function () {
    const b = await readyBridge();
    // The recipient's session is established (a pre-key message) before the fault.
    const first = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("zero") });
    await eventually(() => sent(first).length === 1, "the first message sent");
    await users.decrypt(bob, 1, sent(first)[0]!.stanza);
    // The connection is lost with the COMMIT's answer: the message's row and its session step
    // are committed, the caller hears of a lost connection (the PostgreSQL fault test's cut).
    const restore = loseCommitAnswerOnce(b, get().db.knex);
    try {
      const message = { from: alice, to: bob.jid, content: body("one"), eventId: "$event-one" };
      await assert.rejects(b.engine.sendMessage(message), /ECONNRESET/);
      // The Matrix ingress handles the event again, then the room's next event.
      const one = await b.engine.sendMessage(message);
      const two = await b.engine.sendMessage({
        ...message,
        content: body("two"),
        eventId: "$event-two",
      });
      await eventually(
        () => sent(one).length > 0 && sent(two).length > 0,
        "both messages sent (the first one is retransmitted by timer only after an hour)",
      );
      const order = fake.messages().map((m) => m.msg.originId);
      assert.ok(order.indexOf(one) < order.indexOf(two), "the first message went out first");
      // Decrypted in the order they arrived: the second one used a message key of its own.
      assert.deepEqual((await users.decrypt(bob, 1, sent(one)[0]!.stanza)).content, body("one"));
      assert.deepEqual((await users.decrypt(bob, 1, sent(two)[0]!.stanza)).content, body("two"));
    } finally {
      restore();
    }
  });

  it("on a hello-required bounce runs hello again and then retransmits the same bytes", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("hi") });
    await eventually(() => sent(originId).length === 1, "the first transmission");
    const hellos = fake.hellos;
    fake.bounce(first(originId), interopError({ name: "hello-required" }), "wa.example");
    await eventually(() => sent(originId).length === 2, "the retransmission after hello");
    assert.equal(fake.hellos, hellos + 1, "one new hello");
    const helloAt = fake.received.findLastIndex((r) => r.text.includes("<hello "));
    const resentAt = fake.received.findLastIndex((r) => r.stanza.attrs.id === originId);
    assert.ok(helloAt < resentAt, "the hello comes before the retransmission");
    assert.equal(new Set(sent(originId).map((s) => s.text)).size, 1);
    assert.equal(b.sink.of("send-failed").length, 0);
  });

  it("on unknown-device publishes the device again and then retransmits the same bytes", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("me") });
    await eventually(() => sent(originId).length === 1, "the first transmission");
    const publishes = fake.directory.publishes.length;
    fake.bounce(first(originId), interopError({ name: "unknown-device" }));
    await eventually(() => sent(originId).length === 2, "the retransmission");
    assert.deepEqual(fake.directory.publishes.slice(publishes), [
      `bundle:${alice}/1`,
      `devices:${alice}:1`,
    ]);
    assert.equal(new Set(sent(originId).map((s) => s.text)).size, 1);
    assert.equal(b.sink.of("send-failed").length, 0);
  });

  it("retransmits after the timeout without an outcome, with the same bytes", async function () {
    fake.policy = "manual";
    const b = await readyBridge({ timing: { retransmitInitialMs: 150, retransmitMaxMs: 150 } });
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("slow"),
    });
    await eventually(() => sent(originId).length >= 2, "a retransmission after the timeout");
    assert.equal(new Set(sent(originId).map((s) => s.text)).size, 1);
  });

  it("keeps a rate-limited message until retry-after, then sends it unchanged", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("soon"),
    });
    await eventually(() => sent(originId).length === 1, "the first transmission");
    const started = Date.now();
    fake.bounce(
      first(originId),
      interopError({ name: "rate-limited", scope: "messages", retryAfter: 1 }),
    );
    await eventually(
      () => sent(originId).length === 2,
      "the retransmission after retry-after",
      5000,
    );
    assert.ok(Date.now() - started >= 900, "not before retry-after");
    assert.equal(new Set(sent(originId).map((s) => s.text)).size, 1);
    assert.equal(b.sink.of("send-failed").length, 0, "a wait bounce is not a failure");
    const delayed = b.sink.of("send-delayed");
    assert.equal(delayed.length, 1, "the delay is reported once");
    assert.equal(delayed[0]?.originId, originId);
    assert.ok((delayed[0]?.retryAt.getTime() ?? 0) >= started + 900, "with when it is sent again");
  });

  it("keeps a request-pending message until <request-accepted>, which it acks and reports", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("hello?"),
    });
    await eventually(() => sent(originId).length === 1, "the first transmission");
    fake.bounce(first(originId), interopError({ name: "request-pending" }));
    await fake.restartServer();
    await ready(b);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(sent(originId).length, 1, "a request-pending message is not resent after hello");
    const notice = fake.notification(alice, encodeRequestAccepted(bob.jid));
    fake.send(notice.stanza);
    await eventually(() => sent(originId).length === 2, "the retransmission on request-accepted");
    await eventually(() => fake.acked.includes(notice.stanzaId), "the notification acked");
    assert.ok(
      b.sink.of("request-accepted").some((e) => e.contact === bob.jid && e.local === alice),
    );
  });

  it("holds later messages of a conversation back while an earlier one waits", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const one = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("one") });
    await eventually(() => sent(one).length === 1, "the first transmission");
    fake.bounce(
      first(one),
      interopError({ name: "rate-limited", scope: "messages", retryAfter: 1 }),
    );
    await eventually(
      async () =>
        (
          (await get().db.knex("outbox").where({ origin_id: one }).first()) as {
            hold: string | null;
          }
        ).hold === "rate-limited",
      "the first message held",
    );
    const two = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("two") });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(sent(two).length, 0, "not sent while the earlier message waits");
    await eventually(() => sent(two).length === 1, "the second message after the first", 5000);
    const order = fake
      .messages()
      .map((m) => m.msg.originId)
      .filter((id) => id === one || id === two);
    assert.deepEqual(order, [one, one, two]);
  });

  it("fails a message for good on a final bounce and reports why", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("blocked"),
    });
    await eventually(() => sent(originId).length === 1, "the first transmission");
    fake.bounce(first(originId), interopError({ name: "refused" }));
    await eventually(
      () => b.sink.of("send-failed").some((e) => e.originId === originId),
      "failure",
    );
    const failure = b.sink.of("send-failed").find((e) => e.originId === originId);
    assert.equal(failure?.reason, "blocked");
    await eventually(
      async () => (await outboxRow(get().db.knex, originId)).state === "failed",
      "the row marked failed",
    );
    await fake.restartServer();
    await ready(b);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(sent(originId).length, 1, "a failed message is not resent");
  });

  it("treats the gatekeeper's absence as peer offline: keeps the message and resends it after hello", async function () {
    const b = await readyBridge();
    // A first message caches bob's device list and sessions: the next one needs no IQ.
    const earlier = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("now") });
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === earlier), "accepted");
    fake.detach();
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("later"),
    });
    await eventually(() => b.engine.state.code === "gatekeeper-offline", "gatekeeper-offline");
    assert.equal(b.sink.of("send-failed").length, 0, "peer offline is no outcome");
    fake.attach();
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === originId), "accepted");
    assert.equal(sent(originId).length, 1, "the gatekeeper saw it once, after it came back");
  });

  it("on stale-device-list encrypts for the added device only and keeps the other ciphertexts byte for byte", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("all of you"),
    });
    await eventually(() => sent(originId).length === 1, "the first transmission");
    await users.addDevice(bob, 2);
    fake.staleDeviceList(first(originId), bob.jid, [1, 2] as DeviceId[]);
    await eventually(() => sent(originId).length === 2, "the re-send");
    const [original, resent] = sent(originId);
    assert.ok(original !== undefined && resent !== undefined);
    const before = keysOf(original.stanza);
    const after = keysOf(resent.stanza);
    assert.deepEqual([...after.keys()].sort(), [1, 2]);
    assert.equal(after.get(1), before.get(1), "device 1's ciphertext is not re-encrypted");
    assert.equal(resent.stanza.attrs.id, originId, "same origin-id");
    assert.deepEqual((await users.decrypt(bob, 1, resent.stanza)).content, body("all of you"));
    assert.deepEqual((await users.decrypt(bob, 2, resent.stanza)).content, body("all of you"));
    const row = await outboxRow(get().db.knex, originId);
    assert.equal(row.stanza, resent.text, "the outbox holds the new exact stanza");
    fake.staleDeviceList(first(originId), bob.jid, [2] as DeviceId[]);
    await eventually(() => sent(originId).length === 3, "the re-send without device 1");
    const last = sent(originId)[2];
    assert.ok(last !== undefined);
    assert.deepEqual([...keysOf(last.stanza).keys()], [2], "the removed device's key is dropped");
    assert.equal(keysOf(last.stanza).get(2), after.get(2));
  });

  it("keeps a message's envelope sealed once, and re-encrypts from it after stale-device-list even past the retry window while the message is unresolved", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const knex = get().db.knex;
    const held = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("held") });
    const done = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("done") });
    await eventually(() => sent(held).length === 1 && sent(done).length === 1, "both sent");
    fake.accept(first(done));
    await eventually(() => b.sink.of("accepted").some((e) => e.originId === done), "accepted");
    const copies = (await knex("outbox")
      .whereIn("origin_id", [held, done])
      .whereNotNull("envelope_enc")
      .count({ n: "*" })
      .first()) as { n: number | string };
    assert.equal(Number(copies.n), 0, "no second sealed copy in the outbox");
    // Both were sent longer ago than the retry window (§12.5): the accepted message's envelope
    // goes, the unresolved one's stays for its re-encryption.
    await knex("signal_sent_envelopes").whereIn("origin_id", [held, done]).update({ sent_at: 0 });
    await b.engine.maintenance();
    const kept = (await knex("signal_sent_envelopes")
      .whereIn("origin_id", [held, done])
      .pluck("origin_id")) as string[];
    assert.deepEqual(kept, [held]);
    await users.addDevice(bob, 2);
    fake.staleDeviceList(first(held), bob.jid, [1, 2] as DeviceId[]);
    await eventually(() => sent(held).length === 2, "the re-send");
    const resent = sent(held)[1];
    assert.ok(resent !== undefined);
    assert.deepEqual((await users.decrypt(bob, 2, resent.stanza)).content, body("held"));
  });

  it("re-encrypts after stale-device-list a message queued with its own sealed envelope copy (before issue #15)", async function () {
    fake.policy = "manual";
    const b = await readyBridge();
    const knex = get().db.knex;
    const originId = await b.engine.sendMessage({ from: alice, to: bob.jid, content: body("old") });
    await eventually(() => sent(originId).length === 1, "sent");
    // What an earlier version wrote: the envelope sealed for the outbox row, and no kept copy
    // (purged with the retry window).
    const device = await b.crypto.device(alice, 1 as DeviceId);
    const envelope = await device.retries.sentEnvelope(originId);
    assert.ok(envelope !== undefined);
    const row = (await knex("outbox").where({ origin_id: originId }).first()) as {
      sender_jid: string;
    };
    await knex("outbox")
      .where({ origin_id: originId })
      .update({
        envelope_enc: KeyVault.fromKey(VAULT_KEY).seal(envelope, [
          "outbox",
          row.sender_jid,
          originId,
        ]),
      });
    await knex("signal_sent_envelopes").where({ origin_id: originId }).delete();
    await users.addDevice(bob, 2);
    fake.staleDeviceList(first(originId), bob.jid, [1, 2] as DeviceId[]);
    await eventually(() => sent(originId).length === 2, "the re-send");
    const resent = sent(originId)[1];
    assert.ok(resent !== undefined);
    assert.deepEqual((await users.decrypt(bob, 2, resent.stanza)).content, body("old"));
  });

  it("gives up at the outbox deadline and reports timed-out", async function () {
    fake.policy = "manual";
    const b = await readyBridge({ timing: { outboxDeadlineMs: 300 } });
    const originId = await b.engine.sendMessage({
      from: alice,
      to: bob.jid,
      content: body("late"),
    });
    await eventually(() => b.sink.of("send-failed").some((e) => e.originId === originId), "expiry");
    assert.equal(
      b.sink.of("send-failed").find((e) => e.originId === originId)?.reason,
      "timed-out",
    );
    await eventually(
      async () => (await outboxRow(get().db.knex, originId)).state === "failed",
      "the row marked failed",
    );
  });
});
