import assert from "node:assert/strict";
import type { DeviceId } from "../../../src/util/ids.js";
import { describeOnBackends } from "../../helpers/db.js";
import { address, directoryBundle, makeCrypto, newDevice, uniqueJid, utf8 } from "./helpers.js";

const ids = (...n: number[]) => n as DeviceId[];

describeOnBackends("device-list cache", (get) => {
  it("a fetched list records added devices, forgets removed ones and ignores older versions", async function () {
    const { crypto, clock } = makeCrypto(get().db.knex);
    const bob = uniqueJid("gatekeeper");
    const first = await crypto.storeDeviceList(bob, 3, ids(1, 2));
    assert.deepEqual(first.added, [1, 2]);
    clock.advance(1000);
    const second = await crypto.storeDeviceList(bob, 4, ids(2, 5));
    assert.deepEqual(second.added, [5]);
    assert.deepEqual(second.removed, [1]);
    const older = await crypto.storeDeviceList(bob, 3, ids(1, 2));
    assert.equal(older.applied, false);
    const list = await crypto.deviceLists.get(bob);
    assert.equal(list?.version, 4);
    assert.deepEqual(
      list?.devices.map((d) => [d.id, d.addedAt - clock.t]),
      [
        [2, -1000],
        [5, 0],
      ],
    );
  });

  it("a read that overlaps a write does not keep the list the write replaced", async function () {
    const { crypto } = makeCrypto(get().db.knex);
    const dave = uniqueJid("gatekeeper");
    await crypto.storeDeviceList(dave, 1, ids(1));
    // Started before the write and finished after it: it may have read the old list.
    const reading = crypto.deviceLists.get(dave);
    await crypto.storeDeviceList(dave, 2, ids(1, 3));
    await reading;
    const next = await crypto.deviceLists.get(dave);
    assert.equal(next?.version, 2);
    assert.deepEqual(
      next?.devices.map((d) => d.id),
      [1, 3],
    );
  });

  it("a write of another user's list does not keep an overlapping read out of memory", async function () {
    const { knex } = get().db;
    const { crypto } = makeCrypto(knex);
    const erin = uniqueJid("gatekeeper");
    const frank = uniqueJid("gatekeeper");
    await crypto.storeDeviceList(erin, 1, ids(1));
    const reading = crypto.deviceLists.get(erin);
    await crypto.storeDeviceList(frank, 1, ids(4));
    await reading;
    let queries = 0;
    const onQuery = () => (queries += 1);
    knex.on("query", onQuery);
    try {
      assert.equal((await crypto.deviceLists.get(erin))?.version, 1);
      assert.equal(queries, 0, "erin's list was kept");
    } finally {
      knex.removeListener("query", onQuery);
    }
  });

  it("a list read again costs no query, and a stored or changed list is seen by the next read", async function () {
    const { knex } = get().db;
    const { crypto } = makeCrypto(knex);
    const carol = uniqueJid("gatekeeper");
    await crypto.storeDeviceList(carol, 1, ids(1));
    assert.deepEqual(
      (await crypto.deviceLists.get(carol))?.devices.map((d) => d.id),
      [1],
    );
    let queries = 0;
    const onQuery = () => (queries += 1);
    knex.on("query", onQuery);
    try {
      assert.deepEqual(
        (await crypto.deviceLists.get(carol))?.devices.map((d) => d.id),
        [1],
      );
      assert.equal(queries, 0, "read from memory");
    } finally {
      knex.removeListener("query", onQuery);
    }
    await crypto.storeDeviceList(carol, 2, ids(1, 3));
    assert.deepEqual(
      (await crypto.deviceLists.get(carol))?.devices.map((d) => d.id),
      [1, 3],
    );
    await crypto.handleDevicesChanged({
      jid: carol,
      version: 3,
      devices: [{ id: 3 as DeviceId }],
      removed: [1 as DeviceId],
    });
    assert.deepEqual(
      (await crypto.deviceLists.get(carol))?.devices.map((d) => d.id),
      [3],
    );
  });

  it("identity-changed and replaced devices lose their sessions and need fresh bundles", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    await world.crypto.storeDeviceList(bob.jid, 1, ids(1));
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    await alice.device.sessions.encryptForDevices(utf8("x"), [address(bob.jid, 1)]);
    const cached = await world.crypto.deviceLists.get(bob.jid);
    assert.equal(cached?.devices[0]?.registrationId, bob.bundle.registrationId);
    const update = await world.crypto.handleDevicesChanged({
      jid: bob.jid,
      version: 2,
      devices: [{ id: 1 as DeviceId, change: "identity-changed" }],
      removed: [],
    });
    assert.equal(update.identityChanged, true);
    assert.deepEqual(update.droppedSessions, [1]);
    assert.deepEqual(update.needBundles, [1]);
    assert.equal(await alice.device.sessions.hasSession(address(bob.jid, 1)), false);
    const replaced = await world.crypto.handleDevicesChanged({
      jid: bob.jid,
      version: 3,
      devices: [{ id: 1 as DeviceId, change: "replaced" }],
      removed: [],
    });
    assert.equal(replaced.identityChanged, false);
    assert.deepEqual(replaced.needBundles, [1]);
  });

  it("a session set up once a notice's list is visible is not dropped by that notice", async function () {
    // A send that reads the list a devices-changed notice stored fetches the replaced device's
    // bundle and sets up a session. The list and the dropped sessions change together, under the
    // contact's lock: that set-up waits for the drop instead of being deleted by it.
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    await world.crypto.storeDeviceList(bob.jid, 1, ids(1));
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const lists = world.crypto.deviceLists;
    const apply = lists.applyNotice.bind(lists);
    let setUp: Promise<void> | undefined;
    lists.applyNotice = async (notice, alongside) => {
      const update = await apply(notice, alongside);
      // The list is written: the send's set-up starts here (not awaited: it takes the lock).
      setUp = alice.device.sessions.processBundle(
        bob.jid,
        directoryBundle(bob.bundle, { index: 1 }),
      );
      return update;
    };
    try {
      const update = await world.crypto.handleDevicesChanged({
        jid: bob.jid,
        version: 2,
        devices: [{ id: 1 as DeviceId, change: "replaced" }],
        removed: [],
      });
      assert.deepEqual(update.droppedSessions, [1]);
    } finally {
      Reflect.deleteProperty(lists, "applyNotice");
    }
    await (setUp ?? assert.fail("the list was never written"));
    assert.equal(await alice.device.sessions.hasSession(address(bob.jid, 1)), true);
  });

  it("a notice's list and the deletion of the dropped sessions commit together", async function () {
    // A failure while deleting the sessions leaves the old list: the notice comes again (its
    // version is not yet stored) and drops them then.
    const { knex } = get().db;
    const world = makeCrypto(knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper", { deviceId: 1 });
    await world.crypto.storeDeviceList(bob.jid, 1, ids(1));
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const fail = (query: { sql: string }) => {
      if (/delete from .signal_sessions/i.test(query.sql)) throw new Error("injected");
    };
    knex.on("query", fail);
    try {
      await assert.rejects(
        world.crypto.handleDevicesChanged({
          jid: bob.jid,
          version: 2,
          devices: [{ id: 1 as DeviceId, change: "replaced" }],
          removed: [],
        }),
      );
    } finally {
      knex.removeListener("query", fail);
    }
    assert.equal((await world.crypto.deviceLists.get(bob.jid))?.version, 1);
  });
});
