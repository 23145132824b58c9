import assert from "node:assert/strict";
import { InvalidMessageError } from "../../../src/interop/crypto/errors.js";
import { describeOnBackends } from "../../helpers/db.js";
import { address, directoryBundle, makeCrypto, newDevice, text, utf8 } from "./helpers.js";

const WINDOW = 3600_000;

describeOnBackends("retry requests and answers", (get) => {
  it("a receiver sends at most two retry requests per message and sender device", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const sender = address("491700000001@wa.example" as never, 3);
    assert.equal(await alice.device.retries.nextRequestCount(sender, "m-1"), 1);
    assert.equal(await alice.device.retries.nextRequestCount(sender, "m-1"), 2);
    assert.equal(await alice.device.retries.nextRequestCount(sender, "m-1"), null);
    assert.equal(await alice.device.retries.nextRequestCount(address(sender.jid, 4), "m-1"), 1);
  });

  it("an authorised retry request is answered with the stored envelope over a fresh session, once per count", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { oneTimePreKeys: 4 });
    const bobAddr = address(bob.jid, bob.device.deviceId);
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle, { index: 0 }));
    const [key] = await alice.device.sessions.encryptForDevices(
      utf8("<envelope>original</envelope>"),
      [bobAddr],
      {
        remember: { originId: "orig-1", conversationJid: bob.jid },
      },
    );
    assert.ok(key);
    // Bob loses the message: a corrupted copy cannot be decrypted, he asks again.
    const broken = new Uint8Array(key.ciphertext);
    broken[broken.length - 5] = (broken[broken.length - 5] ?? 0) ^ 0xff;
    await assert.rejects(
      bob.device.sessions.decrypt(
        {
          senderJid: alice.jid,
          senderDevice: alice.device.deviceId,
          kex: true,
          ciphertext: broken,
        },
        async () => undefined,
      ),
      InvalidMessageError,
    );
    const count = await bob.device.retries.nextRequestCount(
      address(alice.jid, alice.device.deviceId),
      "orig-1",
    );
    assert.equal(count, 1);

    const request = { originId: "orig-1", requester: bobAddr, count: 1, windowMs: WINDOW };
    const auth = await alice.device.retries.authorize(request);
    assert.ok(auth.ok);
    assert.equal(text(auth.envelope), "<envelope>original</envelope>");
    await alice.device.retries.prepareAnswer(bobAddr);
    assert.equal(await alice.device.sessions.hasSession(bobAddr), false, "session archived");
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle, { index: 1 }));
    const answer = await alice.device.retries.encryptAnswer({
      ...request,
      envelope: auth.envelope,
    });
    assert.equal(answer.kex, true);
    assert.equal(answer.rid, bob.device.deviceId);
    const plain = await bob.device.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: true,
        ciphertext: answer.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(plain, "<envelope>original</envelope>");

    assert.deepEqual(await alice.device.retries.authorize(request), {
      ok: false,
      reason: "already-answered",
    });
    assert.ok((await alice.device.retries.authorize({ ...request, count: 2 })).ok);
    assert.deepEqual(await alice.device.retries.authorize({ ...request, count: 3 }), {
      ok: false,
      reason: "bad-count",
    });
    world.clock.advance(WINDOW);
    assert.deepEqual(await alice.device.retries.authorize({ ...request, count: 2 }), {
      ok: false,
      reason: "expired",
    });
  });

  it("only intended recipient devices, or devices announced after the send, may ask", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    await world.crypto.storeDeviceList(bob.jid, 1, [bob.device.deviceId]);
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    await alice.device.sessions.encryptForDevices(utf8("e"), [address(bob.jid, 1)], {
      remember: { originId: "orig-2", conversationJid: bob.jid },
    });
    const ask = (jid: string, device: number) =>
      alice.device.retries.authorize({
        originId: "orig-2",
        requester: address(jid as never, device),
        count: 1,
        windowMs: WINDOW,
      });
    assert.deepEqual(await ask(bob.jid, 2), { ok: false, reason: "not-a-recipient" });
    assert.deepEqual(await ask("491709999999@wa.example", 1), {
      ok: false,
      reason: "not-a-recipient",
    });
    assert.deepEqual(await ask(bob.jid, 1).then((a) => a.ok), true);
    assert.deepEqual(
      await alice.device.retries.authorize({
        originId: "never-sent",
        requester: address(bob.jid, 1),
        count: 1,
        windowMs: WINDOW,
      }),
      { ok: false, reason: "unknown-message" },
    );
    world.clock.advance(1000);
    await world.crypto.handleDevicesChanged({
      jid: bob.jid,
      version: 2,
      devices: [{ id: 1 as never }, { id: 2 as never, change: "added" }],
      removed: [],
    });
    assert.equal((await ask(bob.jid, 2)).ok, true);
  });

  it("purging forgets the envelopes, answers and requests older than the window and keeps newer ones", async function () {
    const { knex } = get().db;
    const world = makeCrypto(knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    const bobAddr = address(bob.jid, 1);
    await world.crypto.storeDeviceList(bob.jid, 1, [bob.device.deviceId]);
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const sender = address("491700000001@wa.example" as never, 3);
    /** A message sent to bob and answered once, and a retry request alice sent for another. */
    const traffic = async (id: string) => {
      const envelope = utf8(`<envelope>${id}</envelope>`);
      await alice.device.sessions.encryptForDevices(envelope, [bobAddr], {
        remember: { originId: `sent-${id}`, conversationJid: bob.jid },
      });
      await alice.device.retries.encryptAnswer({
        originId: `sent-${id}`,
        requester: bobAddr,
        count: 1,
        envelope,
      });
      await alice.device.retries.nextRequestCount(sender, `asked-${id}`);
    };
    await traffic("old");
    world.clock.advance(WINDOW - 1000);
    await traffic("new");
    world.clock.advance(2000);
    await alice.device.retries.purge(WINDOW);

    const ask = (id: string, count: number) =>
      alice.device.retries.authorize({
        originId: `sent-${id}`,
        requester: bobAddr,
        count,
        windowMs: WINDOW,
      });
    assert.deepEqual(await ask("old", 2), { ok: false, reason: "unknown-message" });
    assert.deepEqual(await ask("new", 1), { ok: false, reason: "already-answered" });
    assert.equal((await ask("new", 2)).ok, true);
    assert.equal(await alice.device.retries.requested(sender, "asked-old"), false);
    assert.equal(await alice.device.retries.requested(sender, "asked-new"), true);
    const answers = (await knex("signal_retry_answers")
      .where({ owner_id: alice.device.state.ownerId })
      .select("origin_id")) as { origin_id: string }[];
    assert.deepEqual(
      answers.map((a) => a.origin_id),
      ["sent-new"],
    );
  });
});
