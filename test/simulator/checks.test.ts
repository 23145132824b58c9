import assert from "node:assert/strict";
import {
  buildChatState,
  buildReceipt,
  decodeAccepted,
  encodeBlockList,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import { xml } from "../../src/interop/codec/xml.js";
import type { BareJid, MessageId } from "../../src/util/ids.js";
import { ALICE, child, childNamed, errorOf } from "./harness.js";
import { text } from "./provider-user.js";
import { delivery, GK, makeWorld, PHONE, type World } from "./world.js";

const body = (): XmlElement => xml("body", {}, "plain text");

/** A copy of `stanza` with changes applied to its attributes and children. */
function mutate(
  stanza: XmlElement,
  change: { attrs?: Record<string, string | undefined>; add?: XmlElement[] },
): XmlElement {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...stanza.attrs, ...change.attrs })) {
    if (typeof v === "string") attrs[k] = v;
  }
  return xml("message", attrs, ...(stanza.children as XmlElement[]), ...(change.add ?? []));
}

describe("simulator: checks of §15.1 in order", function () {
  this.timeout(30000);
  let w: World;

  beforeEach(async function () {
    w = await makeWorld({
      limits: { "request-messages": 2, "messages-per-minute": 3 },
    });
  });
  afterEach(async function () {
    await w.close();
  });

  const outcome = (s: XmlElement) => w.provider.outcome(s);

  it("1: a numeric device outside the list is unknown-device, a non-numeric one bad-request", async function () {
    const { stanza } = await w.alice.message(GK, text("x"));
    const unknown = errorOf(await outcome(mutate(stanza, { attrs: { from: `${ALICE}/9` } })));
    assert.deepEqual(
      [unknown.condition, unknown.type, unknown.app?.name],
      ["item-not-found", "modify", "unknown-device"],
    );
    const named = errorOf(await outcome(mutate(stanza, { attrs: { from: `${ALICE}/phone` } })));
    assert.equal(named.condition, "bad-request");
  });

  it("1 before 2: an unknown device wins over an oversized stanza", async function () {
    const { stanza } = await w.alice.message(GK, text("x"));
    const huge = xml("padding", { xmlns: "urn:example:pad" }, "p".repeat(270_000));
    const e = errorOf(
      await outcome(mutate(stanza, { attrs: { from: `${ALICE}/9` }, add: [huge] })),
    );
    assert.equal(e.app?.name, "unknown-device");
    const size = errorOf(await outcome(mutate(stanza, { add: [huge] })));
    assert.deepEqual(
      [size.condition, size.app?.name, size.app?.attrs.max],
      ["policy-violation", "too-large", "262144"],
    );
  });

  it("2: wrong type, missing or different origin-id and a non-canonical JID are bad-request", async function () {
    const { stanza } = await w.alice.message(GK, text("x"));
    for (const changed of [
      mutate(stanza, { attrs: { type: "groupchat" } }),
      mutate(stanza, { attrs: { type: undefined } }),
      mutate(stanza, { attrs: { id: "other-id" } }),
      mutate(stanza, { attrs: { to: "491701234567@WA.example" } }),
    ]) {
      assert.equal(
        errorOf(await outcome(changed)).condition,
        "bad-request",
        changed.toString().slice(0, 120),
      );
    }
  });

  it("2 before 3, 3 before 5: type errors win over plaintext, plaintext over reachability", async function () {
    const { stanza } = await w.alice.message(GK, text("x"));
    const typed = errorOf(
      await outcome(mutate(stanza, { attrs: { type: "normal" }, add: [body()] })),
    );
    assert.equal(typed.condition, "bad-request");
    const plain = errorOf(await outcome(mutate(stanza, { add: [body()] })));
    assert.deepEqual([plain.condition, plain.app?.name], ["policy-violation", "unencrypted"]);
    const elsewhere = errorOf(
      await outcome(mutate(stanza, { attrs: { to: "491705550000@wa.example" }, add: [body()] })),
    );
    assert.equal(elsewhere.app?.name, "unencrypted");
    // Any content namespace child counts, whatever the message type.
    const content = xml("reactions", { xmlns: "urn:interop:content:0", id: "x", author: GK });
    const origin = "r-1" as MessageId;
    const receipt = buildReceipt({
      type: "chat",
      originId: origin,
      from: w.alice.full,
      to: GK,
      receipts: [{ id: "m1" as MessageId, author: GK }],
    });
    assert.equal(
      errorOf(await outcome(mutate(receipt, { add: [content] }))).app?.name,
      "unencrypted",
    );
  });

  it("4 before 5: a duplicate gets the original <accepted> even when the user became unreachable", async function () {
    const { stanza } = await w.alice.message(GK, text("x"));
    const devices = await w.alice.fetchDevices(GK);
    const first = decodeAccepted(child(await outcome(stanza)));
    await w.sim.users.setOptIn(PHONE, false);
    assert.deepEqual(decodeAccepted(child(await outcome(stanza))), first);
    const fresh = await w.alice.message(GK, text("y"), { devices });
    assert.equal(errorOf(await outcome(fresh.stanza)).app?.name, "not-reachable");
  });

  it("5: unknown numbers, opted-out users, disallowed providers and users without devices look alike", async function () {
    const { stanza } = await w.alice.message(GK, text("x"));
    const answers: string[] = [];
    const describe = (s: XmlElement): string => {
      const e = errorOf(s);
      return JSON.stringify({ condition: e.condition, type: e.type, app: e.app?.toString() });
    };
    const unknown = mutate(stanza, { attrs: { to: "491705550000@wa.example" } });
    answers.push(describe(await outcome(unknown)));
    await w.sim.users.setOptIn(PHONE, true, ["other-example"]);
    answers.push(describe(await outcome(stanza)));
    await w.sim.users.setOptIn(PHONE, false, null);
    answers.push(describe(await outcome(stanza)));
    await w.sim.users.setOptIn(PHONE, true, null);
    for (const d of await w.sim.users.activeDevices(PHONE))
      await w.sim.users.removeDevice(PHONE, d);
    answers.push(describe(await outcome(stanza)));
    assert.equal(new Set(answers).size, 1, answers.join("\n"));
    const e = JSON.parse(answers[0] as string) as { condition: string; type: string };
    assert.deepEqual([e.condition, e.type], ["service-unavailable", "cancel"]);
    assert.match(answers[0] as string, /not-reachable/);
  });

  it("5 before 6: a blocking user refuses; receipts are accepted without seq and dropped", async function () {
    const first = await w.alice.message(GK, text("hello"));
    await outcome(first.stanza);
    await w.sim.users.block(PHONE, w.alice.jid);
    const second = await w.alice.message(GK, text("again"));
    const e = errorOf(await outcome(second.stanza));
    assert.deepEqual([e.condition, e.type, e.app?.name], ["not-acceptable", "cancel", "refused"]);
    const receipt = buildReceipt({
      type: "chat",
      originId: "rc-1" as MessageId,
      from: w.alice.full,
      to: GK,
      receipts: [{ id: "m1" as MessageId, author: GK }],
    });
    const accepted = decodeAccepted(child(await outcome(receipt)));
    assert.equal(accepted.seq, undefined);
    assert.equal((await w.sim.users.received(PHONE, "receipt")).length, 0);
  });

  it("6: the message request holds request-messages, then request-pending until accepted", async function () {
    const seqs: (number | undefined)[] = [];
    for (const t of ["1", "2"]) {
      const { stanza } = await w.alice.message(GK, text(t));
      seqs.push(decodeAccepted(child(await outcome(stanza))).seq);
    }
    const third = await w.alice.message(GK, text("3"));
    const e = errorOf(await outcome(third.stanza));
    assert.deepEqual(
      [e.condition, e.type, e.app?.name],
      ["policy-violation", "wait", "request-pending"],
    );
    const mark = w.provider.received.length;
    await w.sim.users.acceptRequest(PHONE, w.alice.jid);
    const note = await delivery(w.provider, "request-accepted", mark);
    assert.equal(childNamed(note, "request-accepted")?.attrs.jid, GK);
    assert.equal(note.attrs.to, w.alice.jid);
    assert.equal(decodeAccepted(child(await outcome(third.stanza))).seq, 3);
    assert.deepEqual(seqs, [1, 2]);
  });

  it("6: a declined request answers refused, as a block does", async function () {
    const { stanza } = await w.alice.message(GK, text("1"));
    await outcome(stanza);
    assert.equal(await w.sim.users.declineRequest(PHONE, w.alice.jid), true);
    const next = await w.alice.message(GK, text("2"));
    assert.equal(errorOf(await outcome(next.stanza)).app?.name, "refused");
  });

  it("7: messages-per-minute is rate-limited with retry-after, then passes", async function () {
    await w.sim.users.acceptRequest(PHONE, w.alice.jid);
    await w.sim.users.send(PHONE, w.alice.jid as BareJid, text("hi"));
    for (let i = 0; i < 3; i++) {
      const { stanza } = await w.alice.message(GK, text(`m${i}`));
      assert.equal(child(await outcome(stanza)).name, "accepted");
    }
    const { stanza } = await w.alice.message(GK, text("too many"));
    const e = errorOf(await outcome(stanza));
    assert.deepEqual(
      [e.condition, e.type, e.app?.attrs.scope],
      ["resource-constraint", "wait", "messages"],
    );
    assert.ok(
      Number(e.app?.attrs["retry-after"]) >= 1 && Number(e.app?.attrs["retry-after"]) <= 60,
    );
    w.clock.advance(60_001);
    assert.equal(child(await outcome(stanza)).name, "accepted");
  });

  it("drops a chat state that fails a check without any answer", async function () {
    const mark = w.provider.received.length;
    await w.provider.send(
      buildChatState({ type: "chat", from: `${ALICE}/9`, to: GK, state: "composing" }),
    );
    const { stanza } = await w.alice.message(GK, text("probe"));
    await outcome(stanza);
    const answers = w.provider.received.slice(mark).filter((s) => s.attrs.type === "error");
    assert.deepEqual(answers, []);
  });

  it("bounces a 1:1 receipt whose author is not the recipient", async function () {
    const receipt = buildReceipt({
      type: "chat",
      originId: "rc-2" as MessageId,
      from: w.alice.full,
      to: GK,
      receipts: [{ id: "m1" as MessageId, author: "491705550000@wa.example" as BareJid }],
    });
    assert.equal(errorOf(await outcome(receipt)).condition, "bad-request");
  });

  it("a provider user's block keeps the gatekeeper user's messages from being delivered (E19)", async function () {
    const r = await w.provider.iq("set", encodeBlockList("block", [GK]));
    assert.equal(r.attrs.type, "result");
    const list = await w.provider.iq("get", encodeBlockList("blocklist"));
    assert.equal(childNamed(child(list), "item")?.attrs.jid, GK);
    const sent = await w.sim.users.send(PHONE, w.alice.jid as BareJid, text("blocked"));
    assert.equal(sent.delivered, false);
    assert.equal(typeof sent.seq, "number");
    const queued = (await w.sim.knex("gk_queue").select("stanza")) as { stanza: string }[];
    assert.ok(queued.every((q) => !q.stanza.includes("urn:interop:e2ee:0")));
    assert.ok(w.provider.received.every((s) => childNamed(s, "encrypted") === undefined));
  });
});
