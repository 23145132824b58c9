import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  buildEncryptedMessage,
  buildReceipt,
  buildRetryRequest,
  classifyMessage,
  decodeAccepted,
  decodeBundlesResult,
  decodeCodeSent,
  decodeDevicesChanged,
  decodeHelloResult,
  decodeLookupResult,
  decodeSlot,
  effectiveLimits,
  encodeAck,
  encodeBlockList,
  encodeBundlesFetch,
  encodeCreate,
  encodeGroupInfoQuery,
  encodeSubjectChange,
  decodeGroupInfo,
  encodeConfirmCode,
  encodeHelloRequest,
  encodeLookupRequest,
  encodePing,
  encodeProfile,
  encodePublishedBundle,
  encodeReport,
  encodeRequestCode,
  encodeSlotRequest,
  limitsAreConsistent,
  type Encrypted,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import { xml } from "../../src/interop/codec/xml.js";
import {
  phoneNumber,
  type BareJid,
  type DeviceId,
  type MessageId,
  type PhoneNumber,
  type StanzaId,
} from "../../src/util/ids.js";
import { toPublished } from "../../simulator/users/convert.js";
import {
  ALICE,
  BOB,
  child,
  childNamed,
  errorOf,
  PROVIDER,
  providerCrypto,
  type TestProvider,
} from "../simulator/harness.js";
import { ProviderUser, text } from "../simulator/provider-user.js";
import {
  GK,
  PHONE,
  startWorld,
  TRANSPORTS,
  until,
  useTransport,
  type World,
  type WorldOptions,
} from "./setup.js";

const NEW_PHONE = "+491709876543" as PhoneNumber;
const randomId = (): string => randomBytes(8).toString("hex");

/** The next queued delivery (with a stanza-id) carrying `name`, received after `from`. */
const delivery = (p: TestProvider, name: string, from = 0): Promise<XmlElement> =>
  p.waitFor(
    (s) =>
      s.name === "message" &&
      childNamed(s, "stanza-id") !== undefined &&
      childNamed(s, name) !== undefined,
    8000,
    from,
  );

for (const transport of TRANSPORTS) {
  describe(`conformance §20.2 gatekeeper MUST (${transport})`, function () {
    this.timeout(20_000);
    const server = useTransport(transport);
    let world: World;
    let provider: TestProvider;
    let alice: ProviderUser;

    const open = async (options: WorldOptions = {}): Promise<void> => {
      world = await startWorld(transport, server.service(), options);
      ({ provider, alice } = await world.provider());
    };
    afterEach(async function () {
      await world?.close();
    });
    const outcome = (s: XmlElement) => provider.outcome(s);
    const codeOf = async (phone: PhoneNumber): Promise<string> => {
      const found = await world.sim.gatekeeper.services.identity.latestCode(phone);
      assert.ok(found !== undefined, `no code for ${phone}`);
      return found.code;
    };
    const requestCode = (phone: PhoneNumber, from = ALICE) =>
      provider.iq("set", encodeRequestCode({ phone, channel: "sms", lang: undefined }), { from });
    const confirm = (phone: PhoneNumber, code: string, from = ALICE) =>
      provider.iq("set", encodeConfirmCode({ phone, code }), { from });

    it("G1: without hello state answers hello-required and asks for hello", async function () {
      await open();
      const mark = provider.received.length;
      await world.sim.gatekeeper.run(() =>
        world.sim.gatekeeper.services.hello.forget(PROVIDER.domain),
      );
      const request = await provider.waitFor(
        (s) => s.name === "message" && childNamed(s, "hello-request") !== undefined,
        5000,
        mark,
      );
      assert.equal(request.attrs.from, "wa.example");
      const ping = errorOf(await provider.iq("get", encodePing(), { from: PROVIDER.domain }));
      assert.deepEqual([ping.condition, ping.app?.name], ["not-authorized", "hello-required"]);
    });

    it("G2: answers hello with features, consistent limits and media origins; refuses wrong ids and majors; bounces oversize with too-large", async function () {
      await open({ media: true });
      const hello = decodeHelloResult(child(await provider.hello()));
      assert.ok(limitsAreConsistent(effectiveLimits(hello)));
      assert.deepEqual(hello.mediaOrigins, [world.sim.media?.origin]);
      const wrong = errorOf(
        await provider.iq(
          "get",
          encodeHelloRequest({ version: "0.2", provider: "someone-else", features: [] }),
          { from: PROVIDER.domain },
        ),
      );
      assert.equal(wrong.app?.name, "not-enlisted");
      const major = errorOf(
        await provider.iq(
          "get",
          encodeHelloRequest({ version: "1.0", provider: PROVIDER.id, features: [] }),
          { from: PROVIDER.domain },
        ),
      );
      assert.equal(major.app?.name, "unsupported-version");
      const { stanza } = await alice.message(GK, text("x"));
      stanza.children.push(xml("padding", { xmlns: "urn:example:pad" }, "p".repeat(270_000)));
      const size = errorOf(await outcome(stanza));
      assert.deepEqual([size.condition, size.app?.name], ["policy-violation", "too-large"]);
    });

    it("G3: sends 6-digit codes valid 600 s; 5 attempts per code with attempts-left 0 on the 5th", async function () {
      await open();
      const sent = decodeCodeSent(child(await requestCode(NEW_PHONE)));
      assert.equal(sent.length, 6);
      assert.equal(sent.expires.getTime(), world.clock.now() + 600_000);
      const code = await codeOf(NEW_PHONE);
      assert.match(code, /^\d{6}$/);
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
      const lefts: string[] = [];
      for (let i = 0; i < 5; i++)
        lefts.push(String(errorOf(await confirm(NEW_PHONE, wrong)).app?.attrs["attempts-left"]));
      assert.deepEqual(lefts, ["4", "3", "2", "1", "0"]);
      assert.equal(errorOf(await confirm(NEW_PHONE, code)).app?.name, "code-expired");
    });

    it("G4: binds a number to one JID and notifies the previous one with <unbound>", async function () {
      await open();
      await requestCode(NEW_PHONE);
      await confirm(NEW_PHONE, await codeOf(NEW_PHONE));
      await requestCode(NEW_PHONE, BOB);
      const mark = provider.received.length;
      assert.equal(child(await confirm(NEW_PHONE, await codeOf(NEW_PHONE), BOB)).name, "bound");
      const note = await provider.waitFor(
        (s) => childNamed(s, "unbound") !== undefined,
        5000,
        mark,
      );
      assert.equal(note.attrs.to, ALICE);
      assert.equal(childNamed(note, "unbound")?.attrs.reason, "rebound");
    });

    it("G5: refuses invalid handles (number-like, hidden characters)", async function () {
      await open();
      assert.equal(
        (await provider.iq("set", encodeProfile({ handle: "alice:matrix.bridge.example" }))).attrs
          .type,
        "result",
      );
      for (const bad of ["+alice", "al\u200bice", "bob12345"]) {
        const e = errorOf(await provider.iq("set", encodeProfile({ handle: bad }), { from: BOB }));
        assert.equal(e.app?.name, "handle-invalid", bad);
      }
    });

    it("G6: answers not-reachable identically for unknown numbers, opted-out users and users without devices", async function () {
      await open();
      const { stanza } = await alice.message(GK, text("x"));
      const describe = (s: XmlElement): string => {
        const e = errorOf(s);
        return JSON.stringify({ condition: e.condition, type: e.type, app: e.app?.toString() });
      };
      const answers: string[] = [];
      const unknown = xml(
        "message",
        { ...stanza.attrs, to: "491705550000@wa.example" },
        ...(stanza.children as XmlElement[]),
      );
      answers.push(describe(await outcome(unknown)));
      await world.sim.users.setOptIn(PHONE, false, null);
      answers.push(describe(await outcome(stanza)));
      await world.sim.users.setOptIn(PHONE, true, null);
      for (const d of await world.sim.users.activeDevices(PHONE))
        await world.sim.users.removeDevice(PHONE, d);
      answers.push(describe(await outcome(stanza)));
      assert.equal(new Set(answers).size, 1, answers.join("\n"));
      assert.match(answers[0]!, /not-reachable/);
    });

    it("G7: answers lookups only with reachable or not-reachable and enforces the quota", async function () {
      await open({ limits: { "lookups-per-day-unverified": 2 } });
      const lookup = (phones: string[]) =>
        provider.iq("get", encodeLookupRequest({ phones }), { from: ALICE });
      const result = decodeLookupResult(child(await lookup([PHONE, "+491709999999"])));
      assert.deepEqual(
        result.map((r) => r.status),
        ["reachable", "not-reachable"],
      );
      const over = errorOf(await lookup(["+491700000003"]));
      assert.deepEqual([over.condition, over.app?.attrs.scope], ["resource-constraint", "lookup"]);
    });

    it("G8: holds request-messages, then request-pending; sends <request-accepted> on accept; refused after decline", async function () {
      await open({ limits: { "request-messages": 1 } });
      assert.equal(
        child(await outcome((await alice.message(GK, text("1"))).stanza)).name,
        "accepted",
      );
      const pending = errorOf(await outcome((await alice.message(GK, text("2"))).stanza));
      assert.equal(pending.type, "wait");
      const mark = provider.received.length;
      await world.sim.users.acceptRequest(PHONE, alice.jid);
      const note = await delivery(provider, "request-accepted", mark);
      assert.equal(childNamed(note, "request-accepted")?.attrs.jid, GK);
      const other = phoneNumber("+491702222222");
      await world.sim.users.create({ phone: other, devices: 1 });
      const otherJid = world.sim.users.jidOf(other);
      assert.equal(
        child(await outcome((await alice.message(otherJid, text("hi"))).stanza)).name,
        "accepted",
      );
      await world.sim.users.declineRequest(other, alice.jid);
      const refused = errorOf(await outcome((await alice.message(otherJid, text("3"))).stanza));
      assert.equal(refused.app?.name, "refused");
    });

    it("G9: verifies prekey signatures on publish", async function () {
      await open();
      const bundle = toPublished(alice.bundle);
      const sig = new Uint8Array(bundle.signedPreKey.signature);
      sig[0] = sig[0]! ^ 1;
      const bad = { ...bundle, signedPreKey: { ...bundle.signedPreKey, signature: sig } };
      const e = errorOf(await provider.iq("set", encodePublishedBundle(bad), { from: ALICE }));
      assert.equal(e.app?.name, "bad-signature");
    });

    it("G10: hands out each one-time prekey at most once", async function () {
      await open();
      const seen = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const { bundles } = decodeBundlesResult(
          child(await provider.iq("get", encodeBundlesFetch(GK), { from: ALICE })),
        );
        for (const b of bundles) {
          assert.ok(b.preKey !== undefined && b.kyberPreKey !== undefined);
          const key = `${b.device}/${b.preKey.id}`;
          assert.ok(!seen.has(key), `${key} handed out twice`);
          seen.add(key);
          assert.notEqual(b.kyberPreKey.lastResort, true, "one-time Kyber before last resort");
        }
      }
    });

    it("G11: sends devices-changed to a provider user who fetched keys when a device is added", async function () {
      await open();
      await alice.fetchDevices(GK);
      const mark = provider.received.length;
      const added = await world.sim.users.addDevice(PHONE);
      const note = decodeDevicesChanged(
        childNamed(await delivery(provider, "devices-changed", mark), "devices-changed") as never,
      );
      assert.equal(note.jid, GK);
      assert.equal(note.devices.find((d) => d.id === added)?.change, "added");
    });

    it("G12: rejects unencrypted content and stale device coverage", async function () {
      await open();
      const { stanza } = await alice.message(GK, text("x"));
      const plain = xml(
        "message",
        stanza.attrs as Record<string, string>,
        ...(stanza.children as XmlElement[]),
        xml("body", {}, "plain"),
      );
      assert.equal(errorOf(await outcome(plain)).app?.name, "unencrypted");
      const devices = await alice.fetchDevices(GK);
      const partial = await alice.message(GK, text("y"), { devices: devices.slice(0, 1) });
      assert.equal(errorOf(await outcome(partial.stanza)).app?.name, "stale-device-list");
    });

    it("G13: answers a message with exactly one <accepted>, from the service JID to the sending full JID", async function () {
      await open();
      const { stanza, originId } = await alice.message(GK, text("x"));
      const mark = provider.received.length;
      const answer = await outcome(stanza);
      assert.equal(answer.attrs.from, "wa.example");
      assert.equal(answer.attrs.to, alice.full);
      assert.equal(decodeAccepted(child(answer)).originId, originId);
      await new Promise((r) => setTimeout(r, 150));
      const answers = provider.received
        .slice(mark)
        .filter(
          (s) =>
            childNamed(s, "accepted")?.attrs["origin-id"] === originId || s.attrs.id === originId,
        );
      assert.equal(answers.length, 1);
    });

    it("G14: repeats the original <accepted> for a duplicate and delivers once", async function () {
      await open();
      const { stanza, originId } = await alice.message(GK, text("x"));
      const first = decodeAccepted(child(await outcome(stanza)));
      assert.deepEqual(decodeAccepted(child(await outcome(stanza))), first);
      await until(
        async () => (await world.sim.users.received(PHONE, "message")).length === 1,
        "delivered",
      );
      await new Promise((r) => setTimeout(r, 100));
      const got = await world.sim.users.received(PHONE, "message");
      assert.deepEqual(
        got.map((g) => (g.data as { originId: string }).originId),
        [originId],
      );
    });

    it("G15: redelivers an unacked delivery with the same stanza-id and <meta> after ack-timeout", async function () {
      await open({ limits: { "ack-timeout-seconds": 10 } });
      await world.sim.users.send(PHONE, alice.jid, text("one"));
      const first = await delivery(provider, "encrypted");
      assert.ok(childNamed(first, "meta") !== undefined);
      const mark = provider.received.length;
      world.clock.advance(11_000);
      await world.sim.tick();
      const again = await delivery(provider, "encrypted", mark);
      assert.equal(
        childNamed(again, "stanza-id")?.attrs.id,
        childNamed(first, "stanza-id")?.attrs.id,
      );
    });

    it("G16: assigns strictly increasing per-conversation seq", async function () {
      await open();
      const seqs: number[] = [];
      for (const t of ["a", "b", "c"]) {
        seqs.push(
          Number(
            decodeAccepted(child(await outcome((await alice.message(GK, text(t))).stanza))).seq,
          ),
        );
      }
      const sent = await world.sim.users.send(PHONE, alice.jid, text("d"));
      seqs.push(Number(sent.seq));
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, seqs.join(","));
    });

    it("G17: bounces a 1:1 receipt whose author is not the recipient and forwards a valid one", async function () {
      await open();
      const sent = await world.sim.users.send(PHONE, alice.jid, text("hi"));
      await delivery(provider, "encrypted");
      const receipt = (author: BareJid) =>
        buildReceipt({
          type: "chat",
          originId: `rc-${randomBytes(4).toString("hex")}` as MessageId,
          from: alice.full,
          to: GK,
          receipts: [{ id: sent.originId, author }],
        });
      assert.equal(errorOf(await outcome(receipt(alice.jid))).condition, "bad-request");
      assert.equal(child(await outcome(receipt(GK))).name, "accepted");
      await until(
        async () => (await world.sim.users.received(PHONE, "receipt")).length === 1,
        "the receipt forwarded",
      );
    });

    it("G18: block of a valid JID succeeds and applies to 1:1 messages", async function () {
      await open();
      const blocked = await provider.iq("set", encodeBlockList("block", [GK]), { from: ALICE });
      assert.equal(blocked.attrs.type, "result");
      await world.sim.users.send(PHONE, alice.jid, text("are you there"));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(
        provider.received.some((s) => childNamed(s, "encrypted") !== undefined),
        false,
      );
      assert.equal(
        (await provider.iq("set", encodeBlockList("unblock", [GK]), { from: ALICE })).attrs.type,
        "result",
      );
    });

    it("G19: accepts a report with up to 5 disclosed messages", async function () {
      await open();
      const message = (i: number) => ({
        originId: `m${i}` as MessageId,
        stanzaId: undefined,
        stamp: undefined,
        from: GK,
        envelopeData: Buffer.from(`<envelope n='${i}'/>`),
      });
      const report = (n: number) =>
        encodeReport({
          jid: GK,
          reason: "spam",
          block: false,
          text: undefined,
          messages: Array.from({ length: n }, (_, i) => message(i)),
        });
      assert.equal((await provider.iq("set", report(5), { from: ALICE })).attrs.type, "result");
    });

    it("G20: rate-limits with rate-limited and retry-after", async function () {
      await open({ limits: { "messages-per-minute": 2 } });
      await world.sim.users.acceptRequest(PHONE, alice.jid);
      for (let i = 0; i < 2; i++)
        assert.equal(
          child(await outcome((await alice.message(GK, text(`m${i}`))).stanza)).name,
          "accepted",
        );
      const e = errorOf(await outcome((await alice.message(GK, text("too many"))).stanza));
      assert.equal(e.app?.name, "rate-limited");
      assert.ok(Number(e.app?.attrs["retry-after"]) >= 1);
    });

    it("G21: issues upload slots in the announced origin, accepts a PUT of exact size and serves GET", async function () {
      await open({ media: true });
      const slot = decodeSlot(
        child(await provider.iq("get", encodeSlotRequest({ kind: "document", size: 64 }))),
      );
      assert.ok(slot.put.url.startsWith(String(world.sim.media?.origin)));
      const blob = randomBytes(64);
      const headers = Object.fromEntries(slot.put.headers.map((h) => [h.name, h.value]));
      const put = await fetch(slot.put.url, {
        method: "PUT",
        body: blob,
        headers,
        redirect: "manual",
      });
      assert.ok(put.ok, `PUT answered ${put.status}`);
      const got = Buffer.from(await (await fetch(slot.get.url)).arrayBuffer());
      assert.deepEqual(got, blob);
    });

    it("G22: groups: membership, admin rights, add rules, versioned events, fan-out with <sender> and only the recipient's keys, retries only from then-members", async function () {
      await open();
      const groupIq = (from: string, to: string, type: "get" | "set", el: XmlElement) =>
        provider.iq(type, el, { from, to });
      // Add rules: an unknown number is rejected, the WhatsApp user is added; Alice is admin.
      const created = await groupIq(
        ALICE,
        "g.wa.example",
        "set",
        encodeCreate({
          subject: "G22",
          participants: [GK, "491700000009@wa.example" as BareJid],
        }),
      );
      const g = decodeGroupInfo(child(created));
      assert.deepEqual(
        g.rejected.map((r) => r.reason),
        ["not-reachable"],
      );
      assert.deepEqual(
        g.participants.map((p) => [p.jid, p.role]),
        [
          [ALICE, "admin"],
          [GK, "member"],
        ],
      );
      const createdEvent = await delivery(provider, "event");
      assert.equal(createdEvent.attrs.from, g.jid);
      assert.equal(childNamed(createdEvent, "event")?.attrs.version, "1");
      // Membership: a non-member is refused; admin rights: the WhatsApp member cannot add.
      const outsider = errorOf(await groupIq(BOB, g.jid, "get", encodeGroupInfoQuery()));
      assert.equal(outsider.app?.name, "not-member");
      await assert.rejects(
        world.sim.users.changeGroup(PHONE, g.jid, { op: "add", participants: [BOB as BareJid] }),
        /not an admin/,
      );
      // Fan-out: the WhatsApp member sends with sender keys; Alice gets <sender> and only her keys.
      const mark = provider.received.length;
      await world.sim.users.sendToGroup(PHONE, g.jid, text("g22"));
      const fanned = await provider.waitFor(
        (s) => s.attrs.from === g.jid && childNamed(s, "encrypted") !== undefined,
        8000,
        mark,
      );
      const m = classifyMessage(fanned);
      assert.equal(m.sender?.jid, GK);
      assert.equal(m.stanzaId?.by, "g.wa.example");
      const e = m.payload.kind === "encrypted" ? m.payload.encrypted : undefined;
      assert.deepEqual(
        e?.keyGroups.map((k) => k.jid),
        [ALICE],
      );
      // Retry from a then-member goes to the author's device; a later member's is forbidden.
      const retry = buildRetryRequest({
        type: "groupchat",
        originId: "g22-retry" as MessageId,
        from: alice.full,
        to: g.jid,
        retry: {
          id: m.originId as MessageId,
          count: 1,
          registration: alice.device.registrationId,
          reason: "no-sender-key",
          author: { jid: GK, device: m.sender?.device as never },
        },
      });
      assert.ok(childNamed(await outcome(retry), "accepted"));
      const notMember = buildRetryRequest({
        type: "groupchat",
        originId: "g22-retry-2" as MessageId,
        from: alice.full,
        to: g.jid,
        retry: {
          id: "never" as MessageId,
          count: 1,
          registration: alice.device.registrationId,
          reason: "no-sender-key",
          author: { jid: GK, device: m.sender?.device as never },
        },
      });
      assert.equal(errorOf(await outcome(notMember)).condition, "forbidden");
      // Versioned events: a subject change is version 2.
      const mark2 = provider.received.length;
      await groupIq(ALICE, g.jid, "set", encodeSubjectChange("G22 again"));
      const changed = await delivery(provider, "event", mark2);
      assert.deepEqual(
        [childNamed(changed, "event")?.attrs.type, childNamed(changed, "event")?.attrs.version],
        ["subject-changed", "2"],
      );
    });

    describe("group parts of G12, G16, G17, G23 and G25 (§17)", function () {
      let bob: ProviderUser;
      let bobKnex: { destroy(): Promise<void> } | undefined;
      let group: BareJid;
      afterEach(async function () {
        await bobKnex?.destroy();
        bobKnex = undefined;
      });
      const groupMessage = (u: ProviderUser, e: Partial<Encrypted>, originId = randomId()) =>
        buildEncryptedMessage({
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
      const fromGroupTo = (to: string, name: string, mark: number) =>
        provider.waitFor(
          (s) => s.attrs.from === group && s.attrs.to === to && childNamed(s, name) !== undefined,
          8000,
          mark,
        );
      const openGroup = async (): Promise<void> => {
        await open();
        const { crypto, knex } = await providerCrypto(world.clock.now);
        bobKnex = knex;
        bob = await ProviderUser.create(crypto, provider, BOB);
        await bob.publish();
        group = (
          await world.sim.users.createGroup(PHONE, "conf", [ALICE as BareJid, BOB as BareJid])
        ).jid;
      };
      const ct = new Uint8Array([1, 2, 3]);
      const key = (rid: number) => ({ rid: rid as DeviceId, kex: false, ciphertext: ct });

      it("G12 (groups): keeps only the recipient's <keys>, dropping the sender's and non-members'", async function () {
        await openGroup();
        const mark = provider.received.length;
        const s = groupMessage(alice, {
          keyGroups: [
            { jid: BOB as BareJid, keys: [key(1)] },
            { jid: ALICE as BareJid, keys: [key(1)] },
            { jid: "mallory@matrix.bridge.example" as BareJid, keys: [key(1)] },
          ],
          group: ct,
        });
        assert.ok(childNamed(await outcome(s), "accepted"));
        const toBob = await fromGroupTo(BOB, "encrypted", mark);
        const m = classifyMessage(toBob);
        assert.deepEqual(
          m.payload.kind === "encrypted" && m.payload.encrypted.keyGroups.map((g) => g.jid),
          [BOB],
        );
      });

      it("G16 (groups): one strictly increasing seq across all senders of a group", async function () {
        await openGroup();
        const a = decodeAccepted(child(await outcome(groupMessage(alice, { group: ct }))));
        const b = decodeAccepted(child(await outcome(groupMessage(bob, { group: ct }))));
        const c = await world.sim.users.sendToGroup(PHONE, group, text("from wa"));
        const seqs = [Number(a.seq), Number(b.seq), Number(c.seq)];
        assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!, seqs.join(","));
        assert.equal(a.conversation, group);
      });

      it("G17 (groups): forwards receipts and markers only to the author, with <sender>", async function () {
        await openGroup();
        const originId = randomId();
        await outcome(groupMessage(alice, { group: ct }, originId));
        const mark = provider.received.length;
        const ref = { id: originId as MessageId, author: ALICE as BareJid };
        await world.sim.users.sendGroupTransport(PHONE, group, {
          kind: "receipt",
          receipts: [ref],
        });
        await world.sim.users.sendGroupTransport(PHONE, group, { kind: "displayed", marker: ref });
        const receipt = await fromGroupTo(ALICE, "received", mark);
        const marker = await fromGroupTo(ALICE, "displayed", mark);
        for (const s of [receipt, marker]) assert.equal(classifyMessage(s).sender?.jid, GK);
        await new Promise((r) => setTimeout(r, 150));
        assert.ok(
          !provider.received
            .slice(mark)
            .some((s) => s.attrs.to === BOB && childNamed(s, "received") !== undefined),
        );
      });

      it("G23 (groups): strips a provider-supplied <sender> and <stanza-id> from group deliveries", async function () {
        await openGroup();
        const mark = provider.received.length;
        const s = groupMessage(alice, { group: ct });
        s.children.push(
          xml("sender", { xmlns: "urn:interop:groups:0", jid: GK, device: "1" }),
          xml("stanza-id", { xmlns: "urn:xmpp:sid:0", id: "forged", by: "g.wa.example" }),
        );
        // A forged <sender> names device 1, which matches the header: the codec accepts it.
        assert.ok(childNamed(await outcome(s), "accepted"));
        const toBob = await fromGroupTo(BOB, "encrypted", mark);
        const m = classifyMessage(toBob);
        assert.equal(m.sender?.jid, ALICE);
        assert.notEqual(m.stanzaId?.id, "forged");
        assert.equal(
          toBob.children.filter((c) => typeof c !== "string" && c.name === "sender").length,
          1,
        );
      });

      it("G25 (groups): forbids a retry from a user who was not a member when the message was accepted", async function () {
        await openGroup();
        await world.sim.users.changeGroup(PHONE, group, {
          op: "remove",
          participants: [BOB as BareJid],
        });
        const originId = randomId();
        await outcome(groupMessage(alice, { group: ct }, originId));
        await world.sim.users.changeGroup(PHONE, group, {
          op: "add",
          participants: [BOB as BareJid],
        });
        const retry = buildRetryRequest({
          type: "groupchat",
          originId: randomId() as MessageId,
          from: bob.full,
          to: group,
          retry: {
            id: originId as MessageId,
            count: 1,
            registration: bob.device.registrationId,
            reason: "no-sender-key",
            author: { jid: ALICE as BareJid, device: 1 as DeviceId },
          },
        });
        const e = errorOf(await outcome(retry));
        assert.deepEqual([e.condition, e.type], ["forbidden", "cancel"]);
      });
    });

    it("G23: builds deliveries only from the §15.9 elements, with stanza-ids of at least 64 random bits", async function () {
      await open();
      await world.sim.users.send(PHONE, alice.jid, text("one"));
      await world.sim.users.send(PHONE, alice.jid, text("two"));
      await until(
        () =>
          provider.received.filter((s) => childNamed(s, "encrypted") !== undefined).length === 2,
        "two deliveries",
      );
      const deliveries = provider.received.filter((s) => childNamed(s, "encrypted") !== undefined);
      for (const d of deliveries) {
        const names = d.children
          .filter((c): c is XmlElement => typeof c !== "string")
          .map((c) => c.name);
        for (const n of names)
          assert.ok(["encrypted", "origin-id", "stanza-id", "meta", "store"].includes(n), n);
        assert.ok(String(childNamed(d, "stanza-id")?.attrs.id).length >= 13);
      }
      assert.notEqual(
        childNamed(deliveries[0]!, "stanza-id")?.attrs.id,
        childNamed(deliveries[1]!, "stanza-id")?.attrs.id,
      );
    });

    it("G24: counts an ack only from the provider domain JID", async function () {
      await open({ limits: { "ack-timeout-seconds": 10 } });
      await world.sim.users.send(PHONE, alice.jid, text("x"));
      const d = await delivery(provider, "encrypted");
      const id = String(childNamed(d, "stanza-id")?.attrs.id) as StanzaId;
      await provider.send(
        xml("message", { id: "ack-user", from: ALICE, to: "wa.example" }, encodeAck([id])),
      );
      const mark = provider.received.length;
      world.clock.advance(11_000);
      await world.sim.tick();
      assert.equal(
        childNamed(await delivery(provider, "encrypted", mark), "stanza-id")?.attrs.id,
        id,
      );
      await provider.send(
        xml(
          "message",
          { id: "ack-domain", from: PROVIDER.domain, to: "wa.example" },
          encodeAck([id]),
        ),
      );
      await until(
        async () => (await world.sim.gatekeeper.services.queue.depth()) === 0 || false,
        "the queue drained",
        3000,
      ).catch(() => undefined);
      const mark2 = provider.received.length;
      world.clock.advance(11_000);
      await world.sim.tick();
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(
        provider.received.slice(mark2).filter((s) => childNamed(s, "encrypted") !== undefined)
          .length,
        0,
      );
    });

    it("G25: answers a retry request for a message the device never sent with forbidden", async function () {
      await open();
      await world.sim.users.send(PHONE, alice.jid, text("x"));
      const original = await delivery(provider, "encrypted");
      const sender = Number(String(original.attrs.from).split("/")[1]);
      const retry = buildRetryRequest({
        type: "chat",
        originId: "r-never" as MessageId,
        from: alice.full,
        to: `${GK}/${sender}`,
        retry: {
          id: "never-sent" as MessageId,
          count: 1,
          registration: alice.device.registrationId,
          reason: "decrypt-failed",
          author: undefined,
        },
      });
      const e = errorOf(await outcome(retry));
      assert.deepEqual([e.condition, e.type], ["forbidden", "cancel"]);
    });

    it("G26: answers a repeated IQ id from memory without executing it again", async function () {
      await open();
      const request = () =>
        encodeRequestCode({ phone: NEW_PHONE, channel: "sms", lang: undefined });
      const first = await provider.iq("set", request(), { id: "same-id" });
      assert.equal(first.attrs.type, "result");
      const again = await provider.iq("set", request(), { id: "same-id" });
      assert.equal(again.toString(), first.toString());
      assert.equal(
        errorOf(await provider.iq("set", request(), { id: "other-id" })).app?.attrs.scope,
        "verification",
      );
    });

    it("G27: answers an IQ with unknown payload with service-unavailable and treats invalid base64 as malformed", async function () {
      await open();
      const unknown = errorOf(
        await provider.iq("get", xml("frobnicate", { xmlns: "urn:example:x" })),
      );
      assert.equal(unknown.condition, "service-unavailable");
      const bundle = encodePublishedBundle(toPublished(alice.bundle));
      const identity = childNamed(bundle, "identity")!;
      identity.children = ["not*base64!"];
      assert.equal(
        errorOf(await provider.iq("set", bundle, { from: ALICE })).condition,
        "bad-request",
      );
    });

    it("G28: its clients decrypt, verify the envelope and send <received> with author = the sender", async function () {
      await open();
      const { stanza, originId } = await alice.message(GK, text("hello wa"));
      await outcome(stanza);
      const receipt = await delivery(provider, "received");
      const m = classifyMessage(receipt);
      assert.equal(m.payload.kind, "receipt");
      assert.equal(childNamed(receipt, "received")?.attrs.id, originId);
      assert.equal(childNamed(receipt, "received")?.attrs.author, alice.jid);
      assert.equal((await world.sim.users.received(PHONE, "discarded")).length, 0);
    });
  });
}
