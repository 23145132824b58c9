import assert from "node:assert/strict";
import { NoSessionError, UntrustedIdentityError } from "../../../src/interop/crypto/errors.js";
import { decodeBase64 } from "../../../src/interop/crypto/base64.js";
import { describeOnBackends, scratchTable } from "../../helpers/db.js";
import {
  address,
  directoryBundle,
  makeCrypto,
  newDevice,
  text,
  utf8,
  type CryptoWorld,
} from "./helpers.js";
import type { BareJid } from "../../../src/util/ids.js";

/** Bob reinstalls: logout wipes his keys, a new identity is created under the same JID. */
async function resetIdentity(world: CryptoWorld, jid: BareJid) {
  await world.crypto.deleteLocalUser(jid);
  return newDevice(world, "gatekeeper", { jid, deviceId: 1 });
}

describeOnBackends("contact identities and safety numbers", (get) => {
  it("both sides compute the same 60-digit safety number, and it changes after an identity reset", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    assert.equal(
      await alice.device.identities.safetyNumber(bob.jid),
      null,
      "unknown before contact",
    );

    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const [key] = await alice.device.sessions.encryptForDevices(utf8("hi"), [address(bob.jid, 1)]);
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
    const fromAlice = await alice.device.identities.safetyNumber(bob.jid);
    const fromBob = await bob.device.identities.safetyNumber(alice.jid);
    assert.ok(fromAlice && fromBob);
    assert.match(fromAlice.digits, /^\d{60}$/);
    assert.equal(fromAlice.groups.length, 12);
    assert.ok(fromAlice.groups.every((g) => /^\d{5}$/.test(g)));
    assert.equal(fromAlice.digits, fromBob.digits);
    assert.ok(fromAlice.scannable.length > 0);

    const bobAgain = await resetIdentity(world, bob.jid);
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bobAgain.bundle));
    const after = await alice.device.identities.safetyNumber(bob.jid);
    assert.ok(after);
    assert.notEqual(after.digits, fromAlice.digits);
  });

  it("an identity change is recorded in one transaction with what recordIdentityChanges writes (#16)", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const oldKey = decodeBase64(bob.bundle.identityKey);
    let fail = true;
    const written: string[] = [];
    const scratch = await scratchTable(get().db.knex);
    world.crypto.recordIdentityChanges(async (tx, event) => {
      await tx(scratch).insert({ key: `change ${event.id}`, value: event.remoteJid });
      if (fail) throw new Error("the database went away");
      written.push(event.id);
    });
    const bobAgain = await resetIdentity(world, bob.jid);
    await assert.rejects(
      alice.device.sessions.processBundle(bob.jid, directoryBundle(bobAgain.bundle)),
    );
    assert.equal(world.events.length, 0, "nothing emitted for a change that did not commit");
    const kept = await alice.device.identities.status(bob.jid);
    assert.deepEqual(kept?.identityKey, oldKey, "the new identity rolled back with the record");
    assert.deepEqual(await get().db.knex(scratch).where("key", "like", "change %"), []);
    fail = false;
    await alice.device.sessions.processBundle(
      bob.jid,
      directoryBundle(bobAgain.bundle, { index: 1 }),
    );
    assert.equal(world.events.length, 1);
    assert.deepEqual(written, [world.events[0]?.id]);
    const rows = await get().db.knex(scratch).where("key", "like", "change %");
    assert.deepEqual(
      rows.map((r: { key: string }) => r.key),
      [`change ${world.events[0]?.id}`],
    );
  });

  it("an identity change from a fetched bundle is recorded, reported once, and clears the verified mark", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const oldKey = decodeBase64(bob.bundle.identityKey);
    const shown = (await alice.device.identities.safetyNumber(bob.jid))?.digits ?? "";
    assert.equal(await alice.device.identities.markVerified(bob.jid, oldKey), true);
    assert.notEqual((await alice.device.identities.status(bob.jid))?.verifiedAt, null);
    assert.deepEqual(await alice.device.identities.verifiedContacts(), [bob.jid]);
    assert.equal(world.events.length, 0, "first contact is trust on first use, no notice");

    const bobAgain = await resetIdentity(world, bob.jid);
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bobAgain.bundle));
    assert.equal(world.events.length, 1);
    const [event] = world.events;
    assert.ok(event);
    assert.equal(event.remoteJid, bob.jid);
    assert.equal(event.wasVerified, true);
    assert.equal(event.sendingHeld, false);
    assert.deepEqual(new Uint8Array(event.previousKey), oldKey);
    assert.deepEqual(new Uint8Array(event.currentKey), decodeBase64(bobAgain.bundle.identityKey));
    const status = await alice.device.identities.status(bob.jid);
    assert.equal(status?.verifiedAt, null);
    assert.deepEqual(await alice.device.identities.verifiedContacts(), [], "the one mark cleared");
    assert.equal(status?.sendingAllowed, true, "warn mode keeps sending");
    // A stale key cannot be marked verified, nor can the safety number shown for it.
    assert.equal(await alice.device.identities.markVerified(bob.jid, oldKey), false);
    assert.equal(await alice.device.identities.markVerifiedIfShown(bob.jid, shown), false);
    const current = (await alice.device.identities.safetyNumber(bob.jid))?.digits ?? "";
    assert.notEqual(current, shown);
    assert.equal(await alice.device.identities.markVerifiedIfShown(bob.jid, current), true);
    assert.equal(await alice.device.identities.clearVerified(bob.jid), true);

    const [key] = await alice.device.sessions.encryptForDevices(utf8("new code"), [
      address(bob.jid, 1),
    ]);
    assert.ok(key);
    const plain = await bobAgain.device.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: true,
        ciphertext: key.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(plain, "new code");
  });

  it("a PreKeySignalMessage from a changed identity is accepted and reported", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider", { oneTimePreKeys: 4 });
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    await bob.device.sessions.processBundle(alice.jid, directoryBundle(alice.bundle, { index: 0 }));
    const [k1] = await bob.device.sessions.encryptForDevices(utf8("old bob"), [
      address(alice.jid, alice.device.deviceId),
    ]);
    assert.ok(k1);
    await alice.device.sessions.decrypt(
      { senderJid: bob.jid, senderDevice: 1 as never, kex: true, ciphertext: k1.ciphertext },
      async () => undefined,
    );

    const bobAgain = await resetIdentity(world, bob.jid);
    await bobAgain.device.sessions.processBundle(
      alice.jid,
      directoryBundle(alice.bundle, { index: 1 }),
    );
    const [k2] = await bobAgain.device.sessions.encryptForDevices(utf8("new bob"), [
      address(alice.jid, alice.device.deviceId),
    ]);
    assert.ok(k2);
    const plain = await alice.device.sessions.decrypt(
      { senderJid: bob.jid, senderDevice: 1 as never, kex: true, ciphertext: k2.ciphertext },
      async (p) => text(p),
    );
    assert.equal(plain, "new bob", "receiving is always trusted (§12.4)");
    const changes = world.events.filter((e) => e.localJid === alice.jid);
    assert.equal(changes.length, 1);
  });

  it("in hold mode a changed identity blocks sending until the user confirms it", async function () {
    const { knex } = get().db;
    const aliceWorld = makeCrypto(knex, { policy: "hold" });
    const bobWorld = makeCrypto(knex);
    const alice = await newDevice(aliceWorld, "provider");
    const bob = await newDevice(bobWorld, "gatekeeper", { deviceId: 1 });
    const to = [address(bob.jid, 1)];
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    await alice.device.sessions.encryptForDevices(utf8("before"), to);

    const bobAgain = await resetIdentity(bobWorld, bob.jid);
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bobAgain.bundle));
    assert.equal(aliceWorld.events[0]?.sendingHeld, true);
    await assert.rejects(
      alice.device.sessions.encryptForDevices(utf8("held"), to),
      (err: unknown) => {
        assert.ok(err instanceof UntrustedIdentityError);
        assert.deepEqual(
          new Uint8Array(err.previousKey ?? []),
          decodeBase64(bob.bundle.identityKey),
        );
        assert.deepEqual(
          new Uint8Array(err.currentKey ?? []),
          decodeBase64(bobAgain.bundle.identityKey),
        );
        return true;
      },
    );
    assert.equal((await alice.device.identities.status(bob.jid))?.sendingAllowed, false);

    assert.equal(await alice.device.identities.confirm(bob.jid), true);
    const [key] = await alice.device.sessions.encryptForDevices(utf8("confirmed"), to);
    assert.ok(key);
    const plain = await bobAgain.device.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: key.kex,
        ciphertext: key.ciphertext,
      },
      async (p) => text(p),
    );
    assert.equal(plain, "confirmed");
  });

  it("a session built on a replaced identity is not used for sending", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob1 = await newDevice(world, "gatekeeper", { deviceId: 1 });
    const bob2 = await world.crypto.createLocalIdentity(bob1.jid, { deviceId: 2 as never });
    await alice.device.sessions.processBundle(bob1.jid, directoryBundle(bob1.bundle));
    await alice.device.sessions.processBundle(bob1.jid, directoryBundle(bob2.bundle));
    // Bob resets on device 1; the gatekeeper drops device 2, but its notification is not in yet.
    const bobAgain = await resetIdentity(world, bob1.jid);
    await alice.device.sessions.processBundle(bob1.jid, directoryBundle(bobAgain.bundle));
    await assert.rejects(
      alice.device.sessions.encryptForDevices(utf8("x"), [
        address(bob1.jid, 1),
        address(bob1.jid, 2),
      ]),
      (err: unknown) => err instanceof NoSessionError && err.missing[0]?.device === 2,
    );
  });
});
