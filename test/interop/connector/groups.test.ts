import assert from "node:assert/strict";
import type { RemoteEvent, RemoteGroupId, RemoteUserId } from "../../../src/core/network.js";
import type { InteropLogin } from "../../../src/interop/connector/login.js";
import { memberDisplayName } from "../../../src/interop/connector/groups.js";
import { decodeEncrypted } from "../../../src/interop/codec/e2ee.js";
import { NS } from "../../../src/interop/codec/namespaces.js";
import { optionalChild } from "../../../src/interop/codec/read.js";
import { parseXml } from "../../../src/interop/codec/xml.js";
import type { SignalCrypto } from "../../../src/interop/crypto/signal-crypto.js";
import { NoSenderKeyError } from "../../../src/interop/crypto/errors.js";
import { BridgeError } from "../../../src/util/errors.js";
import { GatekeeperError } from "../../../src/interop/provider/errors.js";
import { randomUUID } from "node:crypto";
import { SIMULATOR_FEATURES } from "../../../simulator/config.js";
import { classifyMessage } from "../../../src/interop/codec/message.js";
import { buildEncryptedMessage } from "../../../src/interop/codec/message-builders.js";
import { decodeEnvelope, encodeEnvelope, rpadSource } from "../../../src/interop/codec/envelope.js";
import type { ContentElement } from "../../../src/interop/codec/content.js";
import {
  childNamed,
  OTHER_PROVIDER,
  providerCrypto,
  TestProvider,
} from "../../simulator/harness.js";
import { ProviderUser } from "../../simulator/provider-user.js";
import {
  matrixUserId,
  messageId,
  phoneNumber,
  type BareJid,
  type DeviceId,
  type MessageId,
  type PhoneNumber,
} from "../../../src/util/ids.js";
import { buildConnector, eventually, RecordingCore, startWorld, type World } from "./harness.js";

const text = (t: string) => ({ type: "text" as const, text: { text: t, spans: [] } });
const body = (t: string) => [{ kind: "body" as const, text: t }];

for (const backend of ["sqlite", "postgres"] as const)
  describe(`interop groups against the gatekeeper simulator (§17) [${backend}]`, function () {
    this.timeout(30_000);
    let world: World;
    let login: InteropLogin;
    const alice = matrixUserId("@alice:example.org");
    const alicePhone = phoneNumber("+491709876543");
    const bobPhone = phoneNumber("+491701234567");
    const danPhone = phoneNumber("+491705550000");
    let bob: RemoteUserId;
    let dan: RemoteUserId;

    beforeEach(async function () {
      world = await startWorld({ "verification-interval-seconds": 0 }, [], backend);
      await world.sim.users.create({ phone: bobPhone, devices: 1 });
      await world.sim.users.create({ phone: danPhone, devices: 1 });
      bob = world.sim.users.jidOf(bobPhone) as string as RemoteUserId;
      dan = world.sim.users.jidOf(danPhone) as string as RemoteUserId;
      const process = world.connector.createLogin(alice, "phone");
      await process.start();
      await process.submit("phone", { phone: alicePhone });
      const sent = await world.sim.gatekeeper.services.identity.latestCode(alicePhone);
      const done = await process.submit("code", { code: sent?.code ?? "" });
      login = done.type === "complete" ? (done.login as InteropLogin) : assert.fail();
    });

    afterEach(async function () {
      await world.stop();
    });

    const events = <K extends RemoteEvent["kind"]>(kind: K) => world.core.of(kind);
    const received = async (phone: typeof bobPhone, originId: string) =>
      (await world.sim.users.received(phone, "message")).find(
        (e) => e.data["originId"] === originId,
      );
    const messageFrom = (from: RemoteUserId, t: string) =>
      events("message").find(
        (e) => e.from === from && e.content.type === "text" && e.content.text.text === t,
      );
    /** The outbox stanza of one of our messages, as stored (its exact bytes). */
    async function outboxEncrypted(originId: string) {
      const row = (await world.db.db.knex("outbox").where({ origin_id: originId }).first()) as {
        stanza: string;
      };
      const el = optionalChild(parseXml(row.stanza), "encrypted", NS.e2ee);
      return decodeEncrypted(el ?? assert.fail("no <encrypted>"));
    }

    it("creates a group, sends into it with one sender-key encryption, and gets the members' replies with the group", async function () {
      assert.equal(login.selfId(), login.self);
      assert.equal(login.maxGroupSize(), 256);
      const { info, rejected } = await login.createGroup("Trip", [bob, dan]);
      assert.deepEqual(rejected, []);
      assert.equal(info.subject, "Trip");
      assert.deepEqual(
        info.members.map((m) => [m.id, m.admin, m.displayName]).sort(),
        [
          [bob, false, "+491701234567"],
          [dan, false, "+491705550000"],
          [login.self, true, memberDisplayName(login.self)],
        ].sort(),
      );
      const group = info.id;
      // The "created" notification reaches the core as the group's snapshot, not as a request.
      await eventually(
        async () => events("group-info").some((e) => e.group === group),
        "group-info",
      );
      assert.equal(events("group-info").find((e) => e.group === group)?.addedBy, undefined);

      const id = await login.sendMessage(group, text("hello group"));
      await eventually(async () => (await received(bobPhone, id)) !== undefined, "bob got it");
      await eventually(async () => (await received(danPhone, id)) !== undefined, "dan got it");
      assert.deepEqual((await received(bobPhone, id))?.data["content"], body("hello group"));
      // Every member device got the sender key in the header, and the text is one <group> payload.
      const first = await outboxEncrypted(id);
      assert.ok(first.group !== undefined);
      assert.deepEqual(first.keyGroups.map((g) => g.jid).sort(), [bob, dan].sort());
      // The next message carries no keys: both hold the current sender key.
      const second = await login.sendMessage(group, text("again"));
      await eventually(async () => (await received(bobPhone, second)) !== undefined, "second");
      assert.deepEqual((await outboxEncrypted(second)).keyGroups, []);

      await world.sim.users.sendToGroup(bobPhone, group as string as BareJid, body("hi from bob"));
      await eventually(async () => messageFrom(bob, "hi from bob") !== undefined, "bob's message");
      assert.equal(messageFrom(bob, "hi from bob")?.group, group);
      assert.equal(messageFrom(bob, "hi from bob")?.isRequest, false);
    });

    it("reports membership and subject changes in version order, and a removal rotates the sender key so the removed member cannot read on", async function () {
      const { info } = await login.createGroup("Trip", [bob, dan]);
      const group = info.id;
      const groupJid = group as string as BareJid;
      const before = await login.sendMessage(group, text("before"));
      await eventually(async () => (await received(danPhone, before)) !== undefined, "dan got it");

      // Bob is no admin: his subject change is refused, the login's own goes through.
      await assert.rejects(
        world.sim.users.changeGroup(bobPhone, groupJid, { op: "subject", subject: "x" }),
      );
      await login.setGroupSubject(group, "Trip 2");
      await login.setGroupAdmins(group, [bob], true);
      await world.sim.users.changeGroup(bobPhone, groupJid, {
        op: "remove",
        participants: [dan as string as BareJid],
      });
      await eventually(
        async () => events("group-change").some((e) => e.change === "removed"),
        "removed",
      );
      const subject = events("group-subject").find((e) => e.group === group);
      assert.equal(subject?.subject, "Trip 2");
      const promoted = events("group-change").find((e) => e.change === "promoted");
      const removed = events("group-change").find((e) => e.change === "removed");
      assert.deepEqual(
        promoted?.members.map((m) => [m.id, m.admin]),
        [[bob, true]],
      );
      assert.equal(removed?.by, bob);
      assert.deepEqual(
        removed?.members.map((m) => m.id),
        [dan],
      );
      const versions = [subject!.version, promoted!.version, removed!.version];
      assert.deepEqual(
        [...versions].sort((a, b) => a - b),
        versions,
        "in version order",
      );

      const after = await login.sendMessage(group, text("after"));
      await eventually(async () => (await received(bobPhone, after)) !== undefined, "bob reads on");
      // Rotation: bob, who held the old key, got the new one in the header ...
      const stanza = await outboxEncrypted(after);
      assert.deepEqual(
        stanza.keyGroups.map((g) => g.jid),
        [bob],
      );
      // ... and dan's device, holding only the old key, cannot decrypt the new message.
      const simCrypto = (world.sim.users as unknown as { crypto: SignalCrypto }).crypto;
      const [danId] = await world.sim.users.devices.active(dan as string as BareJid);
      const danDevice = await simCrypto.device(dan as string as BareJid, danId ?? assert.fail());
      await assert.rejects(
        danDevice.groups.decrypt(
          groupJid,
          { jid: login.jid, device: 1 as DeviceId },
          stanza.group ?? assert.fail(),
          async (p) => p,
        ),
        (err: unknown) => err instanceof NoSenderKeyError,
      );
      assert.equal(await received(danPhone, after), undefined);
    });

    it("maps refusals to the contract's codes: a non-admin's change is group-not-admin", async function () {
      const info = await world.sim.users.createGroup(bobPhone, "Bob's", [login.jid]);
      const group = info.jid as string as RemoteGroupId;
      // Added by someone else: the snapshot comes with addedBy (a message request).
      await eventually(async () => events("group-info").some((e) => e.group === group), "info");
      assert.equal(events("group-info").find((e) => e.group === group)?.addedBy, bob);
      await assert.rejects(
        login.setGroupSubject(group, "mine"),
        (err: unknown) => err instanceof BridgeError && err.code === "group-not-admin",
      );
      await login.leaveGroup(group);
      await assert.rejects(
        login.groupInfo(group),
        (err: unknown) => err instanceof BridgeError && err.code === "group-not-member",
      );
    });

    it("added later by someone else to a group it did not know: the group is fetched and reported with addedBy", async function () {
      const created = await world.sim.users.createGroup(bobPhone, "Bob's", [
        dan as string as BareJid,
      ]);
      await world.sim.users.changeGroup(bobPhone, created.jid, {
        op: "add",
        participants: [login.jid],
      });
      await eventually(async () => events("group-info").length > 0, "the group");
      const [reported] = events("group-info");
      assert.equal(reported?.addedBy, bob);
      assert.deepEqual(
        reported?.info.members.map((m) => m.id).sort(),
        [bob, dan, login.self].sort(),
      );
      assert.equal(events("group-change").length, 0);
    });

    it("a full group refuses with group-full, on create and on add", async function () {
      await world.stop();
      world = await startWorld(
        { "verification-interval-seconds": 0, "max-group-size": 2 },
        [],
        backend,
      );
      await world.sim.users.create({ phone: bobPhone, devices: 1 });
      await world.sim.users.create({ phone: danPhone, devices: 1 });
      const process = world.connector.createLogin(alice, "phone");
      await process.start();
      await process.submit("phone", { phone: alicePhone });
      const code = await world.sim.gatekeeper.services.identity.latestCode(alicePhone);
      const done = await process.submit("code", { code: code?.code ?? "" });
      login = done.type === "complete" ? (done.login as InteropLogin) : assert.fail();
      await assert.rejects(
        login.createGroup("Too many", [bob, dan]),
        (err: unknown) => err instanceof BridgeError && err.code === "group-full",
      );
      const { info } = await login.createGroup("Two", [bob]);
      await assert.rejects(
        login.addGroupMembers(info.id, [dan]),
        (err: unknown) => err instanceof BridgeError && err.code === "group-full",
      );
    });

    /**
     * A group with Bob made admin, whose stored version went back to 1 as after lost
     * notifications: the next membership event shows a gap.
     */
    async function groupWithVersionGap(): Promise<RemoteGroupId> {
      const { info } = await login.createGroup("Trip", [bob]);
      await eventually(async () => events("group-info").length > 0, "created");
      await login.setGroupAdmins(info.id, [bob], true);
      await eventually(async () => events("group-change").length > 0, "promoted");
      await world.db.db.knex("interop_groups").where({ group_jid: info.id }).update({ version: 1 });
      return info.id;
    }

    it("re-fetches info after a version gap and reports the group whole", async function () {
      const group = await groupWithVersionGap();
      const infos = events("group-info").length;
      await world.sim.users.changeGroup(bobPhone, group as string as BareJid, {
        op: "add",
        participants: [dan as string as BareJid],
      });
      await eventually(async () => events("group-info").length > infos, "refetched");
      const latest = events("group-info").at(-1);
      assert.ok(latest?.info.members.some((m) => m.id === dan));
      assert.equal(events("group-change").filter((e) => e.change === "added").length, 0);
    });

    it("a version gap whose info fetch is refused for good is recorded, not left unacked", async function () {
      const group = await groupWithVersionGap();
      const management = world.connector.engine.groups;
      let calls = 0;
      const refuse = () => {
        calls += 1;
        return Promise.reject(
          new GatekeeperError("group info", { type: "cancel", condition: "item-not-found" }, 0),
        );
      };
      management.info = refuse;
      management.fetchInfo = refuse;
      const seen = async () => Number((await world.db.db.knex("inbox").count({ n: "*" }))[0]?.n);
      const before = await seen();
      await world.sim.users.changeGroup(bobPhone, group as string as BareJid, {
        op: "add",
        participants: [dan as string as BareJid],
      });
      await eventually(async () => calls > 0, "info asked");
      await eventually(async () => (await seen()) > before, "the event recorded");
    });

    it("a crash after a gap's info fetch, before the group is reported, stores nothing: the redelivery still sees the gap", async function () {
      const group = await groupWithVersionGap();
      const inbox = world.connector.engine.inbox;
      const addPending = inbox.addPending.bind(inbox);
      let failed = 0;
      // The process dies where the group-info would be recorded for the core.
      inbox.addPending = (...args) => {
        if (args[1].event.kind === "group-info") {
          failed += 1;
          return Promise.reject(new Error("killed before the commit"));
        }
        return addPending(...args);
      };
      const infos = events("group-info").length;
      await world.sim.users.changeGroup(bobPhone, group as string as BareJid, {
        op: "add",
        participants: [dan as string as BareJid],
      });
      await eventually(async () => failed > 0, "the crash point reached");
      const row = (await world.db.db
        .knex("interop_groups")
        .where({ group_jid: group })
        .first()) as {
        version: number;
      };
      assert.equal(Number(row.version), 1, "the fetched group is not stored without its report");
      assert.equal(events("group-info").length, infos);
    });

    it("a message whose sender key is missing waits, then asks for a group retry and shows the re-send", async function () {
      const { info } = await login.createGroup("Trip", [bob]);
      const group = info.id as string as BareJid;
      await world.sim.users.sendToGroup(bobPhone, group, body("one"));
      await eventually(async () => messageFrom(bob, "one") !== undefined, "first");
      // The bridge loses bob's sender key (as a restore from an old backup would).
      await world.db.db.knex("signal_sender_keys").where({ sender_jid: bob }).delete();
      const sentAt = Date.now();
      await world.sim.users.sendToGroup(bobPhone, group, body("two"));
      await eventually(async () => messageFrom(bob, "two") !== undefined, "re-sent and shown");
      // The retry was asked only after the wait for a distribution (300 ms in these tests).
      const [request] = (await world.db.db.knex("outbox").where({ kind: "retry-request" })) as {
        created_at: number | string;
      }[];
      assert.ok(Number(request?.created_at) - sentAt >= 250, "asked only after the wait");
      assert.equal(messageFrom(bob, "two")?.group, info.id);
      assert.equal(events("undecryptable").length, 0);
    });

    it("a header-only stanza with text that answers no retry of ours is not shown", async function () {
      const { info } = await login.createGroup("Trip", [bob]);
      const group = info.id as string as BareJid;
      await world.sim.users.sendToGroup(bobPhone, group, body("one"));
      await eventually(async () => messageFrom(bob, "one") !== undefined, "first");
      // Bob forges a "distribution stanza" whose header carries text for the login's devices only.
      const bobJid = bob as string as BareJid;
      const sim = world.sim;
      const [bobDevice] = await sim.gatekeeper.services.keys.devicesOf(bobJid);
      const targets = await sim.gatekeeper.services.keys.devicesOf(login.jid);
      const crypto = (sim.users as unknown as { crypto: SignalCrypto }).crypto;
      const device = await crypto.device(bobJid, bobDevice ?? assert.fail("bob has no device"));
      // (The gatekeeper itself refuses retry="n" re-sends it saw no request for.)
      for (const retry of [undefined] as const) {
        const originId = messageId(randomUUID());
        const envelope = encodeEnvelope(
          {
            content: body(`forged ${retry}`),
            id: originId,
            time: new Date(),
            to: group,
            from: bobJid,
          },
          { maxEnvelopeBytes: 65536 },
        );
        const keys = await device.sessions.encryptForDevices(
          Buffer.from(envelope, "utf8"),
          targets.map((d) => ({ jid: login.jid, device: d })),
        );
        await sim.gatekeeper.run(() =>
          sim.gatekeeper.groupMessages.handle(
            {
              group,
              sender: bobJid,
              device: device.deviceId,
              originId,
              replyTo: undefined,
              verified: true,
            },
            {
              kind: "encrypted",
              encrypted: {
                sid: device.deviceId,
                keyGroups: [
                  {
                    jid: login.jid,
                    keys: keys.map((k) => ({ rid: k.rid, kex: k.kex, ciphertext: k.ciphertext })),
                  },
                ],
                group: undefined,
                retry,
              },
            },
          ),
        );
      }
      await world.sim.users.sendToGroup(bobPhone, group, body("after"));
      await eventually(async () => messageFrom(bob, "after") !== undefined, "after");
      assert.equal(messageFrom(bob, "forged undefined"), undefined);
    });

    it("answers a member's group retry with the original envelope and the current sender key", async function () {
      const { info } = await login.createGroup("Trip", [bob]);
      const first = await login.sendMessage(info.id, text("one"));
      await eventually(async () => (await received(bobPhone, first)) !== undefined, "first");
      // Bob's phone loses the login's sender key; the login still counts him as holding it.
      await world.sim.gatekeeper.ctx
        .knex("signal_sender_keys")
        .where({ sender_jid: login.jid })
        .delete();
      const second = await login.sendMessage(info.id, text("two"));
      await eventually(async () => (await received(bobPhone, second)) !== undefined, "re-sent");
      assert.deepEqual((await received(bobPhone, second))?.data["content"], body("two"));
      const answers = (await world.db.db
        .knex("outbox")
        .where({ kind: "retry-answer", origin_id: second })) as { to_jid: string }[];
      assert.deepEqual(
        answers.map((a) => a.to_jid),
        [info.id],
      );
    });

    it("a group message not yet acknowledged when the bridge dies is delivered again to the next run", async function () {
      const { info } = await login.createGroup("Trip", [bob]);
      await eventually(async () => events("group-info").length > 0, "created");
      // The core never finishes with the event: the process dies first.
      world.core.gate = new Promise<void>(() => undefined);
      await world.sim.users.sendToGroup(bobPhone, info.id as string as BareJid, body("in flight"));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(messageFrom(bob, "in flight"), undefined);
      await world.connector.engine.halt();
      const core = new RecordingCore();
      const next = buildConnector(world.sim, world.db, core);
      await next.start();
      try {
        await eventually(
          async () => core.of("message").some((e) => e.group === info.id && e.from === bob),
          "redelivered to the next run",
        );
        assert.equal(core.of("message").length, 1);
      } finally {
        await next.engine.halt();
      }
    });

    /**
     * A world whose stanza limit makes a group's header overflow: one device per user, 1 KiB
     * envelopes, prekeys in small sets (key publishes must fit too); the login and `count` members
     * with numbers starting `prefix`. Returns the members' phones and their group.
     */
    async function bigHeaderGroup(
      maxStanzaBytes: number,
      prefix: string,
      count: number,
      subject: string,
    ): Promise<{ phones: PhoneNumber[]; group: RemoteGroupId }> {
      await world.stop();
      world = await startWorld(
        {
          "verification-interval-seconds": 0,
          "max-devices-per-user": 1,
          "max-envelope-bytes": 1024,
          "max-stanza-bytes": maxStanzaBytes,
          "max-ec-prekeys-per-publish": 10,
          "max-kyber-prekeys-per-publish": 2,
        },
        [],
        backend,
      );
      const phones = Array.from({ length: count }, (_, i) =>
        phoneNumber(`${prefix}${String(i + 1).padStart(13 - prefix.length, "0")}`),
      );
      for (const phone of phones) await world.sim.users.create({ phone, devices: 1 });
      const process = world.connector.createLogin(alice, "phone");
      await process.start();
      await process.submit("phone", { phone: alicePhone });
      const code = await world.sim.gatekeeper.services.identity.latestCode(alicePhone);
      const done = await process.submit("code", { code: code?.code ?? "" });
      login = done.type === "complete" ? (done.login as InteropLogin) : assert.fail();
      const members = phones.map((p) => world.sim.users.jidOf(p) as string as RemoteUserId);
      const { info } = await login.createGroup(subject, members);
      return { phones, group: info.id };
    }

    it("sends the keys in distribution stanzas ahead of the message when the header would not fit", async function () {
      // The smallest max-stanza-bytes §8.3 allows with one device per user and 1 KiB envelopes.
      const { phones, group } = await bigHeaderGroup(11_000, "+49170111", 5, "Big");
      const id = await login.sendMessage(group, text("to everyone"));
      for (const phone of phones) {
        await eventually(async () => (await received(phone, id)) !== undefined, `${phone} got it`);
      }
      const rows = (await world.db.db
        .knex("outbox")
        .where({ conversation_jid: group })
        .orderBy("id")) as { origin_id: string; stanza: string }[];
      assert.ok(rows.length >= 3, "at least two distribution stanzas and the message");
      assert.equal(rows.at(-1)?.origin_id, id);
      assert.deepEqual((await outboxEncrypted(id)).keyGroups, [], "the message's header is empty");
      for (const row of rows.slice(0, -1)) {
        assert.ok(Buffer.byteLength(row.stanza) <= 11_000);
        assert.ok(!row.stanza.includes("<group>"), "a distribution stanza has no <group>");
      }
    });

    it("sets a session up again when it is gone by the time a distribution stanza is encrypted", async function () {
      // A retry request of a member device archives the session with it (§12.5), a
      // devices-changed notice drops it: either can land between the set-up and the encryption of
      // a distribution stanza, as of the header. Here the archive is put exactly there.
      const { phones, group } = await bigHeaderGroup(11_000, "+49170333", 5, "Gone");
      const crypto = (world.connector.engine as unknown as { options: { crypto: SignalCrypto } })
        .options.crypto;
      const self = login.self as string as BareJid;
      const [own] = await crypto.localDevices(self);
      const device = await crypto.device(self, own ?? assert.fail("no local device"));
      const sessions = device.sessions;
      const encrypt = sessions.encryptForDevices.bind(sessions);
      let calls = 0;
      let archived: string | undefined;
      sessions.encryptForDevices = async (envelope, recipients, options) => {
        // The first call is the header's (refused as too large), the second a distribution's.
        if (calls++ === 1) {
          const first = recipients[0] ?? assert.fail("a distribution stanza for nobody");
          archived = first.jid;
          await sessions.archiveSession(first);
        }
        return encrypt(envelope, recipients, options);
      };
      let id: string;
      try {
        id = await login.sendMessage(group, text("still to everyone"));
      } finally {
        Reflect.deleteProperty(sessions, "encryptForDevices");
      }
      assert.ok(archived !== undefined, "a distribution stanza was encrypted");
      for (const phone of phones) {
        await eventually(async () => (await received(phone, id)) !== undefined, `${phone} got it`);
      }
      assert.deepEqual((await outboxEncrypted(id)).keyGroups, [], "the message's header is empty");
    });

    it("fits every distribution stanza whatever pads the envelopes drew", async function () {
      // The bench's 100-member group failed one first message in five with "too large": the
      // header was measured with one random pad and the distribution stanzas encrypted with
      // others, up to 200 bytes longer per key. Here the pads measured are empty and every later
      // one is the longest allowed.
      this.timeout(120_000);
      const { phones, group } = await bigHeaderGroup(90_000, "+4917022", 30, "Pads");
      let pads = 0;
      const random = rpadSource.next;
      rpadSource.next = () => (pads++ < 2 ? "" : "p".repeat(200));
      let id: string;
      try {
        id = await login.sendMessage(group, text("padded"));
      } finally {
        rpadSource.next = random;
      }
      for (const phone of phones) {
        await eventually(async () => (await received(phone, id)) !== undefined, `${phone} got it`);
      }
      const rows = (await world.db.db
        .knex("outbox")
        .where({ conversation_jid: group })
        .orderBy("id")) as { origin_id: string; stanza: string }[];
      assert.ok(rows.length >= 2, "distribution stanzas and the message");
      for (const row of rows) assert.ok(Buffer.byteLength(row.stanza) <= 90_000);
    });

    it("carries reactions, edits, retractions, read markers and typing into the group and back", async function () {
      const { info } = await login.createGroup("Trip", [bob]);
      const group = info.id as string as BareJid;
      const mine = await login.sendMessage(info.id, text("original"));
      await eventually(async () => (await received(bobPhone, mine)) !== undefined, "original");
      await login.sendReactions(info.id, { author: login.self, id: mine }, ["👍"]);
      const edit = await login.sendEdit(info.id, mine, text("edited"));
      const retract = await login.sendRetract(info.id, mine);
      for (const id of [edit, retract]) {
        await eventually(async () => (await received(bobPhone, id)) !== undefined, `${id} arrived`);
      }
      const kinds = (await world.sim.users.received(bobPhone, "message")).flatMap((e) =>
        (e.data["content"] as { kind: string }[]).map((c) => c.kind),
      );
      for (const kind of ["reactions", "replace", "retract"]) assert.ok(kinds.includes(kind), kind);

      await world.sim.users.sendToGroup(bobPhone, group, body("from bob"));
      await eventually(async () => messageFrom(bob, "from bob") !== undefined, "bob's");
      const theirs = messageFrom(bob, "from bob")!;
      await login.sendRead(info.id, { author: bob, id: theirs.id });
      await eventually(
        async () => (await world.sim.users.received(bobPhone, "displayed")).length > 0,
        "bob saw the read marker",
      );
      await login.sendTyping(info.id, true);
      await eventually(
        async () => (await world.sim.users.received(bobPhone, "chat-state")).length > 0,
        "bob saw typing",
      );

      await world.sim.users.sendGroupTransport(bobPhone, group, {
        kind: "displayed",
        marker: { id: mine as string as MessageId, author: login.jid },
      });
      await world.sim.users.sendGroupTransport(bobPhone, group, {
        kind: "chat-state",
        state: "composing",
      });
      await eventually(async () => events("read").length > 0, "bob's read marker");
      await eventually(async () => events("typing").length > 0, "bob's typing");
      assert.deepEqual(
        [events("read")[0]?.group, events("read")[0]?.from, events("read")[0]?.upTo.id],
        [info.id, bob, mine],
      );
      assert.deepEqual([events("typing")[0]?.group, events("typing")[0]?.from], [info.id, bob]);
      // Bob's phone's receipt for the login's message comes back naming the group.
      await eventually(async () => events("delivered").some((e) => e.group === info.id), "receipt");
    });

    describe("with a user of a second provider", function () {
      const CAROL = "carol=3aother.example@other.example" as BareJid;
      let other: TestProvider;
      let carol: ProviderUser;
      let carolStore: Awaited<ReturnType<typeof providerCrypto>>;

      beforeEach(async function () {
        await world.stop();
        world = await startWorld({ "verification-interval-seconds": 0 }, [OTHER_PROVIDER], backend);
        await world.sim.users.create({ phone: bobPhone, devices: 1 });
        const process = world.connector.createLogin(alice, "phone");
        await process.start();
        await process.submit("phone", { phone: alicePhone });
        const sent = await world.sim.gatekeeper.services.identity.latestCode(alicePhone);
        const done = await process.submit("code", { code: sent?.code ?? "" });
        login = done.type === "complete" ? (done.login as InteropLogin) : assert.fail();
        other = await TestProvider.connect(world.sim.service, OTHER_PROVIDER);
        await other.hello(OTHER_PROVIDER, [...SIMULATOR_FEATURES]);
        carolStore = await providerCrypto(Date.now);
        carol = await ProviderUser.create(carolStore.crypto, other, CAROL);
        await carol.publish();
      });

      afterEach(async function () {
        await other.close();
        // Carol's key store is a knex pool of its own: left open, its reaper timer holds mocha.
        await carolStore.knex.destroy();
      });

      it("labels the member with the provider's domain, and messages go both ways with sender keys", async function () {
        // Another provider's user can be added by a WhatsApp user, not by the bridge's (§17.1).
        const created = await world.sim.users.createGroup(bobPhone, "Mixed", [login.jid, CAROL]);
        const group = created.jid;
        await eventually(async () => events("group-info").length > 0, "the group");
        const info = events("group-info")[0]?.info ?? assert.fail();
        assert.equal(
          info.members.find((m) => m.id === (CAROL as string))?.displayName,
          "carol (via other.example)",
        );
        assert.equal(info.members.find((m) => m.id === bob)?.displayName, "+491701234567");
        const id = await login.sendMessage(info.id, text("hi all"));
        const stanza = await other.waitFor(
          (s) => s.attrs.type === "groupchat" && childNamed(s, "encrypted") !== undefined,
        );
        const delivered = classifyMessage(stanza);
        assert.equal(delivered.sender?.jid, login.jid);
        const encrypted =
          delivered.payload.kind === "encrypted" ? delivered.payload.encrypted : assert.fail();
        const header = await carol.decrypt(login.jid, encrypted);
        const skdm = header.find((c) => c.kind === "sender-key");
        const sender = { jid: login.jid, device: encrypted.sid };
        await carol.device.groups.processDistribution(
          group,
          sender,
          skdm?.kind === "sender-key" ? skdm.skdm : assert.fail("no SKDM in the header"),
        );
        const plaintext = await carol.device.groups.decrypt(
          group,
          sender,
          encrypted.group ?? assert.fail(),
          async (p) => p,
        );
        const envelope = decodeEnvelope(plaintext);
        assert.equal(envelope.id, id);
        assert.deepEqual(envelope.content, body("hi all"));

        // Carol writes: her key in the header for the login's device, the text with her sender key.
        const originId = messageId(randomUUID());
        const { skdm: own } = await carol.device.groups.distribution(group);
        const envelopeOf = (content: ContentElement[]) =>
          new Uint8Array(
            Buffer.from(
              encodeEnvelope({ content, id: originId, time: new Date(), to: group, from: CAROL }),
            ),
          );
        await carol.prepare(login.jid, [1 as DeviceId]);
        const keys = await carol.device.sessions.encryptForDevices(
          envelopeOf([{ kind: "sender-key", group, skdm: own }]),
          [{ jid: login.jid, device: 1 as DeviceId }],
        );
        const groupCiphertext = await carol.device.groups.encrypt(
          group,
          envelopeOf(body("hi from carol")),
        );
        await other.send(
          buildEncryptedMessage({
            type: "groupchat",
            from: carol.full,
            to: group,
            originId,
            encrypted: {
              sid: carol.device.deviceId,
              keyGroups: [{ jid: login.jid, keys: keys.map((k) => ({ ...k })) }],
              group: groupCiphertext,
              retry: undefined,
            },
          }),
        );
        const carolId = CAROL as string as RemoteUserId;
        await eventually(
          async () => messageFrom(carolId, "hi from carol") !== undefined,
          "carol's",
        );
        assert.equal(messageFrom(carolId, "hi from carol")?.group, info.id);
      });
    });
  });
