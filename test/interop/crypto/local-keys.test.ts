import assert from "node:assert/strict";
import { PublicKey, KEMPublicKey } from "@signalapp/libsignal-client";
import { decodeBase64 } from "../../../src/interop/crypto/base64.js";
import {
  InvalidMessageError,
  UnknownLocalDeviceError,
} from "../../../src/interop/crypto/errors.js";
import { KEY_RETENTION_MS } from "../../../src/interop/crypto/local-keys.js";
import { describeOnBackends } from "../../helpers/db.js";
import { address, directoryBundle, makeCrypto, newDevice, text, utf8 } from "./helpers.js";

const DAY = 24 * 3600 * 1000;

describeOnBackends("local device keys", (get) => {
  it("a new device publishes a bundle with valid signatures and keys of the formats of §11.1", async function () {
    const world = makeCrypto(get().db.knex);
    const { bundle, device } = await newDevice(world, "provider", { oneTimePreKeys: 5 });
    assert.ok(bundle.deviceId >= 1 && bundle.deviceId <= 127);
    assert.ok(bundle.registrationId >= 1 && bundle.registrationId <= 16380);
    const identity = PublicKey.deserialize(decodeBase64(bundle.identityKey));
    assert.equal(decodeBase64(bundle.identityKey).length, 33);
    const spk = decodeBase64(bundle.signedPreKey.publicKey);
    assert.equal(spk.length, 33);
    assert.equal(identity.verify(spk, decodeBase64(bundle.signedPreKey.signature)), true);
    for (const kyber of [bundle.lastResortKyberPreKey, ...bundle.kyberPreKeys]) {
      const pub = decodeBase64(kyber.publicKey);
      assert.equal(pub.length, 1569);
      assert.equal(pub[0], 0x08);
      KEMPublicKey.deserialize(pub);
      assert.equal(identity.verify(pub, decodeBase64(kyber.signature)), true);
    }
    assert.equal(bundle.preKeys.length, 5);
    assert.equal(bundle.kyberPreKeys.length, 5);
    assert.deepEqual(await device.prekeyCounts(), { ec: 5, kyber: 5 });
    const again = await device.bundle();
    assert.deepEqual(again, bundle, "the stored keys reproduce the published bundle");
  });

  it("prekey ids are unique per id space, one-time and last-resort Kyber keys sharing one", async function () {
    const world = makeCrypto(get().db.knex);
    const { bundle, device } = await newDevice(world, "provider", { oneTimePreKeys: 20 });
    const more = await device.replenish({ ec: 30, kyber: 30 });
    const rotation = await device.rotateSignedPreKey();
    const ec = [...bundle.preKeys, ...more.preKeys].map((k) => k.id);
    const kyber = [
      bundle.lastResortKyberPreKey,
      ...bundle.kyberPreKeys,
      ...more.kyberPreKeys,
      rotation.lastResortKyberPreKey,
    ].map((k) => k.id);
    const signed = [bundle.signedPreKey.id, rotation.signedPreKey.id];
    for (const [name, ids] of [
      ["ec", ec],
      ["kyber", kyber],
      ["signed", signed],
    ] as const) {
      assert.equal(new Set(ids).size, ids.length, `${name} ids are unique`);
      assert.ok(
        ids.every((id) => id >= 1 && id <= 16_777_215),
        `${name} ids in range`,
      );
    }
    assert.deepEqual(await device.prekeyCounts(), { ec: 50, kyber: 50 });
  });

  it("a consumed prekey's id is not handed out again while it is retained", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { oneTimePreKeys: 1 });
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const [key] = await alice.device.sessions.encryptForDevices(utf8("take it"), [
      address(bob.jid, bob.device.deviceId),
    ]);
    assert.ok(key);
    await bob.device.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: true,
        ciphertext: key.ciphertext,
      },
      async () => undefined,
    );
    assert.deepEqual(await bob.device.prekeyCounts(), { ec: 0, kyber: 0 });
    const consumedEc = bob.bundle.preKeys[0]?.id;
    const consumedKyber = bob.bundle.kyberPreKeys[0]?.id;
    // Make the id counters come round to the consumed ids, as they would after wrapping.
    await get()
      .db.knex("signal_local_devices")
      .where({ id: bob.device.state.ownerId })
      .update({ next_prekey_id: consumedEc, next_kyber_prekey_id: consumedKyber });
    const fresh = await bob.device.replenish({ ec: 3, kyber: 3 });
    assert.equal(
      fresh.preKeys.some((k) => k.id === consumedEc),
      false,
    );
    assert.equal(
      fresh.kyberPreKeys.some((k) => k.id === consumedKyber),
      false,
    );
    assert.equal(fresh.preKeys[0]?.id, (consumedEc ?? 0) + 1, "the next free id is used");

    // Once the retention period is over the id is free again.
    world.clock.advance(KEY_RETENTION_MS + DAY);
    await bob.device.purgeExpiredKeys();
    await get()
      .db.knex("signal_local_devices")
      .where({ id: bob.device.state.ownerId })
      .update({ next_prekey_id: consumedEc });
    const later = await bob.device.replenish({ ec: 1, kyber: 0 });
    assert.equal(later.preKeys[0]?.id, consumedEc);
  });

  it("after a signed prekey rotation a late message on the old keys still decrypts, until 90 days have passed", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const carol = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { oneTimePreKeys: 0 });
    const oldBundle = directoryBundle(bob.bundle, { oneTime: false });
    const to = [address(bob.jid, bob.device.deviceId)];
    await alice.device.sessions.processBundle(bob.jid, oldBundle);
    await carol.device.sessions.processBundle(bob.jid, oldBundle);
    const [late] = await alice.device.sessions.encryptForDevices(
      utf8("sent before the rotation"),
      to,
    );
    const [tooLate] = await carol.device.sessions.encryptForDevices(utf8("sent long ago"), to);
    assert.ok(late && tooLate);

    world.clock.advance(7 * DAY);
    const rotation = await bob.device.rotateSignedPreKey();
    assert.notEqual(rotation.signedPreKey.id, bob.bundle.signedPreKey.id);
    const current = await bob.device.bundle();
    assert.equal(current.signedPreKey.id, rotation.signedPreKey.id);
    assert.equal(current.lastResortKyberPreKey.id, rotation.lastResortKyberPreKey.id);

    await bob.device.purgeExpiredKeys();
    const plain = await bob.device.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: true,
        ciphertext: late.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(plain, "sent before the rotation");

    world.clock.advance(KEY_RETENTION_MS + DAY);
    await bob.device.purgeExpiredKeys();
    await assert.rejects(
      bob.device.sessions.decrypt(
        {
          senderJid: carol.jid,
          senderDevice: carol.device.deviceId,
          kex: true,
          ciphertext: tooLate.ciphertext,
        },
        async () => undefined,
      ),
      InvalidMessageError,
    );
  });

  it("deleting a local user wipes its keys, sessions and recorded identities", async function () {
    const { knex } = get().db;
    const world = makeCrypto(knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    await alice.device.sessions.encryptForDevices(utf8("x"), [
      address(bob.jid, bob.device.deviceId),
    ]);
    const owner = alice.device.state.ownerId;
    await world.crypto.deleteLocalUser(alice.jid);
    for (const table of [
      "signal_sessions",
      "signal_prekeys",
      "signal_signed_prekeys",
      "signal_kyber_prekeys",
    ]) {
      assert.deepEqual(await knex(table).where({ owner_id: owner }), [], table);
    }
    assert.deepEqual(await knex("signal_identities").where({ local_jid: alice.jid }), []);
    assert.deepEqual(await knex("signal_local_identities").where({ jid: alice.jid }), []);
    await assert.rejects(
      world.crypto.device(alice.jid, alice.device.deviceId),
      UnknownLocalDeviceError,
    );
    assert.ok(
      (await knex("signal_prekeys").where({ owner_id: bob.device.state.ownerId })).length > 0,
      "others keep theirs",
    );
  });
});
