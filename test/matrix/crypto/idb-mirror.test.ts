import assert from "node:assert/strict";
import * as wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { IndexedDbMirror, MIRRORED_PREFIX } from "../../../src/matrix/crypto/idb-mirror.js";
import type {
  IDBCursorWithValue,
  IDBDatabase,
  IDBRequest,
  IDBTransaction,
} from "../../../src/matrix/crypto/idb-types.js";
import { IDBKeyRange } from "fake-indexeddb";
import { describeOnBackends } from "../../helpers/db.js";

const vault = KeyVault.fromKey(new Uint8Array(32).fill(3));
const STORE = `${MIRRORED_PREFIX}test/@bot_1%:example.org`;
const storeKey = new Uint8Array(32).fill(9);

async function machine(): Promise<wasm.OlmMachine> {
  await wasm.initAsync();
  const handle = await wasm.StoreHandle.openWithKey(STORE, storeKey);
  return (await wasm.OlmMachine.initFromStore(
    new wasm.UserId("@bot:example.org"),
    new wasm.DeviceId("BOTDEVICE"),
    handle,
  )) as wasm.OlmMachine;
}

/** Raw IndexedDB access to one database of the current mirror's factory. */
function openRaw(mirror: IndexedDbMirror, name: string, upgrade?: (db: IDBDatabase) => void) {
  return new Promise<IDBDatabase>((resolve, reject) => {
    const req = mirror.factory.open(name, 1);
    req.onupgradeneeded = () => upgrade?.(req.result);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
}

describeOnBackends("the crypto store mirror", (get) => {
  it("an OlmMachine restored from the bridge database keeps its identity keys and device", async function () {
    const { knex } = get().db;
    const first = IndexedDbMirror.install(knex, vault);
    const before = await machine();
    const identity = before.identityKeys.ed25519.toBase64();
    await first.flush();
    before.free();
    first.uninstall();

    // A new process: an empty in-memory IndexedDB, filled only from the SQL rows.
    const second = IndexedDbMirror.install(knex, vault);
    await second.restore(STORE);
    const after = await machine();
    assert.equal(after.identityKeys.ed25519.toBase64(), identity);
    assert.equal(after.deviceId.toString(), "BOTDEVICE");
    after.free();
    second.uninstall();
  });

  it("values are sealed at rest: a row copied under another key does not open", async function () {
    const { knex } = get().db;
    const rows = (await knex("matrix_crypto_records").where("db_name", "like", `${STORE}%`)) as {
      db_name: string;
      store: string;
      key_id: string;
      value: Buffer;
    }[];
    assert.ok(rows.length > 0);
    const row = rows[0]!;
    assert.doesNotThrow(() =>
      vault.open(row.value, ["matrix_crypto_records", row.db_name, row.store, row.key_id]),
    );
    assert.throws(() =>
      vault.open(row.value, ["matrix_crypto_records", row.db_name, row.store, "other"]),
    );
  });

  it("deletes by key range, cursor writes and clears are mirrored; aborted transactions are not", async function () {
    const { knex } = get().db;
    const name = `${MIRRORED_PREFIX}raw`;
    const mirror = IndexedDbMirror.install(knex, vault);
    const db = await openRaw(mirror, name, (d) => {
      d.createObjectStore("kv");
      d.createObjectStore("inline", { keyPath: "id" }).createIndex("by_n", "n");
    });
    let tx = db.transaction(["kv", "inline"], "readwrite");
    for (let i = 0; i < 5; i++) tx.objectStore("kv").put({ i }, `k${i}`);
    tx.objectStore("inline").put({ id: "a", n: 1, bytes: new Uint8Array([1, 2]) });
    tx.objectStore("inline").put({ id: "b", n: 2 });
    await done(tx);
    tx = db.transaction(["kv", "inline"], "readwrite");
    tx.objectStore("kv").delete(
      (IDBKeyRange as { bound(a: string, b: string): never }).bound("k1", "k2"),
    );
    tx
      .objectStore("inline")
      .index("by_n")
      .openCursor((IDBKeyRange as { only(a: number): never }).only(2)).onsuccess = function () {
      const cursor = (this as IDBRequest<IDBCursorWithValue | null>).result;
      cursor?.update({ id: "b", n: 2, changed: true });
    };
    await done(tx);
    tx = db.transaction(["kv"], "readwrite");
    tx.objectStore("kv").put({ i: 99 }, "aborted");
    tx.abort();
    await done(tx).catch(() => undefined);
    await mirror.flush();
    db.close();
    mirror.uninstall();

    const again = IndexedDbMirror.install(knex, vault);
    await again.restore(name);
    const reopened = await openRaw(again, name);
    const read = reopened.transaction(["kv", "inline"], "readonly");
    const keys = read.objectStore("kv").getAllKeys();
    const b = read.objectStore("inline").get("b");
    const a = read.objectStore("inline").get("a");
    await done(read);
    assert.deepEqual(keys.result, ["k0", "k3", "k4"]);
    assert.deepEqual(b.result, { id: "b", n: 2, changed: true });
    assert.deepEqual(a.result, { id: "a", n: 1, bytes: new Uint8Array([1, 2]) });

    const clear = reopened.transaction(["kv"], "readwrite");
    clear.objectStore("kv").clear();
    await done(clear);
    await again.flush();
    reopened.close();
    again.uninstall();
    const third = IndexedDbMirror.install(knex, vault);
    await third.restore(name);
    const last = await openRaw(third, name);
    const count = last.transaction(["kv"], "readonly").objectStore("kv").count();
    await new Promise<void>((r) => (count.onsuccess = () => r()));
    assert.equal(count.result, 0);
    last.close();
    third.uninstall();
  });
});
