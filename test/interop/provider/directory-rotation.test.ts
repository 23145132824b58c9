import assert from "node:assert/strict";
import { SqlRunner } from "../../../src/db/sql.js";
import { encodeDeviceList } from "../../../src/interop/codec/keys.js";
import { DEFAULT_LIMITS } from "../../../src/interop/codec/limits.js";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import { SignalCrypto } from "../../../src/interop/crypto/signal-crypto.js";
import { KeyDirectory } from "../../../src/interop/provider/directory.js";
import { GroupStore } from "../../../src/interop/provider/groups.js";
import { applyNotification } from "../../../src/interop/provider/notifications.js";
import type { GatekeeperIq } from "../../../src/interop/provider/iq-client.js";
import type { BareJid, DeviceId } from "../../../src/util/ids.js";
import { silentLogger } from "../../../src/util/log.js";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { describeOnBackends } from "../../helpers/db.js";

const alice = "alice@bridge.example" as BareJid;
const bob = "bob@bridge.example" as BareJid;
const eve = "491705559999@wa.example" as BareJid;
const ids = (...n: number[]) => n as DeviceId[];

/**
 * §17.5 for device lists learnt from the directory rather than from a devices-changed notice:
 * the cache is shared by all local users, so a device gone from a fetched list must make every
 * local user's groups with that member rotate, before a send can see the new list.
 */
describeOnBackends("key directory: a fetched list without a device rotates sender keys", (get) => {
  let n = 0;
  /** The member whose devices change: a JID per test (the list cache is shared per database). */
  let dan: BareJid;
  let crypto: SignalCrypto;
  let groups: GroupStore;
  let directory: KeyDirectory;
  let answer: XmlElement;
  let g: { withDanA: string; withDanB: string; withoutDan: string };

  const tx = (fn: Parameters<SqlRunner["transaction"]>[0]) =>
    SqlRunner.of(get().db.knex).transaction(fn);
  /** The group stored with `members` and our sender key rotated and handed out (nothing due). */
  async function group(local: BareJid, jid: string, members: BareJid[]): Promise<void> {
    await tx((t) =>
      groups.save(t, local, {
        jid,
        subject: "",
        version: 1,
        participants: [local, ...members].map((m) => ({ jid: m, role: "member" as const })),
      }),
    );
    const rotation = (await groups.get(local, jid))?.rotation ?? assert.fail();
    await tx((t) =>
      groups.recordHolders(t, local, jid, `d-${jid}`, [{ jid: dan, device: 1 }], true, rotation),
    );
  }
  const pending = async (local: BareJid, jid: string) =>
    (await groups.get(local, jid))?.rotatePending ?? assert.fail(`no group ${jid}`);

  beforeEach(async function () {
    n += 1;
    dan = `4917055510${String(n).padStart(2, "0")}@wa.example` as BareJid;
    const { knex } = get().db;
    const now = () => Date.now();
    crypto = new SignalCrypto({ knex, vault: KeyVault.fromKey(Buffer.alloc(32, 7)), now });
    groups = new GroupStore(knex, now);
    const gk = {
      request: () => Promise.resolve(answer),
    } as unknown as GatekeeperIq;
    directory = new KeyDirectory({
      gk,
      crypto,
      knex,
      now,
      logger: silentLogger(),
      limits: () => DEFAULT_LIMITS,
    });
    g = {
      withDanA: `a${n}@g.wa.example`,
      withDanB: `b${n}@g.wa.example`,
      withoutDan: `c${n}@g.wa.example`,
    };
    await group(alice, g.withDanA, [dan, eve]);
    await group(bob, g.withDanB, [dan]);
    await group(alice, g.withoutDan, [eve]);
    // Dan's list as cached before.
    await crypto.storeDeviceList(dan, 1, ids(1, 2));
  });

  it("a refresh that finds a device gone marks every local user's groups with the member, before the list is visible", async function () {
    answer = encodeDeviceList({ jid: dan, version: 2, devices: ids(1) });
    const store = crypto.storeDeviceList.bind(crypto);
    const seen: boolean[] = [];
    crypto.storeDeviceList = async (...args) => {
      seen.push(await pending(alice, g.withDanA), await pending(bob, g.withDanB));
      return store(...args);
    };
    assert.deepEqual(await directory.deviceIds(alice, dan, { refresh: true }), ids(1));
    assert.deepEqual(seen, [true, true], "marked before the list was stored");
    assert.equal(await pending(alice, g.withDanA), true);
    assert.equal(await pending(bob, g.withDanB), true);
    assert.equal(await pending(alice, g.withoutDan), false, "a group without dan");
    assert.deepEqual(
      (await crypto.deviceLists.get(dan))?.devices.map((d) => d.id),
      ids(1),
    );
  });

  it("an added device, or a list older than the cached one, asks for no rotation", async function () {
    answer = encodeDeviceList({ jid: dan, version: 2, devices: ids(1, 2, 3) });
    await directory.deviceIds(alice, dan, { refresh: true });
    answer = encodeDeviceList({ jid: dan, version: 1, devices: ids(1) });
    await directory.deviceIds(alice, dan, { refresh: true });
    assert.equal(await pending(alice, g.withDanA), false);
    assert.equal(await pending(bob, g.withDanB), false);
    assert.deepEqual(
      (await crypto.deviceLists.get(dan))?.devices.map((d) => d.id),
      ids(1, 2, 3),
    );
  });

  it("a devices-changed notice to one local user marks every local user's groups with the member", async function () {
    const notice = (version: number) => ({
      type: "devices-changed" as const,
      devicesChanged: {
        jid: dan,
        version,
        devices: [{ id: 1 as DeviceId, change: undefined }],
        removed: ids(2),
      },
    });
    const ctx = { crypto, directory, groups: { store: groups } } as unknown as Parameters<
      typeof applyNotification
    >[0];
    await applyNotification(ctx, notice(2), alice, silentLogger());
    assert.equal(await pending(alice, g.withDanA), true);
    assert.equal(await pending(bob, g.withDanB), true, "bob's send sees the list already");
    assert.equal(await pending(alice, g.withoutDan), false, "a group without dan");
    assert.deepEqual(
      (await crypto.deviceLists.get(dan))?.devices.map((d) => d.id),
      ids(1),
    );
  });

  it("a member whose id holds LIKE's special characters is found, and only that member", async function () {
    const odd = `a%b_c!d\\e"${n}@wa.example` as BareJid;
    const near = `aXbYc!d\\e"${n}@wa.example` as BareJid;
    const withOdd = `odd${n}@g.wa.example`;
    const withNear = `near${n}@g.wa.example`;
    await group(bob, withOdd, [odd]);
    await group(bob, withNear, [near]);
    await groups.markRotationForAll(odd);
    assert.equal(await pending(bob, withOdd), true);
    assert.equal(await pending(bob, withNear), false);
  });

  it("stale-device-list (no version) without a device marks the groups too", async function () {
    await directory.storeDeviceList(dan, null, ids(2));
    assert.equal(await pending(alice, g.withDanA), true);
    assert.equal(await pending(bob, g.withDanB), true);
    assert.equal(await pending(alice, g.withoutDan), false);
  });
});
