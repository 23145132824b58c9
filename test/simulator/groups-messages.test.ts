import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  buildChatState,
  buildDisplayed,
  buildEncryptedMessage,
  buildReceipt,
  buildRetryRequest,
  classifyMessage,
  decodeEnvelope,
  encodeEnvelope,
  type Encrypted,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";
import { ALICE, BOB, childNamed, errorOf, type TestProvider } from "./harness.js";
import { text, type ProviderUser } from "./provider-user.js";
import { eventually, GK, PHONE } from "./world.js";
import { CAROL, makeGroupWorld, type GroupWorld } from "./group-world.js";

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const key = (rid: number) => ({ rid: rid as DeviceId, kex: false, ciphertext: bytes(`k${rid}`) });

/** A group stanza from `u` with opaque ciphertexts: the gatekeeper routes, never decrypts. */
function groupStanza(
  u: ProviderUser,
  group: BareJid,
  e: Partial<Encrypted>,
  originId: string = randomUUID(),
): XmlElement {
  return buildEncryptedMessage({
    type: "groupchat",
    originId: originId as MessageId,
    from: u.full,
    to: group,
    encrypted: {
      sid: u.device.deviceId,
      keyGroups: [],
      group: undefined,
      retry: undefined,
      ...e,
    },
  });
}

const fromGroup = (p: TestProvider, to: string, group: string, mark = 0) =>
  p.waitFor(
    (s) =>
      s.name === "message" &&
      s.attrs.from === group &&
      String(s.attrs.to).startsWith(to) &&
      childNamed(s, "event") === undefined,
    5000,
    mark,
  );

describe("simulator groups: messages, receipts, typing and retries (§17.4, §17.6)", function () {
  this.timeout(30_000);
  let w: GroupWorld;
  let group: BareJid;
  afterEach(async () => w?.close());

  /** A group made by the WhatsApp user with Alice, Bob (one provider) and Carol (another). */
  async function open(): Promise<void> {
    w = await makeGroupWorld();
    const g = await w.sim.users.createGroup(PHONE, "Routing", [
      ALICE as BareJid,
      BOB as BareJid,
      CAROL,
    ]);
    group = g.jid;
  }

  it("fans out one stanza per member with <sender>, only its <keys> group, and one seq", async () => {
    await open();
    const stanza = groupStanza(w.alice, group, {
      keyGroups: [
        { jid: BOB as BareJid, keys: [key(1), key(99)] },
        { jid: ALICE as BareJid, keys: [key(1)] },
        { jid: "mallory@matrix.bridge.example" as BareJid, keys: [key(1)] },
      ],
      group: bytes("sender-key ciphertext"),
    });
    const accepted = await w.provider.outcome(stanza);
    const a = childNamed(accepted, "accepted");
    assert.equal(accepted.attrs.from, "g.wa.example");
    assert.equal(a?.attrs.conversation, group);
    const toBob = await fromGroup(w.provider, BOB, group);
    const toCarol = await fromGroup(w.other, CAROL, group);
    const bob = classifyMessage(toBob);
    assert.deepEqual(bob.sender, { jid: ALICE, device: 1 });
    assert.equal(bob.stanzaId?.by, "g.wa.example");
    assert.equal(bob.meta?.seq, Number(a?.attrs.seq));
    assert.equal(toBob.attrs.type, "groupchat");
    const e = bob.payload.kind === "encrypted" ? bob.payload.encrypted : undefined;
    // Bob's key for a device he does not have is gone; nobody else's keys are there.
    assert.deepEqual(
      e?.keyGroups.map((g) => [g.jid, g.keys.map((k) => k.rid)]),
      [[BOB, [1]]],
    );
    const carol = classifyMessage(toCarol);
    assert.deepEqual(carol.payload.kind === "encrypted" && carol.payload.encrypted.keyGroups, []);
    assert.ok(carol.payload.kind === "encrypted" && carol.payload.encrypted.group !== undefined);
    // No copy goes back to the sender.
    assert.ok(
      !w.provider.received.some(
        (s) =>
          s.attrs.to === ALICE &&
          s.attrs.from === group &&
          childNamed(s, "encrypted") !== undefined,
      ),
    );
  });

  it("refuses a non-member with not-member and repeats <accepted> for a duplicate", async () => {
    await open();
    await w.sim.users.changeGroup(PHONE, group, { op: "remove", participants: [BOB as BareJid] });
    const refused = errorOf(
      await w.provider.outcome(groupStanza(w.bob, group, { group: bytes("x") })),
    );
    assert.deepEqual([refused.condition, refused.app?.name], ["forbidden", "not-member"]);
    const s = groupStanza(w.alice, group, { group: bytes("y") });
    const first = childNamed(await w.provider.outcome(s), "accepted");
    const again = childNamed(await w.provider.outcome(s), "accepted");
    assert.equal(again?.attrs["stanza-id"], first?.attrs["stanza-id"]);
    assert.equal(again?.attrs.seq, first?.attrs.seq);
  });

  it("delivers a distribution stanza (no <group>) only to members with keys in it", async () => {
    await open();
    const mark = w.other.received.length;
    const s = groupStanza(w.alice, group, { keyGroups: [{ jid: BOB as BareJid, keys: [key(1)] }] });
    assert.ok(childNamed(await w.provider.outcome(s), "accepted"));
    await fromGroup(w.provider, BOB, group);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      w.other.received.slice(mark).filter((x) => childNamed(x, "encrypted") !== undefined).length,
      0,
    );
  });

  it("routes a group retry from a then-member to the author's device, and refuses others with forbidden (E30)", async () => {
    await open();
    // Bob is out when the message is accepted, and comes back later.
    await w.sim.users.changeGroup(PHONE, group, { op: "remove", participants: [BOB as BareJid] });
    const originId = randomUUID();
    await w.provider.outcome(groupStanza(w.alice, group, { group: bytes("m") }, originId));
    const retry = (u: ProviderUser, id: string = originId) =>
      buildRetryRequest({
        type: "groupchat",
        originId: randomUUID() as MessageId,
        from: u.full,
        to: group,
        retry: {
          id: id as MessageId,
          count: 1,
          registration: u.device.registrationId,
          reason: "no-sender-key",
          author: { jid: ALICE as BareJid, device: 1 as DeviceId },
        },
      });
    // Carol was a member when it was accepted; after leaving she may still ask (E30).
    await w.other.iq("set", (await import("../../src/interop/codec/index.js")).encodeLeave(), {
      from: CAROL,
      to: group,
    });
    assert.ok(childNamed(await w.other.outcome(retry(w.carol)), "accepted"));
    const forwarded = await w.provider.waitFor(
      (s) =>
        s.attrs.to === `${ALICE}/1` &&
        childNamed(s, "retry") !== undefined &&
        childNamed(s, "sender")?.attrs.jid === CAROL,
    );
    assert.equal(forwarded.attrs.from, group);
    assert.deepEqual(classifyMessage(forwarded).sender, { jid: CAROL, device: 1 });
    // Unknown message: forbidden.
    const unknown = errorOf(await w.provider.outcome(retry(w.bob, "never-sent")));
    assert.deepEqual([unknown.condition, unknown.type], ["forbidden", "cancel"]);
    // Bob joins after the message: he was not a member then.
    await w.sim.users.changeGroup(PHONE, group, { op: "add", participants: [BOB as BareJid] });
    const late = errorOf(await w.provider.outcome(retry(w.bob)));
    assert.equal(late.condition, "forbidden");
  });

  it("delivers a retry re-send only to the named device, with the original seq; a re-send never accepted is bad-request", async () => {
    await open();
    const originId = randomUUID();
    const first = childNamed(
      await w.provider.outcome(groupStanza(w.alice, group, { group: bytes("m") }, originId)),
      "accepted",
    );
    await fromGroup(w.provider, BOB, group);
    const mark = w.other.received.length;
    const resend = groupStanza(
      w.alice,
      group,
      { keyGroups: [{ jid: BOB as BareJid, keys: [key(1)] }], retry: 1 },
      originId,
    );
    const outcome = await w.provider.outcome(resend);
    const accepted = childNamed(outcome, "accepted");
    assert.equal(accepted?.attrs.seq, first?.attrs.seq, outcome.toString());
    const toBob = await w.provider.waitFor(
      (s) => s.attrs.to === `${BOB}/1` && childNamed(s, "encrypted")?.attrs.retry === "1",
    );
    assert.equal(classifyMessage(toBob).sender?.jid, ALICE);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(w.other.received.slice(mark).filter((s) => childNamed(s, "encrypted")).length, 0);
    const never = groupStanza(
      w.alice,
      group,
      { keyGroups: [{ jid: BOB as BareJid, keys: [key(1)] }], retry: 1 },
      "not-accepted",
    );
    assert.equal(errorOf(await w.provider.outcome(never)).condition, "bad-request");
  });

  it("forwards a group receipt only to the author with <sender>; drops receipts of unknown messages; typing reaches the others", async () => {
    await open();
    const originId = randomUUID() as MessageId;
    await w.provider.outcome(groupStanza(w.alice, group, { group: bytes("m") }, originId));
    const receipt = (id: MessageId) =>
      buildReceipt({
        type: "groupchat",
        originId: randomUUID() as MessageId,
        from: w.carol.full,
        to: group,
        receipts: [{ id, author: ALICE as BareJid }],
      });
    assert.ok(childNamed(await w.other.outcome(receipt(originId)), "accepted"));
    const got = await w.provider.waitFor(
      (s) => s.attrs.to === ALICE && childNamed(s, "received") !== undefined,
    );
    assert.deepEqual(classifyMessage(got).sender, { jid: CAROL, device: 1 });
    assert.ok(!w.provider.received.some((s) => s.attrs.to === BOB && childNamed(s, "received")));
    const before = w.provider.received.filter((s) => childNamed(s, "received")).length;
    assert.ok(childNamed(await w.other.outcome(receipt("unknown" as MessageId)), "accepted"));
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(w.provider.received.filter((s) => childNamed(s, "received")).length, before);
    await w.other.send(
      buildChatState({ type: "groupchat", from: w.carol.full, to: group, state: "composing" }),
    );
    const typing = await w.provider.waitFor(
      (s) => s.attrs.to === BOB && childNamed(s, "composing") !== undefined,
    );
    assert.equal(classifyMessage(typing).sender?.jid, CAROL);
    assert.ok(childNamed(typing, "stanza-id") === undefined);
    await eventually(async () =>
      (await w.sim.users.received(PHONE, "chat-state")).length > 0 ? true : undefined,
    );
    // A WhatsApp member types: providers see it from the group JID with <sender>.
    const mark = w.provider.received.length;
    await w.sim.users.sendGroupTransport(PHONE, group, { kind: "chat-state", state: "paused" });
    const paused = await w.provider.waitFor(
      (s) => s.attrs.to === ALICE && childNamed(s, "paused") !== undefined,
      5000,
      mark,
    );
    assert.equal(classifyMessage(paused).sender?.jid, GK);
  });

  it("a WhatsApp user's group message carries the SKDM in the header; the provider decrypts it; a removal rotates the key", async () => {
    await open();
    const sent = await w.sim.users.sendToGroup(PHONE, group, text("hello group"));
    const toAlice = await fromGroup(w.provider, ALICE, group);
    const m = classifyMessage(toAlice);
    assert.equal(m.payload.kind, "encrypted");
    const e = (m.payload as { encrypted: Encrypted }).encrypted;
    const sender = { jid: GK, device: m.sender?.device as DeviceId };
    const header = await w.alice.device.sessions.decrypt(
      {
        senderJid: GK,
        senderDevice: sender.device,
        kex: e.keyGroups[0]!.keys[0]!.kex,
        ciphertext: e.keyGroups[0]!.keys[0]!.ciphertext,
      },
      async (p) => p,
    );
    const skdm = decodeEnvelope(header).content[0];
    assert.equal(skdm?.kind, "sender-key");
    if (skdm?.kind !== "sender-key") return;
    await w.alice.device.groups.processDistribution(group, sender, skdm.skdm);
    const body = await w.alice.device.groups.decrypt(group, sender, e.group!, async (p) => p);
    const env = decodeEnvelope(body);
    assert.deepEqual([env.to, env.from, env.id], [group, GK, sent.originId]);
    assert.deepEqual(env.content, text("hello group"));
    // Second message: Alice holds the key, so no header key for her.
    const mark = w.provider.received.length;
    await w.sim.users.sendToGroup(PHONE, group, text("again"));
    const second = classifyMessage(await fromGroup(w.provider, ALICE, group, mark));
    assert.deepEqual((second.payload as { encrypted: Encrypted }).encrypted.keyGroups, []);
    // Bob is removed: the next message uses a new sender key, distributed again to Alice.
    await w.sim.users.changeGroup(PHONE, group, { op: "remove", participants: [BOB as BareJid] });
    const mark2 = w.provider.received.length;
    await w.sim.users.sendToGroup(PHONE, group, text("after removal"));
    const third = classifyMessage(await fromGroup(w.provider, ALICE, group, mark2));
    assert.equal((third.payload as { encrypted: Encrypted }).encrypted.keyGroups.length, 1);
  });

  it("a provider's real sender-key message is decrypted by the WhatsApp user, who answers with a group receipt", async () => {
    await open();
    const devices = await w.alice.fetchDevices(GK);
    await w.alice.prepare(GK, devices);
    const originId = randomUUID() as MessageId;
    const dist = await w.alice.device.groups.distribution(group);
    const skdmEnv = encodeEnvelope({
      content: [{ kind: "sender-key", group, skdm: dist.skdm }],
      id: originId,
      time: new Date(),
      to: group,
      from: ALICE as BareJid,
    });
    const keys = await w.alice.device.sessions.encryptForDevices(
      Buffer.from(skdmEnv),
      devices.map((d) => ({ jid: GK, device: d })),
    );
    const env = encodeEnvelope({
      content: text("hi from matrix"),
      id: originId,
      time: new Date(),
      to: group,
      from: ALICE as BareJid,
    });
    const ciphertext = await w.alice.device.groups.encrypt(group, Buffer.from(env));
    await w.provider.outcome(
      groupStanza(
        w.alice,
        group,
        {
          keyGroups: [
            {
              jid: GK,
              keys: keys.map((k) => ({ rid: k.rid, kex: k.kex, ciphertext: k.ciphertext })),
            },
          ],
          group: ciphertext,
        },
        originId,
      ),
    );
    const logged = await eventually(async () => {
      const l = await w.sim.users.received(PHONE, "message");
      return l.length > 0 ? l : undefined;
    });
    assert.equal(logged[0]?.data.group, group);
    assert.deepEqual(logged[0]?.data.content, text("hi from matrix"));
    const receipt = await w.provider.waitFor(
      (s) => s.attrs.to === ALICE && childNamed(s, "received") !== undefined,
    );
    assert.equal(receipt.attrs.from, group);
    assert.equal(childNamed(receipt, "received")?.attrs.id, originId);
  });

  it("a WhatsApp user without the sender key sends a no-sender-key group retry, answered per §17.6 by the provider", async () => {
    await open();
    const originId = randomUUID() as MessageId;
    const env = encodeEnvelope({
      content: text("no key"),
      id: originId,
      time: new Date(),
      to: group,
      from: ALICE as BareJid,
    });
    await w.alice.device.groups.distribution(group);
    const ciphertext = await w.alice.device.groups.encrypt(group, Buffer.from(env));
    await w.provider.outcome(groupStanza(w.alice, group, { group: ciphertext }, originId));
    const retry = await w.provider.waitFor(
      (s) => s.attrs.to === `${ALICE}/1` && childNamed(s, "retry") !== undefined,
    );
    const r = classifyMessage(retry);
    assert.equal(r.payload.kind === "retry" && r.payload.retry.reason, "no-sender-key");
    assert.equal(r.sender?.jid, GK);
  });
  it("forwards a group marker to a WhatsApp author only while the author has read markers on", async () => {
    await open();
    const sent = await w.sim.users.sendToGroup(PHONE, group, text("read me"));
    const marker = (n: number) =>
      buildDisplayed({
        type: "groupchat",
        originId: `dm-${n}` as MessageId,
        from: w.carol.full,
        to: group,
        marker: { id: sent.originId, author: GK },
      });
    assert.ok(childNamed(await w.other.outcome(marker(1)), "accepted"));
    const first = await eventually(async () => {
      const l = await w.sim.users.received(PHONE, "displayed");
      return l.length > 0 ? l : undefined;
    });
    assert.deepEqual([first[0]?.data.from, first[0]?.data.group], [CAROL, group]);
    await w.sim.gatekeeper.run(() => w.sim.gatekeeper.accounts.update(GK, { readMarkers: false }));
    assert.ok(childNamed(await w.other.outcome(marker(2)), "accepted"));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await w.sim.users.received(PHONE, "displayed")).length, 1);
  });
});
