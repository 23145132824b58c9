import { createHash } from "node:crypto";
import { deserialize, serialize } from "node:v8";
import * as fake from "fake-indexeddb";
import type { Knex } from "knex";
import type { KeyVault } from "../../vault/key-vault.js";
import { BridgeError, describeError } from "../../util/errors.js";
import { silentLogger, type Logger } from "../../util/log.js";
import type {
  IDBCursor,
  IDBDatabase,
  IDBFactory,
  IDBKeyRange,
  IDBObjectStore,
  IDBRequest,
  IDBTransaction,
  IDBValidKey,
} from "./idb-types.js";

interface Constructor<T> {
  new (): T;
  readonly prototype: T;
}
/** fake-indexeddb's classes, typed with the structural types of idb-types.ts. */
const FakeFactory = fake.IDBFactory as unknown as Constructor<IDBFactory>;
const FakeObjectStore = fake.IDBObjectStore as unknown as Constructor<IDBObjectStore>;
const FakeCursor = fake.IDBCursor as unknown as Constructor<IDBCursor>;
const FakeIndex = fake.IDBIndex as unknown as Constructor<unknown>;

/**
 * The OlmMachine of matrix-sdk-crypto-wasm persists into IndexedDB, which Node does not have.
 * This module gives it fake-indexeddb (a complete in-memory IndexedDB) and mirrors every
 * committed write of the databases named with {@link MIRRORED_PREFIX} into the bridge database,
 * write-through: docs/matrix-encryption.md says why this and not a pickle export.
 *
 * How: the five IndexedDB mutations (object store put/add/delete/clear, cursor update/delete) are
 * wrapped once per process. A write is recorded when its request succeeds and moved to the
 * pending set only when its IndexedDB transaction completes (an aborted transaction leaves
 * nothing). {@link IndexedDbMirror.flush} writes the pending set in one SQL transaction; callers
 * await it before any acknowledgement that depends on the state (rule 4 of message-path.md).
 * Values are v8-serialized (the structured-clone format IndexedDB itself stores) and sealed with
 * the key vault, bound to their row.
 *
 * A database is rebuilt from the mirror ({@link IndexedDbMirror.restore}) before its machine
 * opens it, and dropped from memory ({@link IndexedDbMirror.evict}) when the machine is idle.
 */
export const MIRRORED_PREFIX = "mwi-crypto/";

const RECORDS = "matrix_crypto_records";
const SCHEMAS = "matrix_crypto_schemas";

interface IndexShape {
  name: string;
  keyPath: string | string[];
  unique: boolean;
  multiEntry: boolean;
}
interface StoreShape {
  name: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  indexes: IndexShape[];
}
interface DbShape {
  version: number;
  stores: StoreShape[];
}

/** One pending change of a record: a value to write, or null to delete it. */
interface RecordChange {
  store: string;
  key: Buffer;
  value: Buffer | null;
}

interface DbChanges {
  cleared: Set<string>;
  records: Map<string, RecordChange>;
  shape?: DbShape;
}

const emptyChanges = (): DbChanges => ({ cleared: new Set(), records: new Map() });

/** The mirror the wrapped IndexedDB methods report to; one bridge per process at a time. */
let active: IndexedDbMirror | undefined;

export class IndexedDbMirror {
  readonly factory: IDBFactory = new FakeFactory();
  private pending = new Map<string, DbChanges>();
  private readonly txChanges = new WeakMap<IDBTransaction, Map<string, DbChanges>>();
  /** Databases being rebuilt from the mirror: their writes are not mirrored back. */
  private readonly restoring = new Set<string>();
  private readonly connections = new Map<string, Set<IDBDatabase>>();
  private flushing: Promise<void> = Promise.resolve();
  private failure: unknown;

  private constructor(
    private readonly knex: Knex,
    private readonly vault: KeyVault,
    private readonly log: Logger,
  ) {}

  /**
   * Makes a fresh in-memory IndexedDB the process's `indexedDB` and mirrors it into `knex`.
   * A second install (a restarted bridge in the same process) replaces the first.
   */
  static install(knex: Knex, vault: KeyVault, log: Logger = silentLogger()): IndexedDbMirror {
    wrapIndexedDb();
    const mirror = new IndexedDbMirror(knex, vault, log);
    active = mirror;
    const global = globalThis as Record<string, unknown>;
    global["indexedDB"] = mirror.factory;
    global["IDBKeyRange"] = fake.IDBKeyRange;
    return mirror;
  }

  /** Stops mirroring (the bridge stopped); later writes in this factory are not persisted. */
  uninstall(): void {
    if (active === this) active = undefined;
  }

  /** True when anything is waiting to be flushed. */
  get dirty(): boolean {
    return this.pending.size > 0;
  }

  /**
   * Writes every change committed so far to the bridge database. Resolves after COMMIT; rejects
   * (and keeps the changes for the next flush) when the database refused.
   */
  flush(): Promise<void> {
    const next = this.flushing.then(() => this.writePending());
    this.flushing = next.catch(() => undefined);
    return next;
  }

  /** Rebuilds every mirrored database whose name starts with `prefix` in the in-memory store. */
  async restore(prefix: string): Promise<void> {
    const shapes = (await this.knex(SCHEMAS)
      // An explicit ESCAPE: SQLite's LIKE has no escape character by default.
      .whereRaw("db_name like ? escape '\\'", [`${escapeLike(prefix)}%`])
      .select("db_name", "version", "stores")) as {
      db_name: string;
      version: number;
      stores: string;
    }[];
    for (const row of shapes) {
      const shape: DbShape = {
        version: row.version,
        stores: JSON.parse(row.stores) as StoreShape[],
      };
      const records = (await this.knex(RECORDS)
        .where({ db_name: row.db_name })
        .select("store", "key_id", "idb_key", "value")) as {
        store: string;
        key_id: string;
        idb_key: Buffer;
        value: Buffer;
      }[];
      this.restoring.add(row.db_name);
      try {
        await this.rebuild(row.db_name, shape, records);
      } finally {
        this.restoring.delete(row.db_name);
      }
    }
  }

  /**
   * Drops the in-memory copies of the databases starting with `prefix` after flushing them (their
   * machine was freed). Their rows stay: {@link restore} brings them back.
   */
  async evict(prefix: string): Promise<void> {
    await this.flush();
    for (const [name, connections] of this.connections) {
      if (!name.startsWith(prefix)) continue;
      for (const connection of connections) connection.close();
      this.connections.delete(name);
      await request(this.factory.deleteDatabase(name));
    }
  }

  /** Called by the wrapped methods; not part of the API. */
  record(tx: IDBTransaction, db: string, change: (changes: DbChanges) => void): void {
    if (!db.startsWith(MIRRORED_PREFIX) || this.restoring.has(db)) return;
    let perTx = this.txChanges.get(tx);
    if (perTx === undefined) {
      const created = new Map<string, DbChanges>();
      perTx = created;
      this.txChanges.set(tx, created);
      tx.addEventListener("complete", () => {
        for (const [name, changes] of created) this.merge(name, changes);
      });
    }
    let changes = perTx.get(db);
    if (changes === undefined) {
      changes = emptyChanges();
      perTx.set(db, changes);
    }
    change(changes);
  }

  /** Called by the wrapped open(): remembers the connection and the database's shape. */
  opened(connection: IDBDatabase): void {
    const name = connection.name;
    if (!name.startsWith(MIRRORED_PREFIX)) return;
    let set = this.connections.get(name);
    if (set === undefined) this.connections.set(name, (set = new Set()));
    set.add(connection);
    connection.addEventListener("close", () => set.delete(connection));
    if (this.restoring.has(name)) return;
    try {
      const changes = emptyChanges();
      changes.shape = shapeOf(connection);
      this.merge(name, changes);
    } catch (err) {
      this.fail(err);
    }
  }

  fail(err: unknown): void {
    this.failure ??= err;
    this.log.error({ err: describeError(err) }, "a crypto store write could not be mirrored");
  }

  private merge(db: string, changes: DbChanges): void {
    let into = this.pending.get(db);
    if (into === undefined) this.pending.set(db, (into = emptyChanges()));
    for (const store of changes.cleared) {
      into.cleared.add(store);
      for (const [id, change] of into.records) if (change.store === store) into.records.delete(id);
    }
    for (const [id, change] of changes.records) into.records.set(id, change);
    if (changes.shape !== undefined) into.shape = changes.shape;
  }

  private async writePending(): Promise<void> {
    if (this.failure !== undefined) {
      throw new BridgeError("crypto-store", "the crypto store mirror failed earlier", {
        cause: this.failure,
      });
    }
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.knex.transaction(async (trx) => {
        for (const [db, changes] of batch) await this.writeDb(trx, db, changes);
      });
    } catch (err) {
      // Keep the changes, under anything written since, for the next flush.
      const later = this.pending;
      this.pending = batch;
      for (const [db, changes] of later) this.merge(db, changes);
      throw new BridgeError("crypto-store", "could not persist the crypto store", { cause: err });
    }
  }

  private async writeDb(trx: Knex.Transaction, db: string, changes: DbChanges): Promise<void> {
    if (changes.shape !== undefined) {
      const stores = JSON.stringify(changes.shape.stores);
      await trx(SCHEMAS)
        .insert({ db_name: db, version: changes.shape.version, stores })
        .onConflict("db_name")
        .merge();
      const kept = changes.shape.stores.map((s) => s.name);
      await trx(RECORDS).where({ db_name: db }).whereNotIn("store", kept).del();
    }
    for (const store of changes.cleared) await trx(RECORDS).where({ db_name: db, store }).del();
    const writes: Record<string, unknown>[] = [];
    for (const [id, change] of changes.records) {
      const keyId = id.slice(id.indexOf("\n") + 1);
      if (change.value === null) {
        await trx(RECORDS).where({ db_name: db, store: change.store, key_id: keyId }).del();
        continue;
      }
      writes.push({
        db_name: db,
        store: change.store,
        key_id: keyId,
        idb_key: change.key,
        value: this.vault.seal(change.value, [RECORDS, db, change.store, keyId]),
      });
    }
    // Chunks keep each statement under SQLite's bound-variable limit.
    for (let i = 0; i < writes.length; i += 100) {
      await trx(RECORDS)
        .insert(writes.slice(i, i + 100))
        .onConflict(["db_name", "store", "key_id"])
        .merge(["idb_key", "value"]);
    }
  }

  private async rebuild(
    name: string,
    shape: DbShape,
    records: { store: string; key_id: string; idb_key: Buffer; value: Buffer }[],
  ): Promise<void> {
    const open = this.factory.open(name, shape.version);
    open.onupgradeneeded = () => {
      const db = open.result;
      for (const store of shape.stores) {
        const created = db.createObjectStore(store.name, {
          keyPath: store.keyPath,
          autoIncrement: store.autoIncrement,
        });
        for (const index of store.indexes) {
          created.createIndex(index.name, index.keyPath, {
            unique: index.unique,
            multiEntry: index.multiEntry,
          });
        }
      }
    };
    const db = await request(open);
    try {
      const names = shape.stores.map((s) => s.name);
      if (names.length === 0 || records.length === 0) return;
      const tx = db.transaction(names, "readwrite");
      const done = new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onabort = () => reject(tx.error ?? new Error("restore transaction aborted"));
      });
      for (const row of records) {
        const value: unknown = deserialize(
          this.vault.open(row.value, [RECORDS, name, row.store, row.key_id]),
        );
        const store = tx.objectStore(row.store);
        if (store.keyPath === null) store.put(value, deserialize(row.idb_key) as IDBValidKey);
        else store.put(value);
      }
      await done;
    } finally {
      db.close();
    }
  }
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function shapeOf(db: IDBDatabase): DbShape {
  const names = [...db.objectStoreNames];
  if (names.length === 0) return { version: db.version, stores: [] };
  const tx = db.transaction(names, "readonly");
  const stores = names.map((name): StoreShape => {
    const store = tx.objectStore(name);
    return {
      name,
      keyPath: store.keyPath,
      autoIncrement: store.autoIncrement,
      indexes: [...store.indexNames].map((indexName) => {
        const index = store.index(indexName);
        return {
          name: indexName,
          keyPath: index.keyPath,
          unique: index.unique,
          multiEntry: index.multiEntry,
        };
      }),
    };
  });
  return { version: db.version, stores };
}

/** The row id of a record change: store name and a fixed-length digest of the key. */
function recordId(store: string, key: Buffer): string {
  return `${store}\n${createHash("sha256").update(key).digest("base64url")}`;
}

function putChange(changes: DbChanges, store: string, key: IDBValidKey, value: Buffer): void {
  const bytes = serialize(key);
  changes.records.set(recordId(store, bytes), { store, key: bytes, value });
}

function deleteChange(changes: DbChanges, store: string, key: IDBValidKey): void {
  const bytes = serialize(key);
  changes.records.set(recordId(store, bytes), { store, key: bytes, value: null });
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

let wrapped = false;

/**
 * Wraps the IndexedDB mutations of fake-indexeddb (once per process). Each wrapper calls the
 * original first, so invalid calls throw exactly as before and record nothing.
 */
function wrapIndexedDb(): void {
  if (wrapped) return;
  wrapped = true;
  const store = FakeObjectStore.prototype;
  const { put, add, delete: remove, clear, getAllKeys } = store;
  const written = function (
    this: IDBObjectStore,
    original: typeof put,
    value: unknown,
    key?: IDBValidKey,
  ): IDBRequest<IDBValidKey> {
    const req = original.call(this, value, key);
    const mirror = active;
    const tx = this.transaction;
    const name = this.name;
    if (mirror !== undefined && tx.db.name.startsWith(MIRRORED_PREFIX)) {
      try {
        const bytes = serialize(value);
        req.addEventListener("success", () => {
          mirror.record(tx, tx.db.name, (c) => putChange(c, name, req.result, bytes));
        });
      } catch (err) {
        mirror.fail(err);
      }
    }
    return req;
  };
  store.put = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
    return written.call(this, put, value, key);
  };
  store.add = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
    return written.call(this, add, value, key);
  };
  store.delete = function (this: IDBObjectStore, query: IDBValidKey | IDBKeyRange) {
    const mirror = active;
    const tx = this.transaction;
    const name = this.name;
    if (mirror !== undefined && tx.db.name.startsWith(MIRRORED_PREFIX)) {
      // The keys a range covers are known only to the store: ask before the delete runs
      // (requests of a transaction run in order).
      try {
        const keys = getAllKeys.call(this, query);
        keys.addEventListener("success", () => {
          mirror.record(tx, tx.db.name, (c) => {
            for (const key of keys.result) deleteChange(c, name, key);
          });
        });
      } catch {
        // An invalid query: the delete below throws the same error.
      }
    }
    return remove.call(this, query);
  };
  store.clear = function (this: IDBObjectStore) {
    const req = clear.call(this);
    const mirror = active;
    const tx = this.transaction;
    const name = this.name;
    if (mirror !== undefined) {
      req.addEventListener("success", () => {
        mirror.record(tx, tx.db.name, (c) => {
          c.cleared.add(name);
          for (const [id, change] of c.records) if (change.store === name) c.records.delete(id);
        });
      });
    }
    return req;
  };
  const cursor = FakeCursor.prototype;
  const { update, delete: cursorDelete } = cursor;
  const cursorStore = (c: IDBCursor): IDBObjectStore =>
    c.source instanceof FakeIndex
      ? (c.source as { objectStore: IDBObjectStore }).objectStore
      : (c.source as IDBObjectStore);
  cursor.update = function (this: IDBCursor, value: unknown) {
    const req = update.call(this, value);
    const mirror = active;
    const target = cursorStore(this);
    const tx = target.transaction;
    const key = this.primaryKey;
    if (mirror !== undefined) {
      try {
        const bytes = serialize(value);
        req.addEventListener("success", () => {
          mirror.record(tx, tx.db.name, (c) => putChange(c, target.name, key, bytes));
        });
      } catch (err) {
        mirror.fail(err);
      }
    }
    return req;
  };
  cursor.delete = function (this: IDBCursor) {
    const req = cursorDelete.call(this);
    const mirror = active;
    const target = cursorStore(this);
    const tx = target.transaction;
    const key = this.primaryKey;
    if (mirror !== undefined) {
      req.addEventListener("success", () => {
        mirror.record(tx, tx.db.name, (c) => deleteChange(c, target.name, key));
      });
    }
    return req;
  };
  const factory = FakeFactory.prototype;
  const { open } = factory;
  factory.open = function (this: IDBFactory, name: string, version?: number) {
    const req = open.call(this, name, version);
    req.addEventListener("success", () => active?.opened(req.result));
    return req;
  };
}
