import assert from "node:assert/strict";
import {
  decodeBundlesResult,
  decodeDeviceList,
  decodePreKeyCounts,
  decodeDevicesChanged,
  encodeBundlesFetch,
  encodeDevicesFetch,
  encodeDevicesPublish,
  encodePreKeyCountQuery,
  encodePreKeysUpload,
  encodePublishedBundle,
  encodeRotate,
  type PublishedBundle,
} from "../../src/interop/codec/index.js";
import type { BareJid, DeviceId } from "../../src/util/ids.js";
import { toOneTime, toPublished } from "../../simulator/users/convert.js";
import { ALICE, BOB, child, childNamed, errorOf, providerCrypto } from "./harness.js";
import { ProviderUser, text } from "./provider-user.js";
import { delivery, GK, makeWorld, PHONE, type World } from "./world.js";

const flip = (bytes: Uint8Array): Uint8Array => {
  const copy = new Uint8Array(bytes);
  copy[5] = (copy[5] ?? 0) ^ 0xff;
  return copy;
};

describe("simulator: key directory (§11, E17, E18)", function () {
  this.timeout(30000);
  let w: World;
  let bob: ProviderUser;
  let bobBundle: PublishedBundle;
  const knexes: { destroy(): Promise<void> }[] = [];

  beforeEach(async function () {
    w = await makeWorld({ limits: { "key-fetches-per-hour": 4, "max-ec-prekeys-per-publish": 6 } });
    const { crypto, knex } = await providerCrypto(w.clock.now);
    knexes.push(knex);
    bob = await ProviderUser.create(crypto, w.provider, BOB, 3, 4);
    bobBundle = toPublished(bob.bundle);
  });
  afterEach(async function () {
    await w.close();
    for (const k of knexes.splice(0)) await k.destroy();
  });

  const publish = (b: PublishedBundle, from = BOB) =>
    w.provider.iq("set", encodePublishedBundle(b), { from });
  const devices = (ids: number[], from = BOB) =>
    w.provider.iq("set", encodeDevicesPublish(ids as DeviceId[]), { from });

  it("verifies every signature and key on publish", async function () {
    const badSpk = {
      ...bobBundle,
      signedPreKey: {
        ...bobBundle.signedPreKey,
        signature: flip(bobBundle.signedPreKey.signature),
      },
    };
    const e1 = errorOf(await publish(badSpk));
    assert.deepEqual([e1.condition, e1.app?.name], ["bad-request", "bad-signature"]);
    const lr = bobBundle.lastResortKyberPreKey;
    const badKyber = {
      ...bobBundle,
      lastResortKyberPreKey: { ...lr, signature: flip(lr.signature) },
    };
    assert.equal(errorOf(await publish(badKyber)).app?.name, "bad-signature");
    const oneTime = bobBundle.preKeys?.kyber[0];
    assert.ok(oneTime !== undefined);
    const badOneTime = {
      ...bobBundle,
      preKeys: { ec: [], kyber: [{ ...oneTime, signature: flip(oneTime.signature) }] },
    };
    assert.equal(errorOf(await publish(badOneTime)).app?.name, "bad-signature");
    const wrongType = new Uint8Array(bobBundle.identity);
    wrongType[0] = 0x07;
    const badKey = errorOf(await publish({ ...bobBundle, identity: wrongType }));
    assert.deepEqual([badKey.condition, badKey.app?.name], ["bad-request", "bad-key"]);
    assert.equal((await publish(bobBundle)).attrs.type, "result");
  });

  it("refuses id collisions in an id space with conflict", async function () {
    const lr = bobBundle.lastResortKyberPreKey;
    const first = bobBundle.preKeys?.kyber[0];
    assert.ok(first !== undefined);
    const clash = { ...bobBundle, preKeys: { ec: [], kyber: [{ ...first, id: lr.id }] } };
    const e = errorOf(await publish(clash));
    assert.deepEqual([e.condition, e.type], ["conflict", "cancel"]);
  });

  it("publishes device lists with versions: bundle required, at most max-devices-per-user", async function () {
    const missing = errorOf(await devices([3, 4]));
    assert.deepEqual(
      [missing.condition, missing.app?.name, missing.app?.attrs.device],
      ["item-not-found", "no-bundle", "3"],
    );
    await publish(bobBundle);
    const v1 = decodeDeviceList(child(await devices([3])));
    const same = decodeDeviceList(child(await devices([3])));
    const empty = decodeDeviceList(child(await devices([])));
    assert.equal(v1.version, 1);
    assert.equal(same.version, 1);
    assert.equal(empty.version, 2);
    const tooMany = errorOf(await devices([1, 2, 3, 4, 5, 6]));
    assert.deepEqual(
      [tooMany.condition, tooMany.app?.name],
      ["policy-violation", "too-many-devices"],
    );
    // Bob's bundle left with the list: a new list needs it again.
    assert.equal(errorOf(await devices([3])).app?.name, "no-bundle");
  });

  it("refuses a different identity without reset and accepts a deliberate reset", async function () {
    await publish(bobBundle);
    await devices([3]);
    const { crypto, knex } = await providerCrypto(w.clock.now);
    knexes.push(knex);
    const other = await ProviderUser.create(crypto, w.provider, BOB, 4, 1);
    const otherBundle = toPublished(other.bundle);
    const e = errorOf(await publish(otherBundle));
    assert.deepEqual(
      [e.condition, e.type, e.app?.name],
      ["conflict", "cancel", "identity-mismatch"],
    );
    assert.equal((await publish({ ...otherBundle, reset: true })).attrs.type, "result");
    const list = decodeDeviceList(
      child(await w.provider.iq("get", encodeDevicesFetch(BOB as BareJid), { from: BOB })),
    );
    assert.deepEqual(list.devices, [4]);
    assert.equal(list.version, 2);
  });

  it("hands out each one-time prekey once, one-time Kyber before last resort, and caps fetches", async function () {
    const fetch = () => w.provider.iq("get", encodeBundlesFetch(GK), { from: ALICE });
    const seenEc = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const { bundles } = decodeBundlesResult(child(await fetch()));
      assert.equal(bundles.length, 2);
      for (const b of bundles) {
        assert.ok(b.preKey !== undefined);
        assert.ok(!seenEc.has(b.device * 1e8 + b.preKey.id), "EC prekey handed out twice");
        seenEc.add(b.device * 1e8 + b.preKey.id);
      }
    }
    const e = errorOf(await fetch());
    assert.deepEqual(
      [e.condition, e.type, e.app?.attrs.scope],
      ["resource-constraint", "wait", "key-fetch"],
    );
  });

  it("falls back to the last-resort Kyber key when one-time keys run out", async function () {
    const lrId = bobBundle.lastResortKyberPreKey.id;
    const b = {
      ...bobBundle,
      preKeys: {
        ec: bobBundle.preKeys?.ec.slice(0, 1) ?? [],
        kyber: bobBundle.preKeys?.kyber.slice(0, 1) ?? [],
      },
    };
    await publish(b);
    await devices([3]);
    await w.sim.users.send(PHONE, BOB as BareJid, text("first")).catch(() => undefined);
    const bundles = await w.sim.gatekeeper.run(() =>
      w.sim.gatekeeper.services.keys.fetchBundles(BOB as BareJid, []),
    );
    assert.equal(bundles[0]?.preKey, undefined);
    assert.equal(bundles[0]?.kyberPreKey.id, lrId);
    const again = await w.sim.gatekeeper.run(() =>
      w.sim.gatekeeper.services.keys.fetchBundles(BOB as BareJid, []),
    );
    assert.equal(again[0]?.kyberPreKey.id, lrId);
  });

  it("replenishes and counts one-time keys within the publish and store limits", async function () {
    await publish({ ...bobBundle, preKeys: undefined });
    await devices([3]);
    const count = () => w.provider.iq("get", encodePreKeyCountQuery(3 as DeviceId), { from: BOB });
    assert.deepEqual(decodePreKeyCounts(child(await count())), { device: 3, ec: 0, kyber: 0 });
    const keys = toOneTime(bob.bundle);
    const upload = await w.provider.iq("set", encodePreKeysUpload(3 as DeviceId, keys), {
      from: BOB,
    });
    assert.deepEqual(decodePreKeyCounts(child(upload)), { device: 3, ec: 4, kyber: 4 });
    const again = errorOf(
      await w.provider.iq(
        "set",
        encodePreKeysUpload(3 as DeviceId, { ec: keys.ec.slice(0, 1), kyber: [] }),
        { from: BOB },
      ),
    );
    assert.deepEqual([again.condition, again.type], ["conflict", "cancel"]);
    const more = await bob.device.replenish({ ec: 7, kyber: 0 });
    const tooMany = errorOf(
      await w.provider.iq("set", encodePreKeysUpload(3 as DeviceId, toOneTime(more)), {
        from: BOB,
      }),
    );
    assert.deepEqual([tooMany.condition, tooMany.app?.name], ["policy-violation", "prekey-limit"]);
  });

  it("rotates the signed prekey, refusing a reused id and a bad signature", async function () {
    await publish(bobBundle);
    await devices([3]);
    const rotation = await bob.device.rotateSignedPreKey();
    const spk: { id: number; publicKey: Uint8Array; signature: Uint8Array } = {
      id: rotation.signedPreKey.id,
      publicKey: new Uint8Array(Buffer.from(rotation.signedPreKey.publicKey, "base64")),
      signature: new Uint8Array(Buffer.from(rotation.signedPreKey.signature, "base64")),
    };
    const rotate = (s: typeof spk) =>
      w.provider.iq(
        "set",
        encodeRotate({ device: 3 as DeviceId, signedPreKey: s, lastResortKyberPreKey: undefined }),
        { from: BOB },
      );
    assert.equal(
      errorOf(await rotate({ ...spk, signature: flip(spk.signature) })).app?.name,
      "bad-signature",
    );
    assert.equal((await rotate(spk)).attrs.type, "result");
    assert.equal(errorOf(await rotate(spk)).condition, "conflict");
  });

  it("tells a provider user who fetched keys about added devices and identity resets", async function () {
    await w.alice.fetchDevices(GK);
    const mark = w.provider.received.length;
    const added = await w.sim.users.addDevice(PHONE);
    const n1 = decodeDevicesChanged(
      childNamed(await delivery(w.provider, "devices-changed", mark), "devices-changed") as never,
    );
    assert.equal(n1.jid, GK);
    assert.deepEqual(n1.devices.find((d) => d.id === added)?.change, "added");
    const mark2 = w.provider.received.length;
    const fresh = await w.sim.users.resetIdentity(PHONE);
    const n2 = decodeDevicesChanged(
      childNamed(await delivery(w.provider, "devices-changed", mark2), "devices-changed") as never,
    );
    assert.deepEqual(n2.devices, [{ id: fresh, change: "identity-changed" }]);
    assert.equal(n2.removed.length, 3);
    assert.ok(n2.version > n1.version);
  });

  it("sends prekeys-low when a consumption leaves the count below the watermark, once per hour", async function () {
    const mark = w.provider.received.length;
    await w.sim.users.send(PHONE, ALICE as BareJid, text("hello"));
    const low = await delivery(w.provider, "prekeys-low", mark);
    assert.equal(low.attrs.to, ALICE);
    assert.equal(childNamed(low, "prekeys-low")?.attrs.ec, "4");
    // A second consumption within the hour sends no second notification (E17).
    await w.sim.gatekeeper.run(() =>
      w.sim.gatekeeper.services.keys.fetchBundles(ALICE as BareJid, []),
    );
    await w.sim.gatekeeper.run(async () => undefined);
    const lows = w.provider.received.filter((s) => childNamed(s, "prekeys-low") !== undefined);
    assert.equal(lows.length, 1);
    const e = errorOf(
      await w.provider.iq("get", encodeDevicesFetch("491705550000@wa.example" as BareJid), {
        from: ALICE,
      }),
    );
    assert.equal(e.app?.name, "not-reachable");
  });
});
