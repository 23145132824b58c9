/**
 * The few IndexedDB types the mirror uses. The project compiles without the DOM library (it is a
 * Node program), and fake-indexeddb's own typings refer to the DOM's, so they are stated here.
 */
export type IDBValidKey = number | string | Date | BufferSource | IDBValidKey[];
type BufferSource = ArrayBufferView | ArrayBuffer;

export interface IDBRequest<T = unknown> {
  readonly result: T;
  readonly error: Error | null;
  onsuccess: ((this: IDBRequest<T>) => void) | null;
  onerror: ((this: IDBRequest<T>) => void) | null;
  addEventListener(type: "success" | "error", listener: () => void): void;
}

interface IDBOpenDBRequest extends IDBRequest<IDBDatabase> {
  onupgradeneeded: (() => void) | null;
}

export interface IDBFactory {
  open(name: string, version?: number): IDBOpenDBRequest;
  deleteDatabase(name: string): IDBRequest<undefined>;
}

export interface IDBKeyRange {
  readonly lower: unknown;
}

interface IDBIndex {
  readonly keyPath: string | string[];
  readonly unique: boolean;
  readonly multiEntry: boolean;
  readonly objectStore: IDBObjectStore;
  openCursor(query?: IDBValidKey | IDBKeyRange): IDBRequest<IDBCursorWithValue | null>;
}

export interface IDBObjectStore {
  readonly name: string;
  readonly keyPath: string | string[] | null;
  readonly autoIncrement: boolean;
  readonly indexNames: Iterable<string>;
  readonly transaction: IDBTransaction;
  put(value: unknown, key?: IDBValidKey): IDBRequest<IDBValidKey>;
  add(value: unknown, key?: IDBValidKey): IDBRequest<IDBValidKey>;
  delete(query: IDBValidKey | IDBKeyRange): IDBRequest<undefined>;
  clear(): IDBRequest<undefined>;
  get(query: IDBValidKey | IDBKeyRange): IDBRequest;
  getAllKeys(query?: IDBValidKey | IDBKeyRange | null): IDBRequest<IDBValidKey[]>;
  count(query?: IDBValidKey | IDBKeyRange): IDBRequest<number>;
  index(name: string): IDBIndex;
  createIndex(
    name: string,
    keyPath: string | string[],
    options?: { unique?: boolean; multiEntry?: boolean },
  ): IDBIndex;
}

export interface IDBTransaction {
  readonly db: IDBDatabase;
  readonly error: Error | null;
  oncomplete: (() => void) | null;
  onabort: (() => void) | null;
  objectStore(name: string): IDBObjectStore;
  abort(): void;
  addEventListener(type: "complete" | "abort", listener: () => void): void;
}

export interface IDBDatabase {
  readonly name: string;
  readonly version: number;
  readonly objectStoreNames: Iterable<string>;
  transaction(stores: string[], mode?: "readonly" | "readwrite"): IDBTransaction;
  createObjectStore(
    name: string,
    options?: { keyPath?: string | string[] | null; autoIncrement?: boolean },
  ): IDBObjectStore;
  close(): void;
  addEventListener(type: "close" | "versionchange", listener: () => void): void;
}

export interface IDBCursor {
  readonly source: IDBObjectStore | IDBIndex;
  readonly primaryKey: IDBValidKey;
  update(value: unknown): IDBRequest<IDBValidKey>;
  delete(): IDBRequest<undefined>;
}

export interface IDBCursorWithValue extends IDBCursor {
  readonly value: unknown;
}
