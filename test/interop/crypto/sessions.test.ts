import assert from "node:assert/strict";
import {
  DuplicateMessageError,
  InvalidMessageError,
  LegacyMessageError,
  NoSessionError,
} from "../../../src/interop/crypto/errors.js";
import { isTransientError } from "../../../src/util/errors.js";
import { describeOnBackends } from "../../helpers/db.js";
import {
  address,
  directoryBundle,
  ensureInboxTable,
  makeCrypto,
  newDevice,
  text,
  utf8,
} from "./helpers.js";

type TestDevice = Awaited<ReturnType<typeof newDevice>>;

/**
 * "hello <i>" from each sender to `bob`, each a first message (a PreKeySignalMessage) over bob's
 * bundle: all over its first one-time prekey, or the i-th sender over the i-th.
 */
async function firstMessages(
  bob: TestDevice,
  senders: readonly TestDevice[],
  { samePreKey }: { samePreKey: boolean },
) {
  const to = [address(bob.jid, bob.device.deviceId)];
  const inbound = [];
  for (const [index, sender] of senders.entries()) {
    const bundle = directoryBundle(bob.bundle, samePreKey ? {} : { index });
    await sender.device.sessions.processBundle(bob.jid, bundle);
    const [key] = await sender.device.sessions.encryptForDevices(utf8(`hello ${index}`), to);
    assert.ok(key?.kex);
    inbound.push({
      senderJid: sender.jid,
      senderDevice: sender.device.deviceId,
      kex: true,
      ciphertext: key.ciphertext,
    });
  }
  return inbound;
}

describeOnBackends("Signal 1:1 sessions", (get) => {
  it("a first message over a bundle with one-time prekeys decrypts, consumes both prekeys, and the reply is a plain SignalMessage", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    const before = await bob.device.prekeyCounts();

    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const [first] = await alice.device.sessions.encryptForDevices(utf8("hello bob"), [
      address(bob.jid, bob.device.deviceId),
    ]);
    assert.ok(first);
    assert.equal(first.kex, true, "the first message is a PreKeySignalMessage");
    assert.equal(first.rid, bob.device.deviceId);

    const plain = await bob.device.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: true,
        ciphertext: first.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(plain, "hello bob");
    assert.deepEqual(await bob.device.prekeyCounts(), {
      ec: before.ec - 1,
      kyber: before.kyber - 1,
    });

    const [reply] = await bob.device.sessions.encryptForDevices(utf8("hi alice"), [
      address(alice.jid, alice.device.deviceId),
    ]);
    assert.ok(reply);
    assert.equal(reply.kex, false, "bob answers on the session alice started");
    const back = await alice.device.sessions.decrypt(
      {
        senderJid: bob.jid,
        senderDevice: bob.device.deviceId,
        kex: false,
        ciphertext: reply.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(back, "hi alice");

    const [next] = await alice.device.sessions.encryptForDevices(utf8("again"), [
      address(bob.jid, bob.device.deviceId),
    ]);
    assert.equal(next?.kex, false, "after bob replied, alice stops sending PreKeySignalMessages");
  });

  it("a session set up with only the last-resort Kyber prekey works and a replay of its first message is a duplicate", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { oneTimePreKeys: 0 });
    assert.deepEqual(await bob.device.prekeyCounts(), { ec: 0, kyber: 0 });

    await alice.device.sessions.processBundle(
      bob.jid,
      directoryBundle(bob.bundle, { oneTime: false }),
    );
    const [first] = await alice.device.sessions.encryptForDevices(utf8("no one-time keys"), [
      address(bob.jid, bob.device.deviceId),
    ]);
    assert.ok(first?.kex);
    const inbound = {
      senderJid: alice.jid,
      senderDevice: alice.device.deviceId,
      kex: true,
      ciphertext: first.ciphertext,
    };
    assert.equal(
      await bob.device.sessions.decrypt(inbound, async (p) => text(p)),
      "no one-time keys",
    );

    // With the session still there libsignal itself sees the repeat.
    await assert.rejects(
      bob.device.sessions.decrypt(inbound, async () => "again"),
      DuplicateMessageError,
    );
    // With the session gone only the recorded last-resort use can tell (§11.6).
    await bob.device.sessions.deleteSessions(alice.jid);
    await assert.rejects(
      bob.device.sessions.decrypt(inbound, async () => "again"),
      DuplicateMessageError,
    );
    // The last-resort key is kept for other senders.
    const carol = await newDevice(world, "provider");
    await carol.device.sessions.processBundle(
      bob.jid,
      directoryBundle(bob.bundle, { oneTime: false }),
    );
    const [fromCarol] = await carol.device.sessions.encryptForDevices(utf8("me too"), [
      address(bob.jid, bob.device.deviceId),
    ]);
    assert.ok(fromCarol);
    const got = await bob.device.sessions.decrypt(
      {
        senderJid: carol.jid,
        senderDevice: carol.device.deviceId,
        kex: true,
        ciphertext: fromCarol.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(got, "me too");
  });

  it("messages delivered out of order all decrypt and a redelivered one is a duplicate", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const to = [address(bob.jid, bob.device.deviceId)];
    const sent = [];
    for (const body of ["one", "two", "three", "four"]) {
      const [key] = await alice.device.sessions.encryptForDevices(utf8(body), to);
      assert.ok(key);
      sent.push(key);
    }
    const received: string[] = [];
    for (const index of [2, 0, 3, 1]) {
      const key = sent[index];
      assert.ok(key);
      received.push(
        await bob.device.sessions.decrypt(
          {
            senderJid: alice.jid,
            senderDevice: alice.device.deviceId,
            kex: key.kex,
            ciphertext: key.ciphertext,
          },
          async (p) => text(p),
        ),
      );
    }
    assert.deepEqual(received, ["three", "one", "four", "two"]);
    const again = sent[1];
    assert.ok(again);
    await assert.rejects(
      bob.device.sessions.decrypt(
        {
          senderJid: alice.jid,
          senderDevice: alice.device.deviceId,
          kex: again.kex,
          ciphertext: again.ciphertext,
        },
        async () => "stored twice",
      ),
      DuplicateMessageError,
    );
  });

  it("a crash between decrypt and commit loses nothing: the same ciphertext decrypts again and is stored once", async function () {
    const { knex } = get().db;
    await ensureInboxTable(knex);
    const world = makeCrypto(knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const to = [address(bob.jid, bob.device.deviceId)];
    for (const body of ["first (PreKeySignalMessage)", "second"]) {
      const countsBefore = await bob.device.prekeyCounts();
      const [key] = await alice.device.sessions.encryptForDevices(utf8(body), to);
      assert.ok(key);
      const inbound = {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: key.kex,
        ciphertext: key.ciphertext,
      };
      await assert.rejects(
        bob.device.sessions.decrypt(inbound, async (plain, trx) => {
          await trx("test_crypto_inbox").insert({ receiver: bob.jid, body: text(plain) });
          throw new Error("power cut before commit");
        }),
        /power cut/,
      );
      assert.deepEqual(await bob.device.prekeyCounts(), countsBefore, "no prekey was consumed");
      await bob.device.sessions.decrypt(inbound, async (plain, trx) => {
        await trx("test_crypto_inbox").insert({ receiver: bob.jid, body: text(plain) });
      });
    }
    const rows = await knex("test_crypto_inbox").where({ receiver: bob.jid }).orderBy("body");
    assert.deepEqual(
      rows.map((r: { body: string }) => r.body),
      ["first (PreKeySignalMessage)", "second"],
    );

    // A fresh process (empty caches) continues the conversation from the database.
    const restarted = makeCrypto(knex);
    const bobAgain = await restarted.crypto.device(bob.jid, bob.device.deviceId);
    const [third] = await alice.device.sessions.encryptForDevices(utf8("after restart"), to);
    assert.ok(third);
    const plain = await bobAgain.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: third.kex,
        ciphertext: third.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(plain, "after restart");
  });

  it("an encryption whose outbox write fails leaves the session where it was", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const to = [address(bob.jid, bob.device.deviceId)];
    await assert.rejects(
      alice.device.sessions.encryptForDevices(utf8("lost"), to, {
        onCommit: async () => {
          throw new Error("outbox full");
        },
      }),
      /outbox full/,
    );
    // Nothing was committed, so alice still has a session that has never sent: bob can decrypt
    // the message produced next, and it is again the first PreKeySignalMessage of the session.
    const [key] = await alice.device.sessions.encryptForDevices(utf8("kept"), to);
    assert.ok(key?.kex);
    const plain = await bob.device.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: true,
        ciphertext: key.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(plain, "kept");
  });

  it("concurrent encryptions to the same device are serialised and all decrypt", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const to = [address(bob.jid, bob.device.deviceId)];
    const bodies = Array.from({ length: 12 }, (_, i) => `parallel ${i}`);
    const keys = await Promise.all(
      bodies.map((b) => alice.device.sessions.encryptForDevices(utf8(b), to)),
    );
    const received = new Set<string>();
    for (const [key] of keys) {
      assert.ok(key);
      received.add(
        await bob.device.sessions.decrypt(
          {
            senderJid: alice.jid,
            senderDevice: alice.device.deviceId,
            kex: key.kex,
            ciphertext: key.ciphertext,
          },
          async (p) => text(p),
        ),
      );
    }
    assert.deepEqual([...received].sort(), [...bodies].sort());
  });

  it("two first messages over one one-time prekey, decrypted at the same time from two contacts: only one is accepted", async function () {
    // A directory that hands one one-time prekey out twice (or a replay under another sender):
    // the receiving device must still consume it once, also when the receiver decrypts
    // different contacts' messages in parallel (issue #15).
    const world = makeCrypto(get().db.knex);
    const bob = await newDevice(world, "gatekeeper");
    const senders = [await newDevice(world, "provider"), await newDevice(world, "provider")];
    const before = await bob.device.prekeyCounts();
    const inbound = await firstMessages(bob, senders, { samePreKey: true });
    const outcomes = await Promise.allSettled(
      inbound.map((message) => bob.device.sessions.decrypt(message, async (p) => text(p))),
    );
    const accepted = outcomes.filter((o) => o.status === "fulfilled");
    assert.equal(accepted.length, 1, "one one-time prekey starts one session");
    const refused = outcomes.find((o) => o.status === "rejected");
    assert.ok(refused?.reason instanceof InvalidMessageError, String(refused?.reason));
    assert.deepEqual(await bob.device.prekeyCounts(), {
      ec: before.ec - 1,
      kyber: before.kyber - 1,
    });
  });

  it("first messages over different one-time prekeys from two contacts decrypt at the same time", async function () {
    const world = makeCrypto(get().db.knex);
    const bob = await newDevice(world, "gatekeeper");
    const senders = [await newDevice(world, "provider"), await newDevice(world, "provider")];
    const inbound = await firstMessages(bob, senders, { samePreKey: false });
    const plain = await Promise.all(
      inbound.map((message) => bob.device.sessions.decrypt(message, async (p) => text(p))),
    );
    assert.deepEqual(plain, ["hello 0", "hello 1"]);
  });

  it("a device added mid-conversation gets a session after devices-changed, a removed one loses it", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob1 = await newDevice(world, "gatekeeper", { deviceId: 1 });
    const crypto = world.crypto;
    await crypto.storeDeviceList(bob1.jid, 1, [bob1.device.deviceId]);
    await alice.device.sessions.processBundle(bob1.jid, directoryBundle(bob1.bundle));
    const d1 = address(bob1.jid, 1);
    const [m1] = await alice.device.sessions.encryptForDevices(utf8("to one device"), [d1]);
    assert.ok(m1);

    // Bob links a second device: same identity, new device id.
    const bob2 = await crypto.createLocalIdentity(bob1.jid, {
      deviceId: 2 as never,
      oneTimePreKeys: 2,
    });
    const update = await crypto.handleDevicesChanged({
      jid: bob1.jid,
      version: 2,
      devices: [{ id: d1.device }, { id: 2 as never, change: "added" }],
      removed: [],
    });
    assert.deepEqual(update.needBundles, [2]);
    const d2 = address(bob1.jid, 2);
    assert.deepEqual(await alice.device.sessions.devicesWithoutSession([d1, d2]), [d2]);
    await alice.device.sessions.processBundle(bob1.jid, directoryBundle(bob2.bundle));
    const keys = await alice.device.sessions.encryptForDevices(utf8("to both"), [d1, d2]);
    assert.deepEqual(
      keys.map((k) => [k.rid, k.kex]),
      [
        [1, true],
        [2, true],
      ],
    );
    for (const [device, key] of [
      [bob1.device, keys[0]],
      [bob2.device, keys[1]],
    ] as const) {
      assert.ok(key);
      const plain = await device.sessions.decrypt(
        {
          senderJid: alice.jid,
          senderDevice: alice.device.deviceId,
          kex: key.kex,
          ciphertext: key.ciphertext,
        },
        async (p) => text(p),
      );
      assert.equal(plain, "to both");
    }

    const removal = await crypto.handleDevicesChanged({
      jid: bob1.jid,
      version: 3,
      devices: [{ id: 2 as never }],
      removed: [1 as never],
    });
    assert.deepEqual(removal.droppedSessions, [1]);
    await assert.rejects(
      alice.device.sessions.encryptForDevices(utf8("to the removed device"), [d1]),
      (err: unknown) => err instanceof NoSessionError && err.missing[0]?.device === 1,
    );
    const list = await crypto.deviceLists.get(bob1.jid);
    assert.deepEqual(
      list?.devices.map((d) => d.id),
      [2],
    );
    // An older notification arriving late changes nothing.
    const stale = await crypto.handleDevicesChanged({
      jid: bob1.jid,
      version: 2,
      devices: [{ id: 1 as never }, { id: 2 as never }],
      removed: [],
    });
    assert.equal(stale.applied, false);
  });

  it("garbage, legacy versions and messages without a session get typed errors", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    const from = { senderJid: alice.jid, senderDevice: alice.device.deviceId };
    await assert.rejects(
      bob.device.sessions.decrypt(
        { ...from, kex: true, ciphertext: utf8("not signal") },
        async () => 0,
      ),
      InvalidMessageError,
    );
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const [key] = await alice.device.sessions.encryptForDevices(utf8("x"), [
      address(bob.jid, bob.device.deviceId),
    ]);
    assert.ok(key);
    const legacy = new Uint8Array(key.ciphertext);
    legacy[0] = (3 << 4) | 3;
    await assert.rejects(
      bob.device.sessions.decrypt({ ...from, kex: true, ciphertext: legacy }, async () => 0),
      LegacyMessageError,
    );
    // Bob never decrypted the first message, so a SignalMessage from him cannot be read by alice.
    const carol = await newDevice(world, "provider");
    await carol.device.sessions.processBundle(alice.jid, directoryBundle(alice.bundle));
    const [c1] = await carol.device.sessions.encryptForDevices(utf8("y"), [
      address(alice.jid, alice.device.deviceId),
    ]);
    assert.ok(c1);
    await assert.rejects(
      bob.device.sessions.encryptForDevices(utf8("z"), [address(carol.jid, carol.device.deviceId)]),
      NoSessionError,
    );
  });

  it("a decryption whose session cannot be read (the database connection lost) fails as that, not as an undecryptable message, and succeeds later", async function () {
    const knex = get().db.knex;
    const world = makeCrypto(knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    const to = [address(bob.jid, bob.device.deviceId)];
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const [first] = await alice.device.sessions.encryptForDevices(utf8("one"), to);
    assert.ok(first);
    const from = { senderJid: alice.jid, senderDevice: alice.device.deviceId };
    await bob.device.sessions.decrypt({ ...from, kex: true, ciphertext: first.ciphertext }, (p) =>
      Promise.resolve(text(p)),
    );
    const [second] = await alice.device.sessions.encryptForDevices(utf8("two"), to);
    assert.ok(second);
    // Bob's side restarted (nothing cached), and the session's row cannot be read for a moment.
    let lost = false;
    const flaky = new Proxy(knex, {
      apply(target, thisArg, args: unknown[]) {
        if (lost && args[0] === "signal_sessions") {
          throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
        }
        return Reflect.apply(target, thisArg, args) as unknown;
      },
    });
    const restarted = await makeCrypto(flaky).crypto.device(bob.jid, bob.device.deviceId);
    const message = { ...from, kex: second.kex, ciphertext: second.ciphertext };
    lost = true;
    const err: unknown = await restarted.sessions
      .decrypt(message, (p) => Promise.resolve(text(p)))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(!(err instanceof InvalidMessageError), `not undecryptable: ${String(err)}`);
    assert.ok(isTransientError(err), `a transient failure, retried: ${String(err)}`);
    lost = false;
    const plain = await restarted.sessions.decrypt(message, (p) => Promise.resolve(text(p)));
    assert.equal(plain, "two");
  });
});
