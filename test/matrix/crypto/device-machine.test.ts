import assert from "node:assert/strict";
import { KeyVault } from "../../../src/vault/key-vault.js";
import type { CryptoHttp } from "../../../src/matrix/crypto/homeserver.js";
import { IndexedDbMirror } from "../../../src/matrix/crypto/idb-mirror.js";
import { DeviceMachine, type DeviceSyncChanges } from "../../../src/matrix/crypto/machine.js";
import { silentLogger } from "../../../src/util/log.js";
import { describeOnBackends } from "../../helpers/db.js";

const vault = KeyVault.fromKey(new Uint8Array(32).fill(5));

/** A homeserver that accepts key uploads and reports `counts` one-time keys back. */
function keyServer(counts: Record<string, number>): CryptoHttp & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    request: async (method: string, path: string) => {
      calls.push(`${method} ${path}`);
      if (path.endsWith("/keys/upload")) return { one_time_key_counts: counts };
      if (path.endsWith("/keys/query")) return { device_keys: {}, failures: {} };
      return {};
    },
  } as unknown as CryptoHttp & { calls: string[] };
}

describeOnBackends("a bridge device's machine fed by appservice transactions", (get) => {
  let mirror: IndexedDbMirror;
  let machine: DeviceMachine;
  let fed: number;

  beforeEach(async function () {
    mirror = IndexedDbMirror.install(get().db.knex, vault);
    machine = await DeviceMachine.open(
      { userId: "@ghost:example.org", deviceId: "GHOSTDEV", accessToken: "t" },
      {
        http: keyServer({ signed_curve25519: 50 }),
        mirror,
        storeKey: new Uint8Array(32).fill(7),
        log: silentLogger(),
      },
    );
    await machine.sendOutgoing();
    fed = 0;
    const olm = machine.olm as unknown as { receiveSyncChanges: (...a: unknown[]) => unknown };
    const original = olm.receiveSyncChanges.bind(olm);
    olm.receiveSyncChanges = (...args: unknown[]) => {
      fed += 1;
      return original(...args);
    };
  });

  afterEach(async function () {
    machine.close();
    await mirror.flush();
    mirror.uninstall();
  });

  const counts = (n: number): DeviceSyncChanges => ({
    toDevice: [],
    changed: [],
    left: [],
    oneTimeKeyCounts: { signed_curve25519: n },
    unusedFallbackKeyTypes: ["signed_curve25519"],
  });

  it("takes repeated unchanged key counts once (each receiveSyncChanges re-saves the account)", async function () {
    for (let i = 0; i < 5; i++) await machine.receive(counts(50));
    assert.equal(fed, 1);
  });

  it("still takes counts that changed, and anything with to-device events or device lists", async function () {
    await machine.receive(counts(50));
    await machine.receive(counts(49));
    await machine.receive({ ...counts(49), changed: ["@user:example.org"] });
    await machine.receive({ ...counts(49), unusedFallbackKeyTypes: [] });
    await machine.receive({
      ...counts(49),
      unusedFallbackKeyTypes: [],
      toDevice: [{ type: "m.dummy", sender: "@user:example.org", content: {} }],
    });
    assert.equal(fed, 5);
  });

  it("a machine loaded again takes the counts again", async function () {
    await machine.receive(counts(50));
    assert.equal(fed, 1);
    const again = await DeviceMachine.open(
      { userId: "@ghost:example.org", deviceId: "GHOSTDEV", accessToken: "t" },
      {
        http: keyServer({ signed_curve25519: 50 }),
        mirror,
        storeKey: new Uint8Array(32).fill(7),
        log: silentLogger(),
      },
    );
    let refed = 0;
    const olm = again.olm as unknown as { receiveSyncChanges: (...a: unknown[]) => unknown };
    const original = olm.receiveSyncChanges.bind(olm);
    olm.receiveSyncChanges = (...args: unknown[]) => {
      refed += 1;
      return original(...args);
    };
    await again.receive(counts(50));
    assert.equal(refed, 1);
    again.close();
  });
});
