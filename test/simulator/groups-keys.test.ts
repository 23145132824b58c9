import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  buildEncryptedMessage,
  buildRetryRequest,
  classifyMessage,
  decodeAccepted,
  decodeEnvelope,
  encodeEnvelope,
  type Encrypted,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";
import { SIMULATOR_FEATURES } from "../../simulator/config.js";
import {
  ALICE,
  BOB,
  child,
  childNamed,
  errorOf,
  providerCrypto,
  startTestSimulator,
  TestProvider,
} from "./harness.js";
import { ProviderUser, text } from "./provider-user.js";
import { eventually, GK, makeWorld, PHONE } from "./world.js";
import { CAROL, GK2, makeGroupWorld, PHONE2, type GroupWorld } from "./group-world.js";

const encryptedOf = (s: XmlElement): Encrypted => {
  const m = classifyMessage(s);
  if (m.payload.kind !== "encrypted") throw new Error("not encrypted");
  return m.payload.encrypted;
};

describe("simulator groups: keys, rotation, retry answers and crash safety (§17.3-§17.6)", function () {
  this.timeout(30_000);
  let w: GroupWorld;
  let group: BareJid;
  afterEach(async () => w?.close());

  async function open(): Promise<void> {
    w = await makeGroupWorld();
    group = (await w.sim.users.createGroup(PHONE, "Keys", [ALICE as BareJid, CAROL, GK2])).jid;
  }

  /** The next group message to Alice after `mark`, and whether it carries a header key for her. */
  async function nextToAlice(mark: number): Promise<{ stanza: XmlElement; keyed: boolean }> {
    const stanza = await w.provider.waitFor(
      (s) =>
        s.attrs.from === group && s.attrs.to === ALICE && childNamed(s, "encrypted") !== undefined,
      5000,
      mark,
    );
    return { stanza, keyed: encryptedOf(stanza).keyGroups.length > 0 };
  }

  async function send(body: string): Promise<{ stanza: XmlElement; keyed: boolean }> {
    const mark = w.provider.received.length;
    await w.sim.users.sendToGroup(PHONE, group, text(body));
    return nextToAlice(mark);
  }

  it("co-members at different providers fetch each other's keys; a stranger cannot (§17.3)", async () => {
    w = await makeGroupWorld();
    const before = errorOf(
      await w.other.iq(
        "get",
        (await import("../../src/interop/codec/index.js")).encodeDevicesFetch(ALICE as BareJid),
        { from: CAROL },
      ),
    );
    assert.equal(before.app?.name, "not-reachable");
    group = (await w.sim.users.createGroup(PHONE, "Keys", [ALICE as BareJid, CAROL])).jid;
    assert.deepEqual(await w.carol.fetchDevices(ALICE as BareJid), [1]);
    assert.deepEqual(await w.alice.fetchDevices(CAROL), [1]);
  });

  it("co-members at both providers are told of a member's added device with devices-changed (§17.3)", async () => {
    await open();
    await w.sim.users.addDevice(PHONE2);
    for (const [p, to] of [
      [w.provider, ALICE],
      [w.other, CAROL],
    ] as const) {
      const n = await p.waitFor(
        (s) => s.attrs.to === to && childNamed(s, "devices-changed") !== undefined,
      );
      assert.equal(childNamed(n, "devices-changed")?.attrs.jid, GK2);
    }
  });

  it("a member's added device gets the current key without rotation; a removed device or a new identity forces rotation (§17.5)", async () => {
    await open();
    assert.equal((await send("first")).keyed, true);
    assert.equal((await send("second")).keyed, false, "Alice already holds the key");
    // GK2 gets a device: it alone receives the SKDM; Alice's key stays valid.
    const added = await w.sim.users.addDevice(PHONE2);
    const mark = w.provider.received.length;
    await w.sim.users.sendToGroup(PHONE, group, text("after add"));
    assert.equal((await nextToAlice(mark)).keyed, false);
    const gk2Log = await eventually(async () => {
      const l = await w.sim.users.received(PHONE2, "message");
      return l.some((e) => JSON.stringify(e.data.content).includes("after add")) ? l : undefined;
    });
    assert.ok(gk2Log.length >= 3);
    // The device goes: new key, distributed to Alice again.
    await w.sim.users.removeDevice(PHONE2, added);
    assert.equal((await send("after device removal")).keyed, true);
    assert.equal((await send("steady")).keyed, false);
    // GK2 reinstalls with a new identity: rotation again.
    await w.sim.users.resetIdentity(PHONE2);
    assert.equal((await send("after identity change")).keyed, true);
    // Everyone still reads everything (GK2 decrypted the messages after the reset as well).
    await eventually(async () => {
      const l = await w.sim.users.received(PHONE2, "message");
      return l.some((e) => JSON.stringify(e.data.content).includes("after identity change"))
        ? true
        : undefined;
    });
  });

  it("answers a group retry from a member device that had no key in that stanza (E29) with the stored envelope and the current SKDM, to that device only (§17.6)", async () => {
    await open();
    await send("first");
    // E29: Alice already holds the key, so this stanza has no rid for her; she may still ask.
    const { stanza, keyed } = await send("please retry");
    assert.equal(keyed, false);
    const original = classifyMessage(stanza);
    const author = { jid: GK, device: original.sender?.device as DeviceId };
    const mark = w.provider.received.length;
    const request = buildRetryRequest({
      type: "groupchat",
      originId: randomUUID() as MessageId,
      from: w.alice.full,
      to: group,
      retry: {
        id: original.originId as MessageId,
        count: 1,
        registration: w.alice.device.registrationId,
        reason: "no-sender-key",
        author,
      },
    });
    assert.ok(childNamed(await w.provider.outcome(request), "accepted"));
    const answer = await w.provider.waitFor(
      (s) => s.attrs.to === `${ALICE}/1` && childNamed(s, "encrypted")?.attrs.retry === "1",
      5000,
      mark,
    );
    const e = encryptedOf(answer);
    assert.equal(e.group, undefined);
    assert.deepEqual(
      e.keyGroups.map((g) => [g.jid, g.keys.length]),
      [[ALICE, 1]],
    );
    const plaintext = await w.alice.device.sessions.decrypt(
      {
        senderJid: GK,
        senderDevice: author.device,
        kex: true,
        ciphertext: e.keyGroups[0]!.keys[0]!.ciphertext,
      },
      async (p) => p,
    );
    const env = decodeEnvelope(plaintext);
    assert.equal(env.id, original.originId);
    assert.equal(env.to, group);
    assert.deepEqual(env.content[0], text("please retry")[0]);
    assert.equal(env.content[1]?.kind, "sender-key");
    // The same count is answered once only.
    const mark2 = w.provider.received.length;
    const again = buildRetryRequest({
      type: "groupchat",
      originId: randomUUID() as MessageId,
      from: w.alice.full,
      to: group,
      retry: {
        id: original.originId as MessageId,
        count: 1,
        registration: 1,
        reason: "no-sender-key",
        author,
      },
    });
    await w.provider.outcome(again);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(
      !w.provider.received
        .slice(mark2)
        .some((s) => childNamed(s, "encrypted")?.attrs.retry !== undefined),
    );
  });

  it("an author who left can still answer a retry (E30)", async () => {
    await open();
    const originId = randomUUID() as MessageId;
    await w.alice.device.groups.distribution(group);
    const ciphertext = await w.alice.device.groups.encrypt(
      group,
      Buffer.from(
        encodeEnvelope({
          content: text("x"),
          id: originId,
          time: new Date(),
          to: group,
          from: ALICE as BareJid,
        }),
      ),
    );
    const message = (e: Partial<Encrypted>) =>
      buildEncryptedMessage({
        type: "groupchat",
        originId,
        from: w.alice.full,
        to: group,
        encrypted: { sid: 1 as DeviceId, keyGroups: [], group: undefined, retry: undefined, ...e },
      });
    await w.provider.outcome(message({ group: ciphertext }));
    await w.provider.iq("set", (await import("../../src/interop/codec/index.js")).encodeLeave(), {
      from: ALICE,
      to: group,
    });
    const resend = message({
      keyGroups: [
        { jid: CAROL, keys: [{ rid: 1 as DeviceId, kex: true, ciphertext: new Uint8Array([1]) }] },
      ],
      retry: 1,
    });
    assert.ok(childNamed(await w.provider.outcome(resend), "accepted"));
    await w.other.waitFor(
      (s) => s.attrs.to === `${CAROL}/1` && childNamed(s, "encrypted")?.attrs.retry === "1",
    );
  });
});

describe("simulator groups: crash safety", function () {
  this.timeout(30_000);
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "wa-sim-groups-"));
  });
  afterEach(async () => rm(dataDir, { recursive: true, force: true }));

  it("a group message accepted just before a crash reaches the WhatsApp member after the restart, and the provider member's delivery is still queued", async () => {
    const database = path.join(dataDir, "sim.db");
    const w = await makeWorld({ dataDir, database });
    const bob = BOB as BareJid;
    const bobStore = await providerCrypto(w.clock.now);
    const bobUser = await ProviderUser.create(bobStore.crypto, w.provider, BOB);
    await bobUser.publish();
    const { jid: group } = await w.sim.users.createGroup(PHONE, "crash", [ALICE as BareJid, bob]);
    // The crash window: <accepted> went out, the member's device never processed the message,
    // and Bob's provider was not there to take his copy.
    w.sim.gatekeeper.setLocalSink(async () => undefined);
    const devices = await w.alice.fetchDevices(GK);
    await w.alice.prepare(GK, devices);
    const originId = randomUUID() as MessageId;
    const dist = await w.alice.device.groups.distribution(group);
    const header = await w.alice.device.sessions.encryptForDevices(
      Buffer.from(
        encodeEnvelope({
          content: [{ kind: "sender-key", group, skdm: dist.skdm }],
          id: originId,
          time: new Date(),
          to: group,
          from: ALICE as BareJid,
        }),
      ),
      devices.map((d) => ({ jid: GK, device: d })),
    );
    const ciphertext = await w.alice.device.groups.encrypt(
      group,
      Buffer.from(
        encodeEnvelope({
          content: text("survives"),
          id: originId,
          time: new Date(),
          to: group,
          from: ALICE as BareJid,
        }),
      ),
    );
    const stanza = buildEncryptedMessage({
      type: "groupchat",
      originId,
      from: w.alice.full,
      to: group,
      encrypted: {
        sid: 1 as DeviceId,
        keyGroups: [
          {
            jid: GK,
            keys: header.map((k) => ({ rid: k.rid, kex: k.kex, ciphertext: k.ciphertext })),
          },
        ],
        group: ciphertext,
        retry: undefined,
      },
    });
    const accepted = decodeAccepted(child(await w.provider.outcome(stanza)));
    await w.provider.close();
    await w.sim.stop();

    const { sim } = await startTestSimulator({ dataDir, database });
    const provider = await TestProvider.connect(sim.service);
    await provider.hello(undefined, [...SIMULATOR_FEATURES]);
    const log = await eventually(async () => {
      const entries = await sim.users.received(PHONE, "message");
      return entries.length > 0 ? entries : undefined;
    });
    assert.deepEqual([log[0]?.data.originId, log[0]?.data.group], [originId, group]);
    // Bob's copy was queued in the same transaction: it goes out after the hello.
    await provider.waitFor((s) => s.attrs.to === BOB && s.attrs.id === originId);
    // A retransmission is answered with the original <accepted>, not delivered again.
    assert.deepEqual(decodeAccepted(child(await provider.outcome(stanza))), accepted);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await sim.users.received(PHONE, "message")).length, 1);
    assert.equal((await sim.gatekeeper.pending.all()).length, 0);
    await provider.close();
    await sim.stop();
    await w.providerKnex.destroy();
    await bobStore.knex.destroy();
  });
});
